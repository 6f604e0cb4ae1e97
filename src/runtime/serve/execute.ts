/**
 * Runs one request's generation on its route and hands each token to the caller as it is produced:
 * edge (the draft alone), speculative (the draft proposes, the HTTP verifier decides) or cloud (the
 * verifier's `/v1/completions` on the redacted prompt's token ids). It owns what happens when the
 * verifier cannot help: the circuit breaker is asked before any call, every failure is recorded in
 * it, and the policy's fallback decides — continue on the draft alone from the tokens already
 * produced (the answer is marked unverified), or fail with 503 and Retry-After (an error event when
 * output has already been streamed). Every verifier call has the policy's timeout, so a verifier
 * that hangs costs at most one timeout, never a hung request.
 *
 * Speculative statistics are counted by wrapping the verifier session rather than read from the
 * engine's final `done` event, because a request can end early (stop string, client gone, fallback)
 * without one.
 */
import {
  generate,
  generateSpeculative,
  type FinishReason,
  type GenerateEvent,
} from '../../inference/generate.js';
import type { HttpVerifier } from '../../inference/http-verifier.js';
import { MAX_DRAFT_TOKENS } from '../../inference/in-process-verifier.js';
import type { KvCache } from '../../inference/kv-cache.js';
import type { LoraFeeds } from '../../inference/lora-slots.js';
import { hasRepetitionPenalty, type SamplingParams } from '../../inference/sampling.js';
import type {
  Verifier,
  VerifierSession,
  VerifierStartOptions,
  VerifyRequest,
  VerifyResult,
} from '../../inference/verifier.js';
import { verifierFallback } from '../../policy/circuit-breaker.js';
import type { Route } from '../../policy/schema.js';
import type { LoadedGeneration } from './generation.js';
import type { RuntimeMetrics } from './metrics.js';
import type { VerifierLease, VerifierPool } from './verifier-pool.js';

/** What the request has produced so far and how (read by the server for headers and the outcome). */
export interface RunState {
  /** The route serving the request: the decided one, or `edge` when a fallback came before any token. */
  route: Route;
  unverified: boolean;
  fallback: boolean;
  draftTokens: number;
  acceptedTokens: number;
  verifyRounds: number;
  /** Milliseconds spent drafting (between verify calls) and in verify calls, over all rounds. */
  draftMs: number;
  verifyMs: number;
  emitted: number[];
  verifierError: string | undefined;
}

export interface RunOptions {
  gen: LoadedGeneration;
  route: Route;
  promptIds: readonly number[];
  maxTokens: number;
  sampling: SamplingParams;
  seed: number | undefined;
  /** Generate past end-of-sequence (benchmarks). */
  ignoreEos: boolean;
  lora: LoraFeeds | undefined;
  /** The draft's cache over the prompt (from the router's entropy pass), with the same adapter. */
  cache: KvCache | undefined;
  signal: AbortSignal;
  verifierUrl: string | undefined;
  pool: VerifierPool;
  metrics: RuntimeMetrics;
  /** Each generated token; returning true ends the generation (a stop string was found). */
  onToken: (token: number) => boolean;
}

/** The verifier is unavailable and the policy does not allow an unverified answer. */
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

/** A failure of the verifier (as opposed to the draft or the client), with a metrics label. */
class VerifierCallError extends Error {
  constructor(
    cause: unknown,
    readonly kind: string,
  ) {
    super(cause instanceof Error ? cause.message : String(cause), { cause });
  }
}

function kindOf(err: unknown): string {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' ? code.toLowerCase().replace(/^e_/, '') : 'error';
}

async function verifierCall<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw err instanceof VerifierCallError ? err : new VerifierCallError(err, kindOf(err));
  }
}

/**
 * Counts rounds into the run state and the metrics, and tags verifier failures. It also times them:
 * a verify call's own duration, and the draft time before it (since the session started or the
 * previous answer came back), which a shadow run of the request reuses as its costs (shadow.ts).
 */
class CountingVerifier implements Verifier {
  constructor(
    private readonly inner: Verifier,
    private readonly onRound: (drafted: number, accepted: number, draftMs: number, verifyMs: number) => void,
  ) {}

  get vocabSize(): number {
    return this.inner.vocabSize;
  }

  async start(promptIds: readonly number[], opts?: VerifierStartOptions): Promise<VerifierSession> {
    const session = await verifierCall(() => this.inner.start(promptIds, opts));
    const onRound = this.onRound;
    let lastAnswer = performance.now();
    return {
      id: session.id,
      async verify(request: VerifyRequest): Promise<VerifyResult> {
        const sent = performance.now();
        const r = await verifierCall(() => session.verify(request));
        const answered = performance.now();
        const draftMs = sent - lastAnswer;
        lastAnswer = answered;
        if (!(Number.isInteger(r.accepted) && r.accepted >= 0 && r.accepted <= request.draft.length)) {
          throw new VerifierCallError(
            new Error(`the verifier accepted ${r.accepted} of ${request.draft.length} drafted tokens`),
            'protocol',
          );
        }
        onRound(request.draft.length, r.accepted, draftMs, answered - sent);
        return r;
      },
      // Not awaited: the DELETE is best effort (the verifier's TTL frees the session anyway), and
      // waiting for it would add a round trip to every answer, or a whole timeout after a failure.
      close: () => {
        void session.close().catch(() => undefined);
        return Promise.resolve();
      },
    };
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
  };
}

/** Runs the generation; `state` (updated as it goes) lets the caller read progress while streaming. */
export async function runGeneration(
  opts: RunOptions,
  state: RunState = newRunState(opts.route),
): Promise<{ finish: FinishReason; state: RunState }> {
  const { gen, signal } = opts;
  let finish: FinishReason | undefined;

  const consume = async (events: AsyncIterable<GenerateEvent>): Promise<void> => {
    for await (const e of events) {
      if (e.type === 'done') {
        finish = e.finishReason;
        continue;
      }
      state.emitted.push(e.token);
      if (opts.onToken(e.token)) {
        finish = 'stop';
        return; // leaving the loop closes the generator (and its verifier session)
      }
    }
  };

  const edge = async (): Promise<void> => {
    const remaining = opts.maxTokens - state.emitted.length;
    if (remaining <= 0) {
      finish = 'length';
      return;
    }
    const fresh = state.emitted.length === 0;
    await consume(
      generate(gen.model, [...opts.promptIds, ...state.emitted], {
        maxTokens: remaining,
        sampling: opts.sampling,
        ...(opts.seed === undefined ? {} : { seed: opts.seed }),
        ...(opts.ignoreEos ? { eosTokenIds: [] } : {}),
        ...(opts.lora ? { lora: opts.lora } : {}),
        ...(fresh && opts.cache ? { cache: opts.cache } : {}),
        signal,
      }),
    );
  };

  if (opts.route === 'edge') {
    await edge();
    return { finish: finish ?? 'length', state };
  }

  const policy = gen.policy;
  const breaker = opts.pool.breaker(policy, opts.verifierUrl);
  const failover = async (message: string, kind: string): Promise<void> => {
    state.verifierError = message;
    opts.pool.lastError = message;
    opts.metrics.verifierError(kind);
    const fb = verifierFallback(policy, breaker);
    if (fb.kind === 'unavailable') {
      throw new VerifierUnavailableError(
        `${fb.message} (${message})`,
        fb.retryAfterSeconds,
        state.emitted.length > 0,
      );
    }
    state.fallback = true;
    state.unverified = true;
    if (state.emitted.length === 0) state.route = 'edge';
    await edge();
  };

  if (opts.verifierUrl === undefined) {
    await failover('no verifier URL is configured for this site', 'unconfigured');
    return { finish: finish ?? 'length', state };
  }
  if (!breaker.tryAcquire()) {
    await failover(`circuit breaker ${breaker.state}: the verifier failed recently`, 'breaker_open');
    return { finish: finish ?? 'length', state };
  }

  let lease: VerifierLease | undefined;
  try {
    const url = opts.verifierUrl;
    lease = await verifierCall(() => opts.pool.acquire(url, gen.tokenizerSha256, policy.verifier.timeoutMs));
    if (opts.route === 'speculative') await speculative(opts, lease.verifier, state, consume);
    else finish = await cloud(opts, lease.verifier, state);
    if (finish === undefined && state.emitted.length >= opts.maxTokens) finish = 'length';
    breaker.recordSuccess();
  } catch (err) {
    if (!(err instanceof VerifierCallError)) throw err;
    if (signal.aborted) return { finish: 'aborted', state };
    breaker.recordFailure();
    lease?.fail();
    await failover(err.message, err.kind);
  } finally {
    lease?.release();
  }
  return { finish: finish ?? 'length', state };
}

async function speculative(
  opts: RunOptions,
  verifier: HttpVerifier,
  state: RunState,
  consume: (events: AsyncIterable<GenerateEvent>) => Promise<void>,
): Promise<void> {
  const spec = opts.gen.policy.routing.speculative;
  const counting = new CountingVerifier(verifier, (drafted, accepted, draftMs, verifyMs) => {
    state.verifyRounds++;
    state.draftTokens += drafted;
    state.acceptedTokens += accepted;
    state.draftMs += draftMs;
    state.verifyMs += verifyMs;
    opts.metrics.round(drafted, accepted);
  });
  const max = Math.min(spec.maxDraftTokens, MAX_DRAFT_TOKENS);
  await consume(
    generateSpeculative(opts.gen.model, counting, opts.promptIds, {
      maxTokens: opts.maxTokens,
      sampling: opts.sampling,
      ...(opts.seed === undefined ? {} : { seed: opts.seed }),
      ...(opts.ignoreEos ? { eosTokenIds: [] } : {}),
      ...(opts.lora ? { lora: opts.lora } : {}),
      ...(opts.cache ? { cache: opts.cache } : {}),
      k: 'auto',
      adaptive: { min: Math.min(spec.minDraftTokens, max), max },
      minDraftConfidence: spec.minDraftConfidence,
      verifierMaxPositions: verifier.maxContext,
      signal: opts.signal,
    }),
  );
}

/** Cloud-only: the verifier generates from the redacted prompt's ids; tokens are decoded here. */
async function cloud(opts: RunOptions, verifier: HttpVerifier, state: RunState): Promise<FinishReason> {
  const ac = new AbortController();
  const onAbort = () => ac.abort();
  opts.signal.addEventListener('abort', onAbort, { once: true });
  let finish: FinishReason | undefined;
  try {
    const chunks = verifier.complete(
      {
        prompt: [...opts.promptIds],
        max_tokens: opts.maxTokens,
        temperature: opts.sampling.temperature,
        ...(opts.sampling.topP === undefined ? {} : { top_p: opts.sampling.topP }),
        ...(hasRepetitionPenalty(opts.sampling)
          ? { repetition_penalty: opts.sampling.repetitionPenalty as number }
          : {}),
        ...(opts.seed === undefined ? {} : { seed: opts.seed }),
        ...(opts.ignoreEos ? { ignore_eos: true } : {}),
      },
      ac.signal,
    );
    for await (const c of chunks) {
      const choice = c.choices[0];
      if (!choice) continue;
      for (const token of choice.token_ids) {
        state.emitted.push(token);
        // One verifier pass per cloud token (what `edgectl generate` reports too).
        state.verifyRounds++;
        if (opts.onToken(token)) return 'stop';
      }
      if (choice.finish_reason) finish = choice.finish_reason === 'length' ? 'length' : 'eos';
    }
    return finish ?? 'length';
  } catch (err) {
    if (opts.signal.aborted) return 'aborted';
    throw err instanceof VerifierCallError ? err : new VerifierCallError(err, kindOf(err));
  } finally {
    opts.signal.removeEventListener('abort', onAbort);
    ac.abort();
  }
}
