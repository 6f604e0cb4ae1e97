/**
 * Shadow runs (rollout shadow steps, docs/rollouts.md): a sample of served requests whose adapter
 * has a shadow adapter of the same name in the generation (`shadow/<name>`) is decoded again,
 * after the response has been sent, speculatively with the shadow adapter against the verifier,
 * on the same (redacted) prompt ids, sampling and seed, for as many tokens as were served. The
 * output is discarded; only drafted and accepted tokens and verify rounds are reported
 * (`onShadow`), so a candidate's acceptance is measured before any user sees it.
 *
 * Bounded by construction: at most one shadow run at a time per runtime, none while requests wait
 * for admission (a shadow never takes a user's turn), and a run that fails is only counted — it
 * never touches the circuit breaker, the request metrics or the served response. The generation
 * lease the caller passes keeps the adapter alive until the run ends.
 */
import type { RoundCosts } from '../../inference/adaptive-k.js';
import { generateSpeculative } from '../../inference/generate.js';
import type { CompiledConstraint } from '../../inference/grammar/index.js';
import { MAX_DRAFT_TOKENS } from '../../inference/in-process-verifier.js';
import type { SamplingParams } from '../../inference/sampling.js';
import type { FeedbackContext, ShadowOutcome } from '../../feedback/accumulator.js';
import type { GenerationLease } from '../contract.js';
import { CountingVerifier } from './counting-verifier.js';
import type { LoadedGeneration, ShadowAdapter } from './generation.js';
import type { VerifierPool } from './verifier-pool.js';

/** Default share of eligible requests that get a shadow run (`--shadow-sample`). */
export const DEFAULT_SHADOW_SAMPLE = 0.2;

export interface ShadowJob {
  adapter: ShadowAdapter;
  promptIds: readonly number[];
  /** Tokens the served answer produced: the shadow decodes as many. */
  maxTokens: number;
  sampling: SamplingParams;
  seed: number | undefined;
  /**
   * What the served request's rounds cost (its drafting per token and its verify calls). The shadow
   * chooses its draft lengths with these instead of its own timing: it runs alone on an idle site,
   * where drafting looks cheap and adaptive k drafts longer, and a longer draft accepts a smaller
   * share of its tokens, so its acceptance would not compare with the served one it is judged against.
   */
  costs?: RoundCosts | undefined;
  /**
   * The served request's grammar (`response_format`, tool calls): the shadow drafts under the same
   * masks, or its acceptance would be measured on free text while the served one was constrained.
   */
  constraint?: CompiledConstraint | undefined;
}

export interface ShadowRunnerOptions {
  sample: number;
  pool: VerifierPool;
  verifierUrl: () => string | undefined;
  onShadow: (outcome: ShadowOutcome, context: FeedbackContext) => void;
  /** Requests are waiting for admission: skip rather than compete with them. */
  busy: () => boolean;
  log: (level: 'debug' | 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
  random?: () => number;
}

export interface ShadowStats {
  runs: number;
  errors: number;
  /** Sampled requests not shadowed because a run was in progress or requests were waiting. */
  skipped: number;
}

export class ShadowRunner {
  private running: Promise<void> | undefined;
  private readonly abort = new AbortController();
  private readonly random: () => number;
  readonly stats: ShadowStats = { runs: 0, errors: 0, skipped: 0 };

  constructor(private readonly opts: ShadowRunnerOptions) {
    this.random = opts.random ?? Math.random;
  }

  /** The shadow adapter a request on `adapter` should be re-run with, when the coin says so. */
  pick(gen: LoadedGeneration, adapter: string | undefined): ShadowAdapter | undefined {
    if (adapter === undefined || this.opts.sample <= 0) return undefined;
    const shadow = gen.shadowAdapters.get(adapter);
    if (!shadow) return undefined;
    return this.random() < this.opts.sample ? shadow : undefined;
  }

  /**
   * Starts a run holding `lease` (released when it ends); false, with the lease released at once,
   * when a run is in progress, requests are waiting, or the runner is closed.
   */
  start(job: ShadowJob, lease: GenerationLease<LoadedGeneration>): boolean {
    // A one-token answer would be the verifier's first token alone: nothing drafted, nothing learnt.
    if (this.running || this.abort.signal.aborted || this.opts.busy() || job.maxTokens < 2) {
      this.stats.skipped++;
      lease.release();
      return false;
    }
    const run = this.run(job, lease.generation).finally(() => {
      lease.release();
      this.running = undefined;
    });
    this.running = run;
    return true;
  }

  /** Stops a run in progress (its result is dropped) and waits for it to let go. */
  async close(): Promise<void> {
    this.abort.abort();
    await this.running;
  }

  /** The run in progress, if any (tests wait on it). */
  get idle(): Promise<void> {
    return this.running ?? Promise.resolve();
  }

  private async run(job: ShadowJob, gen: LoadedGeneration): Promise<void> {
    const { ref, manifestDigest } = job.adapter.ref;
    const signal = this.abort.signal;
    const url = this.opts.verifierUrl();
    const counting = { drafted: 0, accepted: 0, rounds: 0 };
    try {
      if (url === undefined) throw new Error('no verifier URL is configured for this site');
      const policy = gen.policy;
      const lease = await this.opts.pool.acquire(url, gen.tokenizerSha256, policy.verifier.timeoutMs);
      try {
        if (job.constraint) lease.verifier.requireMaskSupport();
        const constraint = job.constraint ? await job.constraint.matcher() : undefined;
        const verifier = new CountingVerifier(lease.verifier, (drafted, accepted) => {
          counting.drafted += drafted;
          counting.accepted += accepted;
          counting.rounds++;
        });
        const spec = policy.routing.speculative;
        const max = Math.min(spec.maxDraftTokens, MAX_DRAFT_TOKENS);
        const events = generateSpeculative(gen.model, verifier, job.promptIds, {
          maxTokens: job.maxTokens,
          sampling: job.sampling,
          ...(job.seed === undefined ? {} : { seed: job.seed }),
          lora: job.adapter.adapter.feeds,
          k: 'auto',
          adaptive: {
            min: Math.min(spec.minDraftTokens, max),
            max,
            ...(job.costs === undefined ? {} : { costs: job.costs }),
          },
          minDraftConfidence: spec.minDraftConfidence,
          verifierMaxPositions: lease.verifier.maxContext,
          signal,
          ...(constraint ? { constraint } : {}),
        });
        try {
          for await (const e of events) void e; // output discarded: only the counts matter
        } finally {
          constraint?.dispose();
        }
      } finally {
        lease.release();
      }
      if (signal.aborted) return;
      this.stats.runs++;
      this.report(gen, {
        ref,
        manifestDigest,
        draftTokens: counting.drafted,
        acceptedTokens: counting.accepted,
        verifyRounds: counting.rounds,
      });
    } catch (err) {
      if (signal.aborted) return;
      this.stats.runs++;
      this.stats.errors++;
      this.opts.log('debug', `shadow run of ${ref} failed: ${(err as Error).message}`);
      this.report(gen, {
        ref,
        manifestDigest,
        draftTokens: 0,
        acceptedTokens: 0,
        verifyRounds: 0,
        error: true,
      });
    }
  }

  private report(gen: LoadedGeneration, outcome: ShadowOutcome): void {
    try {
      this.opts.onShadow(outcome, gen.context);
    } catch (err) {
      this.opts.log('error', `onShadow failed: ${(err as Error).message}`);
    }
  }
}
