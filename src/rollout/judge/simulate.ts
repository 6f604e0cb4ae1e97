/**
 * Seeded simulations of canary rollouts for the judge's tests, docs and benchmark: a traffic model
 * per arm (sites, requests per window, draft tokens in verify rounds, per-request acceptance,
 * errors, policy blocks, latency), feedback windows generated from it, and a driver that feeds the
 * cumulative samples to the judge after every window, as the controller does. Pure and
 * deterministic for a seed; no I/O.
 *
 * Realism matters for the error bound: tokens are not independent trials. In the `requests` token
 * model every request draws its own acceptance rate from a Beta distribution, drafts in rounds of
 * `draftLength` tokens, and the verifier accepts a prefix of each round (the first rejection ends
 * the round), as in speculative decoding. Sites may differ by a random shift of their rate.
 */
import { LATENCY_BOUNDS_MS, type FeedbackCounters, type FeedbackLatency } from '../../feedback/report.js';
import { addWindow, emptyArmSample, judgeMetric, judgeStep } from './index.js';
import type { ArmSample, Judgement, MetricSpec, StepDecision } from './types.js';
import { beta, binomial, normal, poisson, seededRng, type Rng } from './random.js';

export { beta, binomial, gamma, normal, poisson, seededRng, type Rng } from './random.js';

export interface TrafficModel {
  /** Mean token acceptance rate. */
  acceptance: number;
  /**
   * `iid`: every draft token accepted independently (the textbook binomial); `requests`: per-request
   * Beta-distributed rates with prefix acceptance in verify rounds (overdispersed, realistic).
   */
  tokenModel: 'iid' | 'requests';
  /** Beta concentration of the per-request acceptance rate (smaller = more spread). */
  concentration: number;
  /** Draft tokens per verify round. */
  draftLength: number;
  /** Verify rounds per request, uniform in [min, max]. */
  rounds: [number, number];
  /** Mean arrivals per site per window (Poisson). */
  requestsPerWindow: number;
  /** Standard deviation of each site's shift of the acceptance logit (sites differ). */
  siteSpread: number;
  errorRate: number;
  policyBlockRate: number;
  /** Lognormal latency: median ms and log-sd. */
  ttft: { medianMs: number; sigma: number };
  e2e: { medianMs: number; sigma: number };
  /** Skip latency histograms (faster, for acceptance-only simulations). */
  latency: boolean;
}

export const DEFAULT_TRAFFIC: Readonly<TrafficModel> = Object.freeze({
  acceptance: 0.7,
  tokenModel: 'requests',
  concentration: 20,
  draftLength: 4,
  rounds: [4, 24] as [number, number],
  requestsPerWindow: 3,
  siteSpread: 0,
  errorRate: 0.01,
  policyBlockRate: 0.02,
  ttft: { medianMs: 80, sigma: 0.5 },
  e2e: { medianMs: 1500, sigma: 0.6 },
  latency: true,
});

export function traffic(overrides: Partial<TrafficModel> = {}): TrafficModel {
  return { ...DEFAULT_TRAFFIC, ...overrides };
}

/** f(q) = mean share of a round of k drafts accepted when each is accepted with q until the first miss. */
function prefixRate(q: number, k: number): number {
  let s = 0;
  let t = 1;
  for (let j = 1; j <= k; j++) {
    t *= q;
    s += t;
  }
  return s / k;
}

const inverseTables = new Map<number, Float64Array>();
/** q with prefixRate(q, k) = r, by table lookup and linear interpolation. */
function perTokenRate(r: number, k: number): number {
  let table = inverseTables.get(k);
  if (!table) {
    // table[i] = prefixRate(i / N): monotone in q.
    const N = 2048;
    table = new Float64Array(N + 1);
    for (let i = 0; i <= N; i++) table[i] = prefixRate(i / N, k);
    inverseTables.set(k, table);
  }
  const N = table.length - 1;
  let lo = 0;
  let hi = N;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (table[mid]! < r) lo = mid;
    else hi = mid;
  }
  const a = table[lo]!;
  const b = table[hi]!;
  return (lo + (b > a ? (r - a) / (b - a) : 0)) / N;
}

function logistic(x: number): number {
  return 1 / (1 + Math.exp(-x));
}
function logit(p: number): number {
  return Math.log(p / (1 - p));
}

/** A site's own acceptance rate under the model (sites differ by `siteSpread` on the logit). */
export function siteAcceptance(rng: Rng, m: TrafficModel): number {
  return m.siteSpread > 0 ? logistic(logit(m.acceptance) + m.siteSpread * normal(rng)) : m.acceptance;
}

function emptyHist(): FeedbackLatency['ttftMs'] {
  return {
    bounds: LATENCY_BOUNDS_MS as number[],
    counts: new Array<number>(LATENCY_BOUNDS_MS.length + 1).fill(0),
    sum: 0,
    count: 0,
  };
}

function observeInto(h: FeedbackLatency['ttftMs'], ms: number): void {
  let i = 0;
  while (i < LATENCY_BOUNDS_MS.length && ms > LATENCY_BOUNDS_MS[i]!) i++;
  h.counts[i]!++;
  h.sum += ms;
  h.count++;
}

export interface SimWindow {
  counters: FeedbackCounters;
  latency: FeedbackLatency;
}

/** One site's window of traffic, with the site's acceptance rate `rate`. */
export function simulateWindow(rng: Rng, m: TrafficModel, rate: number): SimWindow {
  const arrivals = poisson(rng, m.requestsPerWindow);
  let blocks = 0;
  let requests = 0;
  let errors = 0;
  let draft = 0;
  let accepted = 0;
  let rounds = 0;
  const ttft = emptyHist();
  const e2e = emptyHist();
  const k = m.draftLength;
  const [rmin, rmax] = m.rounds;
  const kappa = m.concentration;
  for (let a = 0; a < arrivals; a++) {
    if (rng() < m.policyBlockRate) {
      blocks++;
      continue;
    }
    requests++;
    if (rng() < m.errorRate) errors++;
    const nr = rmin + Math.floor(rng() * (rmax - rmin + 1));
    rounds += nr;
    draft += nr * k;
    if (m.tokenModel === 'iid') {
      accepted += binomial(rng, nr * k, rate);
    } else {
      const r = beta(rng, kappa * rate, kappa * (1 - rate));
      const q = perTokenRate(r, k);
      const lq = Math.log(q);
      for (let i = 0; i < nr; i++) {
        // Leading successes of a round: P(>= j) = q^j, from one uniform.
        const u = rng();
        accepted += q >= 1 ? k : q <= 0 ? 0 : Math.min(k, Math.floor(Math.log(u || 1e-300) / lq));
      }
    }
    if (m.latency) {
      observeInto(ttft, m.ttft.medianMs * Math.exp(m.ttft.sigma * normal(rng)));
      observeInto(e2e, m.e2e.medianMs * Math.exp(m.e2e.sigma * normal(rng)));
    }
  }
  return {
    counters: {
      requests: { edge: 0, speculative: requests, cloud: 0 },
      draftTokens: draft,
      acceptedTokens: accepted,
      verifyRounds: rounds,
      outputTokens: accepted + rounds,
      errors,
      policyBlocks: blocks,
      redactions: 0,
      escalations: 0,
      fallbacks: 0,
    },
    latency: { ttftMs: ttft, e2eMs: e2e },
  };
}

// ---------------------------------------------------------------------------------------------

export interface RolloutScenario {
  canary: TrafficModel;
  baseline: TrafficModel;
  canarySites: number;
  baselineSites: number;
  /** Looks: the judge is called after every window. */
  windows: number;
  metrics: MetricSpec[];
  /**
   * Stop without a decision once either arm has more than this many samples of the first
   * metric's unit (draft tokens for acceptance, requests otherwise).
   */
  maxSamplesPerArm?: number;
}

export interface RolloutOutcome {
  decision: StepDecision;
  /** Window (1-based) of the decision, or of the last look. */
  window: number;
  /** Samples of the first metric per arm at the decision (or the last look). */
  samples: { canary: number; baseline: number };
  judgements: Judgement[];
}

function samplesOf(metric: MetricSpec['metric'], arm: readonly ArmSample[]): number {
  let n = 0;
  for (const s of arm) {
    const c = s.counters;
    if (metric === 'acceptance') n += c.draftTokens;
    else if (metric === 'ttft') n += s.latency.ttftMs.count;
    else if (metric === 'e2e') n += s.latency.e2eMs.count;
    else if (metric === 'errorRate') n += c.requests.edge + c.requests.speculative + c.requests.cloud;
    else n += c.requests.edge + c.requests.speculative + c.requests.cloud + c.policyBlocks;
  }
  return n;
}

/** One rollout: windows arrive, the judge looks after each, the first promote/rollback ends it. */
export function simulateRollout(rng: Rng, s: RolloutScenario): RolloutOutcome {
  const mk = (n: number, prefix: string, m: TrafficModel) =>
    Array.from({ length: n }, (_, i) => ({
      sample: emptyArmSample(`${prefix}-${i + 1}`),
      rate: siteAcceptance(rng, m),
    }));
  const canary = mk(s.canarySites, 'canary', s.canary);
  const baseline = mk(s.baselineSites, 'baseline', s.baseline);
  const c = canary.map((x) => x.sample);
  const b = baseline.map((x) => x.sample);
  const first = s.metrics[0]?.metric ?? 'acceptance';
  const single = s.metrics.length === 1 && s.metrics[0] !== undefined ? s.metrics[0] : undefined;
  let last: RolloutOutcome = {
    decision: 'continue',
    window: 0,
    samples: { canary: 0, baseline: 0 },
    judgements: [],
  };
  for (let w = 1; w <= s.windows; w++) {
    for (const site of canary) addWindow(site.sample, simulateWindow(rng, s.canary, site.rate));
    for (const site of baseline) addWindow(site.sample, simulateWindow(rng, s.baseline, site.rate));
    const samples = { canary: samplesOf(first, c), baseline: samplesOf(first, b) };
    if (s.maxSamplesPerArm !== undefined && Math.max(samples.canary, samples.baseline) > s.maxSamplesPerArm)
      break;
    const step = single
      ? (() => {
          const j = judgeMetric(single, c, b);
          return {
            judgements: [j],
            decision: (j.verdict === 'fail'
              ? 'rollback'
              : j.verdict === 'pass'
                ? 'promote'
                : 'continue') as StepDecision,
          };
        })()
      : judgeStep(s.metrics, c, b);
    last = { decision: step.decision, window: w, samples, judgements: step.judgements };
    if (step.decision !== 'continue') return last;
  }
  return last;
}

export interface SimulationSummary {
  runs: number;
  rollbacks: number;
  promotes: number;
  continues: number;
  rollbackRate: number;
  promoteRate: number;
  /** Mean samples per arm (first metric's unit) at the decision, over runs that decided so. */
  meanSamplesAtRollback: number | null;
  meanSamplesAtPromote: number | null;
  /** Share of runs decided within `maxSamplesPerArm` is `rollbackRate`/`promoteRate` then. */
  meanWindowsAtDecision: number | null;
}

/** Many seeded rollouts of one scenario. */
export function simulateMany(seed: number, s: RolloutScenario, runs: number): SimulationSummary {
  const rng = seededRng(seed);
  let rollbacks = 0;
  let promotes = 0;
  let rbSamples = 0;
  let prSamples = 0;
  let windows = 0;
  for (let i = 0; i < runs; i++) {
    const o = simulateRollout(rng, s);
    const perArm = (o.samples.canary + o.samples.baseline) / 2;
    if (o.decision === 'rollback') {
      rollbacks++;
      rbSamples += perArm;
      windows += o.window;
    } else if (o.decision === 'promote') {
      promotes++;
      prSamples += perArm;
      windows += o.window;
    }
  }
  const decided = rollbacks + promotes;
  return {
    runs,
    rollbacks,
    promotes,
    continues: runs - decided,
    rollbackRate: rollbacks / runs,
    promoteRate: promotes / runs,
    meanSamplesAtRollback: rollbacks ? Math.round(rbSamples / rollbacks) : null,
    meanSamplesAtPromote: promotes ? Math.round(prSamples / promotes) : null,
    meanWindowsAtDecision: decided ? Number((windows / decided).toFixed(1)) : null,
  };
}

/** A metric spec with the usual defaults. */
export function metric(name: MetricSpec['metric'], over: Partial<MetricSpec> = {}): MetricSpec {
  return { metric: name, margin: 0.05, minSamples: 100, dryRun: false, alpha: 0.01, ...over };
}
