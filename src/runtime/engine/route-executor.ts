/**
 * The one route executor (issue #16 item 2): runs a generation on its route and yields each token as
 * it is produced — edge (the draft alone), speculative (the draft proposes, the HTTP verifier
 * decides) or cloud (a `CloudClient`: the verifier's `/v1/completions`, or the site's own
 * OpenAI-compatible `runtime.cloud` model; cloud-route.ts, cloud-access.ts). The site engine,
 * `edgectl generate` and `edgectl bench speculative` all dispatch through it, so the benchmark
 * measures the product path.
 *
 * It owns what happens when the verifier cannot help: the circuit breaker is asked before any call,
 * every failure is recorded in it, and the fallback decides — continue on the draft alone from the
 * tokens already produced (the answer is marked unverified, a `fallback` event says so), or throw
 * `VerifierUnavailableError` (503 with Retry-After at the site). Every verifier call carries the
 * verifier client's timeout (the site's policy `verifier.timeoutMs`), so a hung verifier costs at
 * most one timeout. The consumer ends a generation early (a stop string) by calling `return()` on
 * the iterator: the inner generator and its verifier session close, and the round counts as a
 * success for the breaker, as the verifier did its part.
 *
 * Speculative statistics are counted by wrapping the verifier session (counting-verifier.ts) rather
 * than read from the inference engine's final `done` event, because a request can end early
 * without one. See docs/architecture.md (runtime) for where this sits in the request path.
 */
import { OperationalError } from '../../foundation/errors.js';
import { unsupportedValue } from '../../http/http.js';
import type { TokenLogprob } from '../../inference/logprobs.js';
import type { LogprobSource, LogprobToken } from './logprob-tokens.js';
import type { AdaptiveKOptions } from '../../inference/adaptive-k.js';
import { generate, generateSpeculative, type GenerateEvent } from '../../inference/generate.js';
import type { CompiledConstraint } from '../../inference/grammar/index.js';
import type { HttpVerifier } from '../../verifier/client/http-verifier.js';
import type { KvCache } from '../../inference/kv-cache.js';
import type { LoraFeeds } from '../../inference/lora-slots.js';
import type { CausalLm } from '../../inference/model-session.js';
import type { SamplingParams } from '../../inference/sampling.js';
import type { Route } from '../../policy/schema.js';
import { CountingVerifier, VerifierCallError, verifierCall } from './counting-verifier.js';
import type { CloudMessage } from '../../verifier/client/cloud-client.js';
import { verifierAsCloud, type CloudAccess } from './cloud-access.js';
import { runCloud } from './cloud-route.js';
import type { RemoteAccess, VerifierAccess } from './verifier-access.js';
import { matcherAfter } from './structured.js';

export { VerifierCallError } from './counting-verifier.js';

/** How a route run ended (a stop string is the consumer's business: it calls `return()`). */
export type ExecFinish = 'eos' | 'length' | 'aborted' | 'stop';

/** What the run has produced so far and how (read for headers, the outcome and statistics). */
export interface RunState {
  /** The route serving the request: the decided one, or `edge` when a fallback came before any token. */
  route: Route;
  unverified: boolean;
  fallback: boolean;
  draftTokens: number;
  acceptedTokens: number;
  /** Verify calls (speculative); verifier passes (cloud: one per token). */
  verifyRounds: number;
  /** Milliseconds spent drafting (between verify calls) and in verify calls, over all rounds. */
  draftMs: number;
  verifyMs: number;
  emitted: number[];
  verifierError: string | undefined;
  /** Cloud with a text prompt: the verifier's count of prompt tokens (its usage chunk). */
  promptTokens: number | undefined;
}

/** Token ids (every route), or text for the cloud route alone (no local tokenizer needed). */
export type RoutePrompt = { ids: readonly number[] } | { text: string; stop: readonly string[] };

export interface RouteRequest {
  route: Route;
  prompt: RoutePrompt;
  maxTokens: number;
  sampling: SamplingParams;
  seed: number | undefined;
  /** Generate past end-of-sequence (benchmarks). */
  ignoreEos: boolean;
  lora: LoraFeeds | undefined;
  /** The draft's cache over the prompt (from the router's entropy pass), with the same adapter. */
  cache: KvCache | undefined;
  /** Speculative drafting: fixed or adaptive k, its bounds, the confidence floor. */
  drafting: { k: number | 'auto'; adaptive?: AdaptiveKOptions; minDraftConfidence?: number };
  /** The prompt as text (and a chat's messages) for a cloud model that does not share the tokenizer. */
  cloudPrompt?: { text: string; messages?: readonly CloudMessage[] };
  signal: AbortSignal;
  /**
   * Grammar-constrained decoding (issue #18), compiled for the draft's tokenizer: edge samples
   * under its mask, speculative drafts under it and sends the verifier each position's mask, cloud
   * asks the verifier for the same `response_format`.
   */
  constraint?: CompiledConstraint;
  /** Logprobs with this many top alternatives on every token event (edge and speculative routes). */
  logprobs?: number | undefined;
}

/**
 * A token; text the cloud decoded (a text prompt, or a cloud model without the site's token ids:
 * then this text is the answer and no token events come); a fallback to the draft.
 */
export type RouteEvent =
  | { type: 'token'; token: number; logprob?: TokenLogprob; source?: LogprobSource }
  | { type: 'text'; text: string }
  /** Cloud route: a token's logprob as the server rendered it (texts, no ids), before its token. */
  | { type: 'logprob'; token: LogprobToken }
  | { type: 'fallback'; route: Route; message: string; unverified?: boolean };

export interface RouteDeps {
  /** The draft model; only the cloud route runs without one. */
  model: CausalLm | undefined;
  verifier: VerifierAccess;
  /** The site's own cloud model (`runtime.cloud`) for the cloud route; undefined: the verifier's. */
  cloud?: CloudAccess;
  /** The site's tokenizer, for a cloud answer that comes as text only (counts, a fallback's context). */
  retokenize?: (text: string) => number[];
  /** Each speculative round (site metrics). */
  onRound?: (drafted: number, accepted: number) => void;
}

/** The verifier is unavailable and the fallback does not allow an unverified answer. */
export class VerifierUnavailableError extends Error {
  constructor(
    message: string,
    readonly retryAfterSeconds: number,
    /** Tokens were already produced (and may have been streamed). */
    readonly afterOutput: boolean,
  ) {
    super(message);
    this.name = 'VerifierUnavailableError';
  }
}

export function newRunState(route: Route): RunState {
  return {
    route,
    unverified: false,
    fallback: false,
    draftTokens: 0,
    acceptedTokens: 0,
    verifyRounds: 0,
    draftMs: 0,
    verifyMs: 0,
    emitted: [],
    verifierError: undefined,
    promptTokens: undefined,
  };
}

/** Runs `req` on its route; `state` (updated as it goes) lets the caller read progress. */
export function executeRoute(
  req: RouteRequest,
  deps: RouteDeps,
  state: RunState = newRunState(req.route),
): AsyncGenerator<RouteEvent, ExecFinish, undefined> {
  return new RouteRun(req, deps, state).run();
}

class RouteRun {
  constructor(
    private readonly req: RouteRequest,
    private readonly deps: RouteDeps,
    private readonly state: RunState,
  ) {}

  async *run(): AsyncGenerator<RouteEvent, ExecFinish, undefined> {
    const { req, deps } = this;
    if (req.route === 'edge') return yield* this.edge();
    if (req.route === 'cloud' && req.logprobs !== undefined && deps.cloud !== undefined) {
      // A hosted model's logprobs are not read (only edgectl's verifier's): refused, not left out.
      throw unsupportedValue(
        'logprobs',
        "this request was routed to the site's runtime.cloud model, whose logprobs edgectl does not read",
      );
    }
    if (req.route === 'cloud') {
      // The site's own cloud model (runtime.cloud) where declared, else the verifier's completions.
      const access = deps.cloud ?? verifierAsCloud(deps.verifier);
      const who = deps.cloud ? 'the cloud model' : 'the verifier';
      return yield* this.remote(access, who, (lease) =>
        runCloud(req, this.state, lease.client, deps.retokenize),
      );
    }
    return yield* this.remote(deps.verifier, 'the verifier', (lease) => this.speculative(lease.verifier));
  }

  /** A remote route under the breaker; a failure goes to the fallback. */
  private async *remote<L extends { fail(): void; release(): void }>(
    access: RemoteAccess<L>,
    who: string,
    body: (lease: L) => AsyncGenerator<RouteEvent, ExecFinish | undefined>,
  ): AsyncGenerator<RouteEvent, ExecFinish, undefined> {
    const { req } = this;
    if (access.url === undefined) {
      return yield* this.failover(access, 'no verifier URL is configured for this site', 'unconfigured');
    }
    const breaker = access.breaker;
    if (!breaker.tryAcquire()) {
      return yield* this.failover(
        access,
        `circuit breaker ${breaker.state}: ${who} failed recently`,
        'breaker_open',
      );
    }
    let lease: L | undefined;
    // 'ok' also covers a consumer that ended early (a stop string): the server did its part.
    let verdict: 'ok' | 'failed' | 'other' = 'ok';
    try {
      lease = await verifierCall(() => access.acquire());
      return (yield* body(lease)) ?? 'length';
    } catch (err) {
      if (!(err instanceof VerifierCallError)) {
        verdict = 'other';
        throw err;
      }
      if (req.signal.aborted) {
        verdict = 'other';
        return 'aborted';
      }
      verdict = 'failed';
      breaker.recordFailure();
      lease?.fail();
      return yield* this.failover(access, err.message, err.kind, err.cause);
    } finally {
      if (verdict === 'ok') breaker.recordSuccess();
      lease?.release();
    }
  }

  /** The fallback after a verifier failure: the draft alone, or VerifierUnavailableError. */
  private async *failover<L extends { fail(): void; release(): void }>(
    access: RemoteAccess<L>,
    message: string,
    kind: string,
    cause?: unknown,
  ): AsyncGenerator<RouteEvent, ExecFinish, undefined> {
    const { state } = this;
    state.verifierError = message;
    access.onError?.(message, kind);
    const fb = access.fallback();
    if (fb.kind === 'raise') throw cause ?? new OperationalError(message);
    if (fb.kind === 'unavailable') {
      throw new VerifierUnavailableError(
        `${fb.message} (${message})`,
        fb.retryAfterSeconds,
        state.emitted.length > 0,
      );
    }
    if (fb.kind === 'cloud') {
      const cloud = this.deps.cloud;
      // The site's hosted model answers instead, if nothing was produced yet (it cannot continue
      // the draft's tokens) and it is not the one that just failed; otherwise as edge-unverified.
      // (`access` is generic over its lease type, so the identity check goes through unknown.) A
      // request for logprobs stays on the draft, whose logprobs it can give.
      const eligible = state.emitted.length === 0 && this.req.logprobs === undefined;
      if (cloud !== undefined && (access as unknown) !== cloud && eligible) {
        state.fallback = true;
        state.route = 'cloud';
        yield { type: 'fallback', route: 'cloud', message, unverified: false };
        return yield* this.remote(cloud, 'the cloud model', (lease) =>
          runCloud(this.req, state, lease.client, this.deps.retokenize),
        );
      }
    }
    state.fallback = true;
    state.unverified = true;
    if (state.emitted.length === 0) state.route = 'edge';
    yield { type: 'fallback', route: state.route, message };
    return yield* this.edge();
  }

  private draftModel(): CausalLm {
    const model = this.deps.model;
    if (model === undefined) throw new TypeError(`the ${this.req.route} route needs a draft model`);
    return model;
  }

  private promptIds(): readonly number[] {
    const p = this.req.prompt;
    if (!('ids' in p)) throw new TypeError(`the ${this.req.route} route needs a tokenized prompt`);
    return p.ids;
  }

  /** The draft's own events as tokens; the inference engine's finish reason, if it gave one. */
  private async *consume(
    events: AsyncIterable<GenerateEvent>,
    source: LogprobSource,
  ): AsyncGenerator<RouteEvent, ExecFinish | undefined> {
    let finish: ExecFinish | undefined;
    for await (const e of events) {
      if (e.type === 'done') {
        finish = e.finishReason;
        continue;
      }
      this.state.emitted.push(e.token);
      yield e.logprob
        ? { type: 'token', token: e.token, logprob: e.logprob, source }
        : { type: 'token', token: e.token };
    }
    return finish;
  }

  private common(): {
    sampling: SamplingParams;
    seed?: number;
    eosTokenIds?: number[];
    lora?: LoraFeeds;
    signal: AbortSignal;
    logprobs?: number;
  } {
    const r = this.req;
    return {
      ...(r.logprobs === undefined ? {} : { logprobs: r.logprobs }),
      sampling: r.sampling,
      ...(r.seed === undefined ? {} : { seed: r.seed }),
      // A grammar ends with end-of-sequence, so a constrained request always honours it.
      ...(r.ignoreEos && r.constraint === undefined ? { eosTokenIds: [] } : {}),
      ...(r.lora ? { lora: r.lora } : {}),
      signal: r.signal,
    };
  }

  /** The draft alone, from the tokens already produced (a fallback continues the answer). */
  private async *edge(): AsyncGenerator<RouteEvent, ExecFinish, undefined> {
    const { req, state } = this;
    const remaining = req.maxTokens - state.emitted.length;
    if (remaining <= 0) return 'length';
    const fresh = state.emitted.length === 0;
    const constraint = await matcherAfter(req.constraint, state.emitted);
    try {
      const events = generate(this.draftModel(), [...this.promptIds(), ...state.emitted], {
        ...this.common(),
        maxTokens: remaining,
        ...(fresh && req.cache ? { cache: req.cache } : {}),
        ...(constraint ? { constraint } : {}),
      });
      return (yield* this.consume(events, 'draft')) ?? 'length';
    } finally {
      constraint?.dispose();
    }
  }

  private async *speculative(verifier: HttpVerifier): AsyncGenerator<RouteEvent, ExecFinish | undefined> {
    const { req, state } = this;
    const counting = new CountingVerifier(verifier, (drafted, accepted, draftMs, verifyMs) => {
      state.verifyRounds++;
      state.draftTokens += drafted;
      state.acceptedTokens += accepted;
      state.draftMs += draftMs;
      state.verifyMs += verifyMs;
      this.deps.onRound?.(drafted, accepted);
    });
    const d = req.drafting;
    if (req.constraint) verifier.requireMaskSupport();
    const constraint = await matcherAfter(req.constraint, state.emitted);
    try {
      const events = generateSpeculative(this.draftModel(), counting, this.promptIds(), {
        ...this.common(),
        maxTokens: req.maxTokens,
        ...(req.cache ? { cache: req.cache } : {}),
        k: d.k,
        ...(d.adaptive ? { adaptive: d.adaptive } : {}),
        ...(d.minDraftConfidence === undefined ? {} : { minDraftConfidence: d.minDraftConfidence }),
        verifierMaxPositions: verifier.maxContext,
        ...(constraint ? { constraint } : {}),
      });
      return yield* this.consume(events, 'verifier');
    } finally {
      constraint?.dispose();
    }
  }
}

/** What a caller that does not yield events does with a run's tokens (generate, benchmarks). */
export interface DrainHandlers {
  /** Each token; true ends the run now (a stop string was found). */
  token?: (token: number) => boolean | void;
  /** Text the verifier decoded (cloud route on a text prompt). */
  text?: (text: string) => void;
}

/** Runs `run` to its end with `on`'s handlers; `stop` when a handler ended it. */
export async function drainRoute(
  run: AsyncGenerator<RouteEvent, ExecFinish, undefined>,
  on: DrainHandlers,
): Promise<ExecFinish> {
  try {
    for (;;) {
      const n = await run.next();
      if (n.done) return n.value;
      const e = n.value;
      if (e.type === 'token' && on.token?.(e.token) === true) return 'stop';
      if (e.type === 'text') on.text?.(e.text);
    }
  } finally {
    await run.return('stop');
  }
}
