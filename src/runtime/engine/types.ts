/**
 * The site engine's request and events (issue #16 item 1; docs/architecture.md, runtime): what a
 * transport (the OpenAI-compatible HTTP server, a test, a benchmark) hands `SiteEngine.run` and
 * what it gets back. Plain data with no HTTP in it: the server maps an OpenAI body to an
 * `EngineRequest` and the events to JSON or SSE chunks; errors are `HttpError`s (status, OpenAI
 * code, the field at fault) because the engine's refusals — 400 naming the field, 404 unknown
 * model, 429 busy, 503 verifier unavailable — are part of the runtime's contract, not of fastify.
 */
import type { GrammarConstraint } from '../../inference/grammar/types.js';
import type { Route } from '../../policy/schema.js';
import type { ChatMessage, EdgectlInfo } from '../serve/openai.js';
import type { ToolCallDelta } from './tool-call-stream.js';
import type { ToolCallsOutcome, ToolPlan } from './tool-calls.js';
import type { LogprobToken } from './logprob-tokens.js';
import type { RetrievalRequest } from './retrieval.js';

export interface EngineRequest {
  /** `<model>` or `<model>:<adapter>`, as GET /v1/models lists them. */
  model: string;
  /** A completion's prompt text, or a chat's messages (rendered with the model's own template). */
  prompt: { text: string } | { messages: ChatMessage[] };
  /** Stop strings (a chat adds its model's turn stops). */
  stops: string[];
  /** Undefined: the model's default, capped by the context left. */
  maxTokens: number | undefined;
  /** Undefined: the model's generation_config.json defaults (then OpenAI's). */
  temperature: number | undefined;
  topP: number | undefined;
  /** Hugging Face repetition penalty (1 = off); undefined: generation_config.json's. */
  repetitionPenalty?: number | undefined;
  seed: number | undefined;
  /** Generate past end-of-sequence (benchmarks). */
  ignoreEos: boolean;
  /** A route asked for by the client; honoured when the policy's `routing.overrides` allows it. */
  override: Route | undefined;
  /** `edgectl.retrieval`: passages of a site index to attach to a chat (retrieval.ts). */
  retrieval?: RetrievalRequest | undefined;
  /**
   * Settles once the answer reached the client (true) or was dropped (false); a sampled shadow run
   * starts only after true, so it never delays the user. Default: delivered at once.
   */
  delivered?: Promise<boolean>;
  /** How the request is named in the debug log line (the server passes its path). */
  label?: string;
  /** A chat's tools, choice and output plan (tool-calls.ts `planTools`). */
  tools?: ToolPlan;
  /**
   * Grammar-constrained output (issue #18: `response_format`, tool calls), honoured on every route;
   * the output is checked against it at the end (`edgectl.structured`).
   */
  constraint?: GrammarConstraint;
  /** Report each output token's logprob with this many top alternatives (0..20); undefined: none. */
  logprobs?: number | undefined;
}

/** Why an answer ended; `aborted` when the client went away (nothing more is sent). */
export type EngineFinishReason = 'stop' | 'length' | 'content_filter' | 'tool_calls' | 'aborted';

export type EngineEvent =
  /** The router's decision (route, why, whether the abstain rules escalated it). */
  | { type: 'route'; route: Route; reason: string; escalated: boolean }
  /** PII values replaced by placeholders before the prompt went anywhere. */
  | { type: 'redactions'; count: number }
  /** A block rule refused the request; a `text` event with the refusal and a finish follow. */
  | { type: 'blocked'; rule: string; message: string; reason: string }
  /** Text for the user (placeholders restored, stop strings cut). */
  | { type: 'text'; text: string }
  /** With `logprobs` asked: the next output token's logprob, before the text it adds. */
  | { type: 'logprob'; token: LogprobToken }
  /**
   * The verifier failed and the draft continues alone: the answer is unverified from here. With
   * `unverified: false` the site's cloud model answers instead (policy `verifier.fallback: cloud`).
   */
  | { type: 'fallback'; route: Route; message: string; unverified?: boolean }
  /** A piece of a tool call (the first of a call carries its id and name): tool-calls.ts. */
  | ({ type: 'tool_call' } & ToolCallDelta)
  | {
      type: 'finish';
      reason: EngineFinishReason;
      route: Route | 'blocked';
      unverified: boolean;
      promptTokens: number;
      completionTokens: number;
      /** The `edgectl` field of the response. */
      info: EdgectlInfo;
      /** With tools: the calls and whether each parsed and validated. */
      tools?: ToolCallsOutcome;
    };
