/**
 * OpenAI's logprobs shapes for the engine's `logprob` events (issue #18 item 3;
 * src/runtime/engine/logprob-tokens.ts): chat `choices[].logprobs = {content: [{token, logprob,
 * bytes, top_logprobs: [{token, logprob, bytes}]}], refusal: null}`, completions `choices[].logprobs
 * = {tokens, token_logprobs, top_logprobs: [{<token>: logprob}], text_offset}`, for a whole answer
 * or per stream chunk (each chunk carries the tokens that arrived since the previous one). The
 * `text_offset` of a completion counts characters of the token texts from the start of the
 * completion (no prompt: `echo` is not supported).
 *
 * Which model produced them goes into the `edgectl` field: `logprobs_source` is `verifier`
 * (verified tokens), `draft` (edge route, or everything after a fallback before the first token)
 * or `mixed`, and then `logprobs_sources` lists the source of each token in order.
 */
import type { LogprobSource, LogprobToken } from '../engine/logprob-tokens.js';

export interface ChatLogprobs {
  content: { token: string; logprob: number; bytes: number[]; top_logprobs: object[] }[];
  refusal: null;
}

export interface CompletionLogprobs {
  tokens: string[];
  token_logprobs: number[];
  top_logprobs: Record<string, number>[];
  text_offset: number[];
}

/** What the `edgectl` field says about logprobs. */
export interface LogprobsInfo {
  logprobs_source: LogprobSource | 'mixed';
  logprobs_sources?: LogprobSource[];
}

export class LogprobsRenderer {
  private pending: LogprobToken[] = [];
  private readonly sources: LogprobSource[] = [];
  private offset = 0;

  constructor(private readonly kind: 'chat' | 'completion') {}

  add(token: LogprobToken): void {
    this.pending.push(token);
    this.sources.push(token.source);
  }

  get hasPending(): boolean {
    return this.pending.length > 0;
  }

  /** The tokens added since the last call, in the request kind's shape. */
  take(): ChatLogprobs | CompletionLogprobs {
    const tokens = this.pending;
    this.pending = [];
    if (this.kind === 'chat') {
      return {
        content: tokens.map((t) => ({
          token: t.token,
          logprob: t.logprob,
          bytes: t.bytes,
          top_logprobs: t.top.map((a) => ({ token: a.token, logprob: a.logprob, bytes: a.bytes })),
        })),
        refusal: null,
      };
    }
    const text_offset: number[] = [];
    for (const t of tokens) {
      text_offset.push(this.offset);
      this.offset += t.token.length;
    }
    return {
      tokens: tokens.map((t) => t.token),
      token_logprobs: tokens.map((t) => t.logprob),
      top_logprobs: tokens.map((t) => Object.fromEntries(t.top.map((a) => [a.token, a.logprob]))),
      text_offset,
    };
  }

  /** The `edgectl` fields (none when no token had a logprob). */
  info(): LogprobsInfo | undefined {
    const first = this.sources[0];
    if (first === undefined) return undefined;
    if (this.sources.every((s) => s === first)) return { logprobs_source: first };
    return { logprobs_source: 'mixed', logprobs_sources: [...this.sources] };
  }
}

/** `body` (a response or chunk) with `logprobs` set on its one choice. */
export function withLogprobs<T extends Record<string, unknown>>(
  body: T,
  logprobs: ChatLogprobs | CompletionLogprobs,
): T {
  const choices = body.choices as Record<string, unknown>[] | undefined;
  const first = choices?.[0];
  if (first) first.logprobs = logprobs;
  return body;
}
