/**
 * The one set of OpenAI-style error codes the site runtime and the verifier both answer with
 * (issue #18 item 4), so that the same fault gives the same `{error: {code, param}}` on either
 * server and a client needs one table to act on them. It lives here, below both servers in the
 * layering (docs/architecture.md "Layers"); http.ts builds the `HttpError`s that carry them. Codes
 * follow OpenAI's names where OpenAI has one (`context_length_exceeded`, `model_not_found`,
 * `unknown_parameter`, `unsupported_value`); the rest are edgectl's own and documented in
 * docs/running-sites.md ("Errors").
 *
 * Renamed codes keep their old spelling in `LEGACY_CODES`, so a client that reads a code (old
 * verifiers said `context_too_long`) can normalise either with `canonicalCode`.
 */
export const API_ERROR_CODES = {
  /** The prompt (or prompt + max_tokens) does not fit the model's context. */
  contextLengthExceeded: 'context_length_exceeded',
  /** No such model (or adapter) on this server. */
  modelNotFound: 'model_not_found',
  /** A request field this server does not know (strict schemas). */
  unknownParameter: 'unknown_parameter',
  /** A known field with a value this server does not honour (a non-neutral penalty, n > 1, ...). */
  unsupportedValue: 'unsupported_value',
  /** Any other malformed field (type, range). */
  invalidBody: 'invalid_body',
} as const;

export type ApiErrorCode = (typeof API_ERROR_CODES)[keyof typeof API_ERROR_CODES];

/** Codes older edgectl servers used, mapped to today's. */
export const LEGACY_CODES: Readonly<Record<string, ApiErrorCode>> = Object.freeze({
  context_too_long: API_ERROR_CODES.contextLengthExceeded,
});

/** Today's name of an error code read from a server of any edgectl version. */
export function canonicalCode(code: string): string {
  return LEGACY_CODES[code] ?? code;
}
