/**
 * The site engine (issue #16 item 1; docs/architecture.md, runtime): everything a site request goes
 * through between a transport and the models, with no HTTP in it. `run(request, signal)` leases the
 * generation serving now (a hot swap never touches a running request; the lease is released exactly
 * once, when the run ends however it ends), runs the request's steps (request-run.ts: validate,
 * bound, admission, block, redact, encode, route, the route executor with fallback and breaker,
 * restore) and yields engine events — route decided, redactions, blocked, text, fallback, finish —
 * returning the feedback outcome. The engine owns the parts requests share: admission, the prompt
 * worker pool, the verifier pool with its circuit breaker, the request metrics, the shadow runner
 * (a sampled request re-run with a rollout's shadow adapter once its answer was delivered) and
 * outcome reporting (metrics, a debug log line, the daemon's `onOutcome`).
 */
import { MAX_DRAFT_TOKENS } from '../../inference/in-process-verifier.js';
import type { FeedbackContext, RequestOutcome } from '../../feedback/accumulator.js';
import { HttpError } from '../../http/http.js';
import type { RuntimeRequestStatus, RuntimeServerOptions } from '../contract.js';
import { GenerationAdmission } from './admission.js';
import type { LoadedGeneration } from './generation.js';
import { RuntimeMetrics } from './metrics.js';
import { PromptPool } from './prompt-pool.js';
import { DEFAULT_SHADOW_SAMPLE, ShadowRunner, type ShadowJob } from './shadow.js';
import { VerifierPool } from './verifier-pool.js';
import { CloudPool, type CloudAccess } from './cloud-access.js';
import { RequestRun } from './request-run.js';
import { withToolCalls } from './tool-calls.js';
import type { EngineEvent, EngineRequest } from './types.js';

/** What the engine takes from the daemon (the server's options minus the HTTP ones). */
export type SiteEngineOptions = Pick<
  RuntimeServerOptions<LoadedGeneration>,
  | 'generations'
  | 'verifierUrl'
  | 'verifierToken'
  | 'cloud'
  | 'maxConcurrent'
  | 'maxQueue'
  | 'onOutcome'
  | 'shadowSample'
  | 'onShadow'
  | 'metrics'
  | 'log'
>;

/** The shared parts one request's steps use (request-run.ts). */
export interface EngineParts {
  admission: GenerationAdmission;
  prompts: PromptPool;
  pool: VerifierPool;
  metrics: RuntimeMetrics;
  verifierUrl: () => string | undefined;
  /** The cloud route's access to the site's `runtime.cloud` model; undefined: the verifier serves it. */
  cloudAccess: (g: LoadedGeneration) => CloudAccess | undefined;
  /** Longest draft the verifier protocol takes (the policy's maxDraftTokens is capped by it). */
  maxDraftTokens: number;
  report(outcome: RequestOutcome, g: LoadedGeneration, label: string | undefined): void;
  scheduleShadow(
    g: LoadedGeneration,
    adapter: string | undefined,
    job: Omit<ShadowJob, 'adapter'>,
    delivered: Promise<boolean> | undefined,
  ): void;
}

export class SiteEngine {
  readonly metrics: RuntimeMetrics;
  private readonly admission: GenerationAdmission;
  private readonly prompts = new PromptPool();
  private readonly pool: VerifierPool;
  private readonly cloudPool: CloudPool;
  private readonly shadow: ShadowRunner | undefined;
  private readonly parts: EngineParts;
  private active = 0;
  private idle: (() => void) | undefined;

  constructor(private readonly opts: SiteEngineOptions) {
    const admission = new GenerationAdmission(opts.maxConcurrent, opts.maxQueue);
    this.admission = admission;
    this.metrics = new RuntimeMetrics(opts.metrics, {
      inFlight: () => admission.active,
      queued: () => admission.queued,
    });
    this.pool = new VerifierPool(
      Date.now,
      (from, to) =>
        opts.log(to === 'open' ? 'warn' : 'info', `verifier circuit breaker ${from} -> ${to}`, {
          verifier: opts.verifierUrl() ?? null,
        }),
      opts.verifierToken,
    );
    this.cloudPool = new CloudPool(process.env, Date.now, (from, to) =>
      opts.log(to === 'open' ? 'warn' : 'info', `cloud model circuit breaker ${from} -> ${to}`, {
        cloud: opts.cloud?.()?.url ?? null,
      }),
    );
    const onShadow = opts.onShadow;
    this.shadow = onShadow
      ? new ShadowRunner({
          sample: opts.shadowSample ?? DEFAULT_SHADOW_SAMPLE,
          pool: this.pool,
          verifierUrl: opts.verifierUrl,
          onShadow,
          busy: () => admission.queued > 0,
          log: opts.log,
        })
      : undefined;
    this.parts = {
      admission,
      prompts: this.prompts,
      pool: this.pool,
      metrics: this.metrics,
      verifierUrl: opts.verifierUrl,
      cloudAccess: (g) => this.cloudAccess(g),
      maxDraftTokens: MAX_DRAFT_TOKENS,
      report: (o, g, label) => this.report(o, g, label),
      scheduleShadow: (g, adapter, job, delivered) => this.scheduleShadow(g, adapter, job, delivered),
    };
  }

  /**
   * Serves one request (module comment). Throws an HttpError (503 before a generation is
   * installed; 4xx/5xx from the steps, after the outcome was reported).
   */
  async *run(
    req: EngineRequest,
    signal: AbortSignal,
  ): AsyncGenerator<EngineEvent, RequestOutcome, undefined> {
    const lease = this.opts.generations.acquire();
    if (!lease) {
      throw new HttpError(
        503,
        'no generation is installed yet (the site is still syncing)',
        'not_ready',
        'server_error',
        {
          'retry-after': '1',
        },
      );
    }
    this.active++;
    try {
      const steps = new RequestRun(this.parts, lease.generation, req, signal).steps();
      // With tools, the output is read as tool calls (tool-calls.ts).
      return yield* req.tools ? withToolCalls(steps, req.tools) : steps;
    } finally {
      lease.release();
      if (--this.active === 0) this.idle?.();
    }
  }

  /** Parses a JSON request body, off the event loop when it is big (prompt-pool.ts). */
  parseJson(body: Buffer): Promise<unknown> {
    return this.prompts.parseJson(body);
  }

  status(): RuntimeRequestStatus {
    return {
      inFlight: this.admission.active,
      queued: this.admission.queued,
      requests: { ...this.metrics.requests },
      acceptance: this.metrics.acceptance(),
      ...this.metrics.latency(),
      verifier: {
        url: this.opts.verifierUrl() ?? null,
        breaker: this.pool.breakerState,
        lastError: this.pool.lastError,
      },
    };
  }

  /** Waits (up to `ms`) until no request holds a generation. */
  async drain(ms: number): Promise<void> {
    if (this.active === 0) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.idle = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  /** Stops a shadow run in progress and closes the verifier clients and the prompt worker. */
  async close(): Promise<void> {
    await this.shadow?.close();
    this.pool.close();
    this.prompts.close();
  }

  private cloudAccess(g: LoadedGeneration): CloudAccess | undefined {
    const cloud = this.opts.cloud?.();
    if (cloud === undefined) return undefined;
    return this.cloudPool.access(cloud, g.policy, (_m, kind) => this.metrics.verifierError(kind));
  }

  private report(o: RequestOutcome, g: LoadedGeneration, label: string | undefined): void {
    this.metrics.outcome(o);
    this.opts.log('debug', `${label ?? 'request'} ${o.route}${o.error ? ' failed' : ''}`, {
      generation: g.id,
      outputTokens: o.outputTokens ?? 0,
      e2eMs: Math.round(o.e2eMs ?? 0),
      ...(o.fallback ? { fallback: true } : {}),
    });
    try {
      this.opts.onOutcome(o, g.context as FeedbackContext);
    } catch (err) {
      this.opts.log('error', `onOutcome failed: ${(err as Error).message}`);
    }
  }

  /**
   * Shadow run of a served request (rollout shadow steps, shadow.ts): the generation is leased now
   * and the run starts only once the answer was delivered, so it never delays the user.
   */
  private scheduleShadow(
    g: LoadedGeneration,
    adapter: string | undefined,
    job: Omit<ShadowJob, 'adapter'>,
    delivered: Promise<boolean> | undefined,
  ): void {
    const shadow = this.shadow;
    const picked = shadow?.pick(g, adapter);
    if (!shadow || !picked) return;
    const extra = this.opts.generations.acquire();
    if (!extra) return;
    if (extra.generation !== g) return extra.release();
    void (delivered ?? Promise.resolve(true)).then((sent) => {
      if (sent) setImmediate(() => shadow.start({ ...job, adapter: picked }, extra));
      else extra.release();
    });
  }
}
