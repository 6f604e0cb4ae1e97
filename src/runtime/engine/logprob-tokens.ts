/**
 * Logprobs as the engine reports them (issue #18 item 3): the route executor's token-id logprobs
 * (src/inference/logprobs.ts; the verifier's for verified tokens, the draft's for edge-only ones)
 * turned into tokens a transport can render without the tokenizer — each token's text and UTF-8
 * bytes (token-bytes.ts) — tagged with the model that produced them. The OpenAI shapes (chat
 * `logprobs.content[]`, completions `tokens`/`token_logprobs`/`top_logprobs`/`text_offset`) are
 * the server's business (src/runtime/serve/logprobs-render.ts).
 *
 * Tokens are the model's: with PII redaction a placeholder's tokens appear as the placeholder
 * (`<EMAIL_1>`), never the restored value, so logprobs leak nothing redaction hid.
 */
import { LOGPROB_FLOOR, type TokenLogprob } from '../../inference/logprobs.js';
import { tokenPiece } from '../../inference/token-bytes.js';
import type { TextTokenizer } from '../../inference/tokenizer.js';

/** Which model's distribution a logprob was read from. */
export type LogprobSource = 'verifier' | 'draft';

export interface LogprobAlternative {
  token: string;
  bytes: number[];
  logprob: number;
}

export interface LogprobToken extends LogprobAlternative {
  /** The most likely tokens at this position, most likely first. */
  top: LogprobAlternative[];
  source: LogprobSource;
}

/**
 * Tokens from an OpenAI completions `logprobs` object (the cloud route: the verifier's, or any
 * OpenAI-compatible server's, `/v1/completions`), which carries token texts, not ids: the bytes
 * are the texts' UTF-8 (a token holding part of a character arrives as U+FFFD and stays so).
 */
export function fromCompletionLogprobs(
  lp: {
    tokens?: string[] | undefined;
    token_logprobs?: (number | null)[] | undefined;
    top_logprobs?: (Record<string, number> | null)[] | undefined;
  },
  source: LogprobSource,
): LogprobToken[] {
  const utf8 = (s: string): number[] => [...Buffer.from(s, 'utf8')];
  return (lp.tokens ?? []).map((token, i) => ({
    token,
    bytes: utf8(token),
    logprob: lp.token_logprobs?.[i] ?? LOGPROB_FLOOR,
    top: Object.entries(lp.top_logprobs?.[i] ?? {})
      .sort((a, b) => b[1] - a[1])
      .map(([t, logprob]) => ({ token: t, bytes: utf8(t), logprob })),
    source,
  }));
}

export function logprobToken(
  tokenizer: TextTokenizer,
  lp: TokenLogprob,
  source: LogprobSource,
): LogprobToken {
  const piece = tokenPiece(tokenizer, lp.token);
  return {
    token: piece.text,
    bytes: piece.bytes,
    logprob: lp.logprob,
    top: lp.top.map((t) => {
      const p = tokenPiece(tokenizer, t.token);
      return { token: p.text, bytes: p.bytes, logprob: t.logprob };
    }),
    source,
  };
}
