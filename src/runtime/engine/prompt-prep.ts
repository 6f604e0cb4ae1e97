/**
 * What a site request's text goes through before generation, as one pure function (issue #14
 * item 6): block rules on the user's own text, PII redaction, a cheap context bound, tokenization.
 * It is pure so the same code runs inline for short prompts and in a worker thread for long ones
 * (prompt-pool.ts), where megabytes of regex scanning and BPE cannot stall the event loop.
 *
 * The cheap bound (`minTokens`, src/inference/token-bounds.ts): when the tokenizer proves that no
 * token covers more than `maxTokenBytes` bytes, a text of b bytes needs at least
 * ceil(b / maxTokenBytes) tokens, so one that cannot leave a position free in the model's context
 * is refused as `context_length_exceeded` without being tokenized. The server applies it before
 * admission when the policy does not redact (the text the model sees is the user's text); with
 * redaction, placeholders may shorten the text, so the bound is applied here after redaction.
 */
import { Buffer } from 'node:buffer';
import type { TextTokenizer } from '../../inference/tokenizer.js';
import { minTokens } from '../../inference/token-bounds.js';
import type { BlockRules } from '../../policy/block.js';
import { totalRedactions, type RedactionEntry, type Redactor } from '../../policy/redact.js';
import { contextLengthExceeded, type HttpError } from '../../http/http.js';

/** The compiled pieces of a generation the preparation uses. */
export interface PrepTools {
  blockRules: BlockRules;
  redactor: Redactor;
  tokenizer: TextTokenizer;
  /** Positions of the model's context (prompt + output). */
  maxPositions: number;
  /**
   * Tokenize the text (default). A chat is encoded afterwards through the model's own template
   * (chat-prompt.ts), so its preparation stops after the bound and returns no ids.
   */
  encode?: boolean;
}

export type PromptPrep =
  | { kind: 'blocked'; rule: string; message: string; matched: string }
  | { kind: 'too_long'; minTokens: number; bytes: number; maxTokenBytes: number }
  | {
      kind: 'ready';
      /** The text the models see (placeholders instead of PII). */
      modelText: string;
      ids: Int32Array;
      /** The redaction map's entries (empty without redaction) and how many values were replaced. */
      entries: RedactionEntry[];
      redactions: number;
    };

/**
 * A bound-based refusal, if `text` certainly cannot fit `maxPositions` with one position left for
 * output; undefined when it may fit or the tokenizer has no bound.
 */
export function cannotFit(
  text: string,
  tokenizer: TextTokenizer,
  maxPositions: number,
): Extract<PromptPrep, { kind: 'too_long' }> | undefined {
  const maxTokenBytes = tokenizer.maxTokenBytes;
  if (maxTokenBytes === undefined) return undefined;
  const least = minTokens(text, maxTokenBytes);
  if (least < maxPositions) return undefined;
  return { kind: 'too_long', minTokens: least, bytes: Buffer.byteLength(text, 'utf8'), maxTokenBytes };
}

/** The 400 for a prompt the bound refused. */
export function tooLongError(
  r: Extract<PromptPrep, { kind: 'too_long' }>,
  maxPositions: number,
  param: string,
): HttpError {
  return contextLengthExceeded(
    `${param}: at least ${r.minTokens} tokens (${r.bytes} bytes, at most ${r.maxTokenBytes} bytes per token) cannot fit the model's context of ${maxPositions} tokens; shorten it`,
    param,
  );
}

/** Block rules, redaction, the bound and tokenization of one request's text (module comment). */
export function preparePrompt(text: string, tools: PrepTools): PromptPrep {
  // Block rules see the user's own text (a rule may name what redaction would hide).
  const blocked = tools.blockRules.check(text);
  if (blocked.blocked) {
    return { kind: 'blocked', rule: blocked.rule, message: blocked.message, matched: blocked.matched };
  }
  // Redaction before anything else sees the text: the draft works on placeholders too.
  const redacted = tools.redactor.enabled ? tools.redactor.redact(text) : undefined;
  const modelText = redacted?.text ?? text;
  const refused = cannotFit(modelText, tools.tokenizer, tools.maxPositions);
  if (refused) return refused;
  return {
    kind: 'ready',
    modelText,
    ids: tools.encode === false ? new Int32Array(0) : Int32Array.from(tools.tokenizer.encode(modelText)),
    entries: redacted ? redacted.map.entries() : [],
    redactions: redacted ? totalRedactions(redacted.counts) : 0,
  };
}
