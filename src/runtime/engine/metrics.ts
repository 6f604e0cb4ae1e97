/**
 * The request path's numbers, kept once and shown twice: Prometheus series in the daemon's
 * registry (`/metrics`, prefix `edgectl_runtime_`) and the `runtime` part of `/v1/status`
 * (requests by route, running acceptance, TTFT and end-to-end p95 over recent requests). Running
 * acceptance is also a router input (abstain.minAcceptance), so it is computed over a window of
 * recent speculative rounds rather than since start: it must follow the traffic. The window is
 * also bounded in time: while the router abstains no speculative round happens, so a count-only
 * window would keep the low figure forever and the site would never try speculation again; with
 * the age bound the figure lapses and the next requests measure afresh.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Route } from '../../policy/schema.js';
import type { RequestOutcome } from '../../feedback/accumulator.js';
import type { RuntimeRequestStatus } from '../contract.js';

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
/** Recent requests kept for the p95s of /v1/status. */
const LATENCY_WINDOW = 1000;
/** Recent speculative rounds behind the running acceptance. */
const ROUND_WINDOW = 512;
/** Rounds older than this no longer count towards the running acceptance. */
export const ROUND_MAX_AGE_MS = 60_000;
/** Drafted tokens needed before the running acceptance is trusted (router and status). */
export const MIN_ACCEPTANCE_SAMPLES = 64;

const RUNTIME_METRIC_NAMES = [
  'edgectl_runtime_http_requests_total',
  'edgectl_runtime_requests_total',
  'edgectl_runtime_tokens_total',
  'edgectl_runtime_verify_rounds_total',
  'edgectl_runtime_verifier_errors_total',
  'edgectl_runtime_events_total',
  'edgectl_runtime_retrieval_withheld_total',
  'edgectl_runtime_ttft_seconds',
  'edgectl_runtime_request_seconds',
  'edgectl_runtime_in_flight',
  'edgectl_runtime_queued',
  'edgectl_runtime_acceptance_ratio',
  'edgectl_runtime_retrievals_total',
  'edgectl_runtime_retrieval_seconds',
];
/** Retrieval is a few ms (docs/benchmarks.md: hybrid p95 under 5 ms at 100k passages). */
const RETRIEVAL_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];

function p95(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(0.95 * sorted.length) - 1)] as number;
}

class Ring {
  private readonly values: number[] = [];
  private next = 0;
  constructor(private readonly size: number) {}
  push(v: number): void {
    if (this.values.length < this.size) this.values.push(v);
    else this.values[this.next] = v;
    this.next = (this.next + 1) % this.size;
  }
  get all(): readonly number[] {
    return this.values;
  }
}

/** The request path's counters and histograms, registered in `registry`. */
function createSeries(registry: Registry) {
  const registers = [registry];
  return {
    httpRequests: new Counter({
      name: 'edgectl_runtime_http_requests_total',
      help: 'HTTP requests answered by the site runtime, by path and status',
      labelNames: ['path', 'status'],
      registers,
    }),
    routed: new Counter({
      name: 'edgectl_runtime_requests_total',
      help: 'Generation requests finished, by route (edge, speculative, cloud) or blocked',
      labelNames: ['route'],
      registers,
    }),
    tokens: new Counter({
      name: 'edgectl_runtime_tokens_total',
      help: 'Tokens: prompt, output, drafted (proposed to the verifier) and accepted',
      labelNames: ['kind'],
      registers,
    }),
    // Rounds beside accepted tokens give the verifier passes saved: accepted / (accepted + rounds).
    verifyRounds: new Counter({
      name: 'edgectl_runtime_verify_rounds_total',
      help: 'Speculative verify rounds (one verifier pass each)',
      registers,
    }),
    verifierErrors: new Counter({
      name: 'edgectl_runtime_verifier_errors_total',
      help: 'Verifier calls that failed (connect, timeout, error, protocol) or were skipped by the open breaker',
      labelNames: ['kind'],
      registers,
    }),
    // The Prometheus side of the feedback window's retrieval counters (feedback/accumulator.ts).
    retrievals: new Counter({
      name: 'edgectl_runtime_retrievals_total',
      help: "Retrieval (RAG) steps, by result: hit (passages attached), miss (none found), refused (index past the policy's staleness budget)",
      labelNames: ['result'],
      registers,
    }),
    retrievalSeconds: new Histogram({
      name: 'edgectl_runtime_retrieval_seconds',
      help: 'Time of the retrieval step (query embedding and hybrid search)',
      buckets: RETRIEVAL_BUCKETS,
      registers,
    }),
    events: new Counter({
      name: 'edgectl_runtime_events_total',
      help: 'Request events: rejected (429), error, fallback (edge-unverified), escalated, redactions, stale_index (retrieval served past the staleness budget)',
      labelNames: ['event'],
      registers,
    }),
    // Labelled by rule name: bounded by the policy's block list, and never the passage's text.
    withheld: new Counter({
      name: 'edgectl_runtime_retrieval_withheld_total',
      help: 'Retrieved passages withheld from the prompt because they match a policy block rule, by rule',
      labelNames: ['rule'],
      registers,
    }),
    ttftSeconds: new Histogram({
      name: 'edgectl_runtime_ttft_seconds',
      help: 'Time to first token, by route',
      labelNames: ['route'],
      buckets: LATENCY_BUCKETS,
      registers,
    }),
    e2eSeconds: new Histogram({
      name: 'edgectl_runtime_request_seconds',
      help: 'End-to-end generation request time, by route',
      labelNames: ['route'],
      buckets: LATENCY_BUCKETS,
      registers,
    }),
  };
}

export class RuntimeMetrics {
  readonly requests: RuntimeRequestStatus['requests'] = {
    edge: 0,
    speculative: 0,
    cloud: 0,
    blocked: 0,
    errors: 0,
    rejected: 0,
  };
  private readonly ttft = new Ring(LATENCY_WINDOW);
  private readonly e2e = new Ring(LATENCY_WINDOW);
  private readonly roundDrafted = new Ring(ROUND_WINDOW);
  private readonly roundAccepted = new Ring(ROUND_WINDOW);
  private readonly roundAt = new Ring(ROUND_WINDOW);
  private readonly now: () => number;

  private readonly httpRequests: Counter<'path' | 'status'>;
  private readonly routed: Counter<'route'>;
  private readonly tokens: Counter<'kind'>;
  private readonly verifyRounds: Counter;
  private readonly verifierErrors: Counter<'kind'>;
  private readonly events: Counter<'event'>;
  private readonly withheld: Counter<'rule'>;
  private readonly ttftSeconds: Histogram<'route'>;
  private readonly e2eSeconds: Histogram<'route'>;
  private readonly retrievals: Counter<'result'>;
  private readonly retrievalSeconds: Histogram;

  constructor(
    registry: Registry,
    sources: { inFlight: () => number; queued: () => number; now?: () => number },
  ) {
    this.now = sources.now ?? (() => performance.now());
    const registers = [registry];
    // A server started again in the same process (tests, an in-process restart) replaces its series.
    for (const name of RUNTIME_METRIC_NAMES) registry.removeSingleMetric(name);
    const series = createSeries(registry);
    this.httpRequests = series.httpRequests;
    this.routed = series.routed;
    this.tokens = series.tokens;
    this.verifyRounds = series.verifyRounds;
    this.verifierErrors = series.verifierErrors;
    this.events = series.events;
    this.withheld = series.withheld;
    this.ttftSeconds = series.ttftSeconds;
    this.e2eSeconds = series.e2eSeconds;
    this.retrievals = series.retrievals;
    this.retrievalSeconds = series.retrievalSeconds;
    new Gauge({
      name: 'edgectl_runtime_in_flight',
      help: 'Generations running now',
      registers,
      collect() {
        this.set(sources.inFlight());
      },
    });
    new Gauge({
      name: 'edgectl_runtime_queued',
      help: 'Generation requests waiting for a slot',
      registers,
      collect() {
        this.set(sources.queued());
      },
    });
    const acceptance = () => this.acceptance();
    new Gauge({
      name: 'edgectl_runtime_acceptance_ratio',
      help: 'Accepted / drafted tokens over recent speculative rounds',
      registers,
      collect() {
        const a = acceptance();
        if (a !== null) this.set(a);
      },
    });
  }

  http(path: string, status: number): void {
    this.httpRequests.inc({ path, status: String(status) });
  }

  rejected(): void {
    this.requests.rejected++;
    this.events.inc({ event: 'rejected' });
  }

  verifierError(kind: string): void {
    this.verifierErrors.inc({ kind });
  }

  promptTokens(n: number): void {
    this.tokens.inc({ kind: 'prompt' }, n);
  }

  round(drafted: number, accepted: number): void {
    this.roundDrafted.push(drafted);
    this.roundAccepted.push(accepted);
    this.roundAt.push(this.now());
    this.tokens.inc({ kind: 'drafted' }, drafted);
    this.tokens.inc({ kind: 'accepted' }, accepted);
    this.verifyRounds.inc();
  }

  /** Acceptance over the recent rounds (at most ROUND_MAX_AGE_MS old), or null before enough drafted tokens. */
  acceptance(minSamples = 1): number | null {
    const since = this.now() - ROUND_MAX_AGE_MS;
    const at = this.roundAt.all;
    let drafted = 0;
    let accepted = 0;
    for (let i = 0; i < at.length; i++) {
      if ((at[i] as number) < since) continue;
      drafted += this.roundDrafted.all[i] as number;
      accepted += this.roundAccepted.all[i] as number;
    }
    if (drafted < minSamples || drafted === 0) return null;
    return accepted / drafted;
  }

  outcome(o: RequestOutcome): void {
    const route: Route | 'blocked' = o.route;
    if (route === 'blocked') this.requests.blocked++;
    else this.requests[route]++;
    if (o.error) {
      this.requests.errors++;
      this.events.inc({ event: 'error' });
    }
    if (o.fallback) this.events.inc({ event: 'fallback' });
    if (o.escalated) this.events.inc({ event: 'escalated' });
    if (o.redactions) this.events.inc({ event: 'redactions' }, o.redactions);
    for (const w of o.retrieval?.withheld ?? []) this.withheld.inc({ rule: w.rule }, w.passages);
    this.routed.inc({ route });
    if (o.outputTokens) this.tokens.inc({ kind: 'output' }, o.outputTokens);
    if (o.ttftMs !== undefined) {
      this.ttft.push(o.ttftMs);
      this.ttftSeconds.observe({ route }, o.ttftMs / 1000);
    }
    if (o.e2eMs !== undefined) {
      this.e2e.push(o.e2eMs);
      this.e2eSeconds.observe({ route }, o.e2eMs / 1000);
    }
    const r = o.retrieval;
    if (r) {
      this.retrievals.inc({ result: r.refused ? 'refused' : r.passages > 0 ? 'hit' : 'miss' });
      if (r.stale) this.events.inc({ event: 'stale_index' });
      if (!r.refused) this.retrievalSeconds.observe(r.ms / 1000);
    }
  }

  latency(): { ttftP95Ms: number | null; e2eP95Ms: number | null } {
    return { ttftP95Ms: p95(this.ttft.all), e2eP95Ms: p95(this.e2e.all) };
  }
}
