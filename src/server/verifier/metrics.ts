/**
 * The verifier's counters, kept once and shown twice: Prometheus text on /metrics (prom-client,
 * one registry per server so several servers can live in one test process) and a JSON snapshot
 * on /v1/stats that benchmarks diff before and after a run. The counters that measure verifier
 * cost — forward calls, positions processed, process CPU seconds — are the ones the speculative
 * benchmark divides by output tokens.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { registerProcessMetrics } from '../process-metrics.js';

export type ForwardKind = 'prefill' | 'verify' | 'decode';

export interface VerifierStats {
  /** Forward passes requested (one per prefill, verify round or decode step), all kinds. */
  forwardCalls: number;
  /** ONNX Runtime runs: equal to forwardCalls, fewer when passes are micro-batched (--batch). */
  modelRuns: number;
  /** Token positions those passes computed (prefill length, k+1 per verify, 1 per decode step). */
  positionsProcessed: number;
  /** Process CPU time (user + system) since the server started. */
  cpuSeconds: number;
  sessionsLive: number;
  sessionsCreated: number;
  queueDepth: number;
  activeForwards: number;
  rejections: number;
  draftTokens: number;
  acceptedTokens: number;
  verifyRounds: number;
  /** Tokens produced by /v1/completions (cloud-only generation). */
  completionTokens: number;
  /** /v1/completions generations running now, and those cut short by a client disconnect. */
  generationsLive: number;
  generationsAborted: number;
  /** Sessions released, by reason. */
  sessionsReleased: { deleted: number; expired: number; closed: number };
  uptimeSeconds: number;
}

export interface MetricsSources {
  sessionsLive: () => number;
  sessionsReleased: () => VerifierStats['sessionsReleased'];
  queueDepth: () => number;
  activeForwards: () => number;
  /** ONNX Runtime runs when batching; absent = one run per forward call. */
  modelRuns?: () => number;
}

export class VerifierMetrics {
  readonly registry = new Registry();
  private readonly cpuAtStart = process.cpuUsage();
  private readonly startedAt = performance.now();
  private readonly totals = {
    forwardCalls: 0,
    positionsProcessed: 0,
    rejections: 0,
    draftTokens: 0,
    acceptedTokens: 0,
    verifyRounds: 0,
    completionTokens: 0,
    sessionsCreated: 0,
    generationsLive: 0,
    generationsAborted: 0,
  };

  private readonly forwardCalls: Counter<'kind'>;
  private readonly positions: Counter<'kind'>;
  private readonly rejectionsCounter: Counter<'reason'>;
  private readonly draftCounter: Counter;
  private readonly acceptedCounter: Counter;
  private readonly roundsCounter: Counter;
  private readonly completionCounter: Counter;
  private readonly forwardSeconds: Histogram<'kind'>;
  /** Label-bound children per forward kind: one pass per token must not hash label sets each time. */
  private readonly byKind: Record<
    ForwardKind,
    { calls: Counter.Internal; positions: Counter.Internal; seconds: Histogram.Internal<'kind'> }
  >;
  private readonly requestSeconds: Histogram<'path' | 'method' | 'status'>;

  constructor(private readonly sources: MetricsSources) {
    const registers = [this.registry];
    registerProcessMetrics(this.registry, 'verifier');
    this.forwardCalls = new Counter({
      name: 'edgectl_verifier_forward_calls_total',
      help: 'Verifier model forward passes, by kind (prefill, verify, decode).',
      labelNames: ['kind'],
      registers,
    });
    this.positions = new Counter({
      name: 'edgectl_verifier_positions_processed_total',
      help: 'Token positions computed by verifier forward passes, by kind.',
      labelNames: ['kind'],
      registers,
    });
    const cpuAtStart = this.cpuAtStart;
    new Counter({
      name: 'edgectl_verifier_cpu_seconds_total',
      help: 'CPU seconds (user + system) used by the verifier process since start.',
      registers,
      collect() {
        this.reset();
        this.inc(cpuSecondsSince(cpuAtStart));
      },
    });
    new Gauge({
      name: 'edgectl_verifier_sessions_live',
      help: 'Sessions holding a KV cache.',
      registers,
      collect() {
        this.set(sources.sessionsLive());
      },
    });
    const totals = this.totals;
    new Counter({
      name: 'edgectl_verifier_model_runs_total',
      help: 'ONNX Runtime runs (fewer than forward calls when passes are micro-batched).',
      registers,
      collect() {
        this.reset();
        this.inc(sources.modelRuns?.() ?? totals.forwardCalls);
      },
    });
    new Gauge({
      name: 'edgectl_verifier_generations_live',
      help: 'Completions being generated.',
      registers,
      collect() {
        this.set(totals.generationsLive);
      },
    });
    new Gauge({
      name: 'edgectl_verifier_queue_depth',
      help: 'Requests waiting for a forward-pass slot.',
      registers,
      collect() {
        this.set(sources.queueDepth());
      },
    });
    this.rejectionsCounter = new Counter({
      name: 'edgectl_verifier_rejections_total',
      help: 'Requests refused for overload, by reason.',
      labelNames: ['reason'],
      registers,
    });
    this.draftCounter = new Counter({
      name: 'edgectl_verifier_draft_tokens_total',
      help: 'Draft tokens submitted for verification.',
      registers,
    });
    this.acceptedCounter = new Counter({
      name: 'edgectl_verifier_accepted_tokens_total',
      help: 'Draft tokens accepted.',
      registers,
    });
    this.roundsCounter = new Counter({
      name: 'edgectl_verifier_verify_rounds_total',
      help: 'Verify calls (session and stateless).',
      registers,
    });
    this.completionCounter = new Counter({
      name: 'edgectl_verifier_completion_tokens_total',
      help: 'Tokens generated by /v1/completions.',
      registers,
    });
    this.forwardSeconds = new Histogram({
      name: 'edgectl_verifier_forward_duration_seconds',
      help: 'Wall time of one forward pass, by kind.',
      labelNames: ['kind'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    this.requestSeconds = new Histogram({
      name: 'edgectl_verifier_request_duration_seconds',
      // `path`, not `route`: on the site `route` means edge/speculative/cloud, one meaning per label.
      help: 'HTTP request latency, by path (the route pattern), method and status.',
      labelNames: ['path', 'method', 'status'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
      registers,
    });
    const bind = (kind: ForwardKind) => ({
      calls: this.forwardCalls.labels({ kind }),
      positions: this.positions.labels({ kind }),
      seconds: this.forwardSeconds.labels({ kind }),
    });
    this.byKind = { prefill: bind('prefill'), verify: bind('verify'), decode: bind('decode') };
  }

  forward(kind: ForwardKind, positions: number, seconds: number): void {
    this.totals.forwardCalls++;
    this.totals.positionsProcessed += positions;
    const m = this.byKind[kind];
    m.calls.inc();
    m.positions.inc(positions);
    m.seconds.observe(seconds);
  }

  verifyRound(drafted: number, accepted: number): void {
    this.totals.verifyRounds++;
    this.totals.draftTokens += drafted;
    this.totals.acceptedTokens += accepted;
    this.roundsCounter.inc();
    this.draftCounter.inc(drafted);
    this.acceptedCounter.inc(accepted);
  }

  completionTokens(n: number): void {
    this.totals.completionTokens += n;
    this.completionCounter.inc(n);
  }

  generationStarted(): void {
    this.totals.generationsLive++;
  }

  generationEnded(): void {
    this.totals.generationsLive--;
  }

  generationAborted(): void {
    this.totals.generationsAborted++;
  }

  sessionCreated(): void {
    this.totals.sessionsCreated++;
  }

  rejected(reason: string): void {
    this.totals.rejections++;
    this.rejectionsCounter.inc({ reason });
  }

  request(path: string, method: string, status: number, seconds: number): void {
    this.requestSeconds.observe({ path, method, status: String(status) }, seconds);
  }

  snapshot(): VerifierStats {
    return {
      ...this.totals,
      modelRuns: this.sources.modelRuns?.() ?? this.totals.forwardCalls,
      cpuSeconds: cpuSecondsSince(this.cpuAtStart),
      sessionsLive: this.sources.sessionsLive(),
      sessionsReleased: { ...this.sources.sessionsReleased() },
      queueDepth: this.sources.queueDepth(),
      activeForwards: this.sources.activeForwards(),
      uptimeSeconds: (performance.now() - this.startedAt) / 1000,
    };
  }

  async prometheus(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}

function cpuSecondsSince(start: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(start);
  return (d.user + d.system) / 1e6;
}
