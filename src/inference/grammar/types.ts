/**
 * What a request can constrain its output to (issue #18 item 1), as plain data the engine, the
 * verifier and the HTTP layers share: any JSON object, JSON matching a schema, or free text with
 * structural tags (tool calls: a trigger such as `<tool_call>` switches to a tag whose body must
 * match its schema). Compiled by grammar/engine.ts; the names are part of the `tools` helper's API.
 */

export type GrammarConstraint =
  | { kind: 'json_object' }
  | { kind: 'json_schema'; schema: Record<string, unknown>; name?: string; strict?: boolean }
  | {
      kind: 'structural_tag';
      tags: { begin: string; schema: Record<string, unknown>; end: string }[];
      triggers: string[];
    };

/** Whether a finished output satisfies the constraint (ajv for schemas; structural tags unchecked). */
export interface StructuredCheck {
  valid: boolean;
  /** Why not (parse error, or the first schema error with its JSON path). */
  reason?: string;
}

/**
 * The token-level view of a constraint that decoding uses (grammar/matcher.ts implements it over
 * xgrammar). Bit i of `mask()` is set when token i may come next; end-of-sequence ids are allowed
 * only where the grammar can end.
 */
export interface TokenConstraint {
  /** The allowed tokens at the next position (words of 32 bits, little-endian bit order). */
  mask(): Promise<Uint32Array>;
  /** Advances past `token`; false (state unchanged) when the grammar does not allow it. */
  accept(token: number): boolean;
  /** Undoes the last `n` accepted tokens. */
  rollBack(n: number): void;
  /** The grammar accepted an end-of-sequence token: nothing more may follow. */
  isTerminated(): boolean;
}
