/**
 * The rollout judge: pure, anytime-valid comparisons of canary sites with baseline sites. Owns
 * `judgeStep` (the seam in types.ts), `decide` and one judge per metric; it re-exports
 * `sumWindows`/`addWindow` (windows.ts, which sum feedback windows into an `ArmSample`) and the
 * comparison constants (compare.ts). Every metric is reduced to a rate (accepted draft tokens, failed
 * requests, blocked requests, requests slower than the pooled p95 bucket bound) and compared with
 * a non-inferiority boundary by two one-sided normal-mixture e-values (stats.ts): one for "worse
 * than the margin allows" (fail) and one for "within the margin" (pass). Both are functions of the
 * cumulative counts only, so the controller may call the judge after every window without
 * inflating false rollbacks. The math and the simulations are in docs/rollout-judge.md.
 */
import {
  emptyHistogram,
  LATENCY_BOUNDS_MS,
  histogramQuantile,
  type LatencyHistogram,
} from '../../feedback/report.js';
import {
  absoluteMarginOf,
  compareRates,
  fmtMargin,
  fmtPct,
  judged,
  relChange,
  tooFew,
  totals,
  type Base,
} from './compare.js';
import type { SiteCounts } from './stats.js';
import type { ArmSample, Judgement, JudgeStep, MetricSpec, StepDecision, StepJudgement } from './types.js';
import { NBUCKETS } from './windows.js';

export * from './types.js';
export { DEFAULT_ABSOLUTE_MARGIN, MIXTURE_SCALE } from './compare.js';
export { addWindow, emptyArmSample, sumWindows, type WindowLike } from './windows.js';

/** Quantile whose bucket bound sets the latency threshold. */
export const LATENCY_QUANTILE = 0.95;

/** Acceptance rate (accepted / draft tokens): the canary fails by being lower. */
export function judgeAcceptance(
  spec: MetricSpec,
  canary: readonly ArmSample[],
  baseline: readonly ArmSample[],
): Judgement {
  const sites = (arm: readonly ArmSample[]): SiteCounts[] =>
    arm.map((s) => ({
      x: s.counters.acceptedTokens,
      n: s.counters.draftTokens,
      sq: s.dispersion?.acceptance.sq,
      windows: s.dispersion?.acceptance.windows,
    }));
  return judgeRate(spec, canary, baseline, sites, true, 'draft tokens', (pc, pb) => {
    const m = fmtMargin(spec, true, absoluteMarginOf(spec), true);
    return `acceptance ${pc.toFixed(3)} vs ${pb.toFixed(3)} (${relChange(pc, pb)}, margin ${m})`;
  });
}

/** Error rate (failed / answered-or-failed requests): the canary fails by being higher. */
export function judgeErrorRate(
  spec: MetricSpec,
  canary: readonly ArmSample[],
  baseline: readonly ArmSample[],
): Judgement {
  const sites = (arm: readonly ArmSample[]): SiteCounts[] =>
    arm.map((s) => ({
      x: s.counters.errors,
      n: s.counters.requests.edge + s.counters.requests.speculative + s.counters.requests.cloud,
      sq: s.dispersion?.errorRate.sq,
      windows: s.dispersion?.errorRate.windows,
    }));
  return judgeRate(spec, canary, baseline, sites, false, 'requests', (pc, pb) => {
    const m = fmtMargin(spec, false, absoluteMarginOf(spec), true);
    return `errorRate ${fmtPct(pc, 2)} vs ${fmtPct(pb, 2)} (${relChange(pc, pb)}, margin ${m})`;
  });
}

/**
 * Policy violations: requests refused by a block rule over all requests (answered, failed or
 * blocked), so a candidate policy that blocks more, or an adapter that provokes more blocked
 * follow-ups, shows up as a higher rate. The canary fails by being higher.
 */
export function judgePolicyViolations(
  spec: MetricSpec,
  canary: readonly ArmSample[],
  baseline: readonly ArmSample[],
): Judgement {
  const sites = (arm: readonly ArmSample[]): SiteCounts[] =>
    arm.map((s) => ({
      x: s.counters.policyBlocks,
      n:
        s.counters.requests.edge +
        s.counters.requests.speculative +
        s.counters.requests.cloud +
        s.counters.policyBlocks,
      sq: s.dispersion?.policyViolations.sq,
      windows: s.dispersion?.policyViolations.windows,
    }));
  return judgeRate(spec, canary, baseline, sites, false, 'requests', (pc, pb) => {
    const m = fmtMargin(spec, false, absoluteMarginOf(spec), true);
    return `policyViolations ${fmtPct(pc, 2)} vs ${fmtPct(pb, 2)} blocked (${relChange(pc, pb)}, margin ${m})`;
  });
}

function judgeRate(
  spec: MetricSpec,
  canary: readonly ArmSample[],
  baseline: readonly ArmSample[],
  toSites: (arm: readonly ArmSample[]) => SiteCounts[],
  higherIsBetter: boolean,
  unit: string,
  head: (pc: number, pb: number) => string,
): Judgement {
  const c = toSites(canary);
  const b = toSites(baseline);
  const tc = totals(c);
  const tb = totals(b);
  const value = { canary: tc.n > 0 ? tc.x / tc.n : null, baseline: tb.n > 0 ? tb.x / tb.n : null };
  const base: Base = { spec, canary, baseline, samples: { canary: tc.n, baseline: tb.n }, unit };
  const few = tooFew(base, value);
  if (few) return few;
  const r = compareRates({
    metric: spec.metric,
    higherIsBetter,
    canary: c,
    baseline: b,
    margin: spec.margin,
    absoluteMargin: absoluteMarginOf(spec),
  });
  return judged(base, r, value, head(r.pc, r.pb));
}

function fmtMs(ms: number | undefined): string {
  if (ms === undefined) return 'n/a';
  return Number.isFinite(ms) ? `${ms} ms` : `>${LATENCY_BOUNDS_MS[LATENCY_BOUNDS_MS.length - 1]} ms`;
}

function p95(h: LatencyHistogram): number | null {
  const q = histogramQuantile(h, LATENCY_QUANTILE);
  return q === undefined || !Number.isFinite(q) ? null : q;
}

/**
 * TTFT or end-to-end latency, on the fixed buckets: the threshold T is a bound of the bucket
 * holding the pooled (canary + baseline) p95, and the rate compared is each arm's share of
 * requests above T. Pooling keeps the two arms exchangeable under A/A (a threshold taken from the
 * baseline alone would be biased towards the baseline). The canary fails by being higher.
 */
export function judgeLatency(
  spec: MetricSpec,
  canary: readonly ArmSample[],
  baseline: readonly ArmSample[],
): Judgement {
  const which = spec.metric === 'e2e' ? 'e2eMs' : 'ttftMs';
  const dkey = spec.metric === 'e2e' ? 'e2e' : 'ttft';
  const pooled = new Array<number>(NBUCKETS).fill(0);
  const armHist = (arm: readonly ArmSample[]): LatencyHistogram => {
    const h = emptyHistogram();
    for (const s of arm) {
      const src = s.latency[which];
      for (let i = 0; i < NBUCKETS; i++) {
        const c = src.counts[i] ?? 0;
        h.counts[i] = (h.counts[i] ?? 0) + c;
        pooled[i] = (pooled[i] ?? 0) + c;
      }
      h.count += src.count;
      h.sum += src.sum;
    }
    return h;
  };
  const hc = armHist(canary);
  const hb = armHist(baseline);
  const value = { canary: p95(hc), baseline: p95(hb) };
  const base: Base = {
    spec,
    canary,
    baseline,
    samples: { canary: hc.count, baseline: hb.count },
    unit: 'requests',
  };
  const few = tooFew(base, value);
  if (few) return few;
  // Bucket index j of the pooled p95; the compared event is "above bucket j's bound". The p95
  // falls inside bucket j, so the share above its upper bound is <= 5% and above its lower bound
  // (bucket j-1's bound) >= 5%; the buckets are coarse (x1.3 to x2), so take whichever share is
  // nearer 5% (on the log scale): a tail share near 5% is what the margin is about.
  const total = hc.count + hb.count;
  const rank = Math.max(1, Math.ceil(LATENCY_QUANTILE * total));
  let j = 0;
  let seen = pooled[0] ?? 0;
  while (seen < rank && j < NBUCKETS - 1) seen += pooled[++j] ?? 0;
  if (j > 0) {
    const tail = 1 - LATENCY_QUANTILE;
    const aboveUpper = (total - seen) / total;
    const aboveLower = (total - seen + (pooled[j] ?? 0)) / total;
    const far = (share: number): number => Math.abs(Math.log(Math.max(share, 1e-9) / tail));
    if (far(aboveLower) < far(aboveUpper)) j--;
  }
  const thresholdMs = LATENCY_BOUNDS_MS[j] ?? Infinity;
  const sites = (arm: readonly ArmSample[]): SiteCounts[] =>
    arm.map((s) => {
      const counts = s.latency[which].counts;
      let x = 0;
      for (let i = j + 1; i < NBUCKETS; i++) x += counts[i] ?? 0;
      const d = s.dispersion?.[dkey];
      return { x, n: s.latency[which].count, sq: d?.sq[j], windows: d?.windows };
    });
  const r = compareRates({
    metric: spec.metric,
    higherIsBetter: false,
    canary: sites(canary),
    baseline: sites(baseline),
    margin: spec.margin,
    absoluteMargin: absoluteMarginOf(spec),
  });
  const m = fmtMargin(spec, false, absoluteMarginOf(spec), true);
  const head =
    `${spec.metric} p95 ${fmtMs(value.canary ?? Infinity)} vs ${fmtMs(value.baseline ?? Infinity)}; ` +
    `${fmtPct(r.pc)} vs ${fmtPct(r.pb)} of requests above ${fmtMs(thresholdMs)} (margin ${m})`;
  return judged(base, r, value, head, Number.isFinite(thresholdMs) ? thresholdMs : undefined);
}

/** Judges one metric (dispatch on `spec.metric`). */
export function judgeMetric(
  spec: MetricSpec,
  canary: readonly ArmSample[],
  baseline: readonly ArmSample[],
): Judgement {
  switch (spec.metric) {
    case 'acceptance':
      return judgeAcceptance(spec, canary, baseline);
    case 'ttft':
    case 'e2e':
      return judgeLatency(spec, canary, baseline);
    case 'errorRate':
      return judgeErrorRate(spec, canary, baseline);
    case 'policyViolations':
      return judgePolicyViolations(spec, canary, baseline);
  }
}

/**
 * rollback when a non-dry-run metric failed; promote when every non-dry-run metric passed
 * (vacuously when all are dry runs: they never hold a promotion back); continue otherwise.
 */
export function stepVerdict(judgements: readonly Judgement[]): StepDecision {
  const counted = judgements.filter((j) => !j.dryRun);
  if (counted.some((j) => j.verdict === 'fail')) return 'rollback';
  if (counted.every((j) => j.verdict === 'pass')) return 'promote';
  return 'continue';
}

/** The seam with the controller: judge every metric on the cumulative samples and give the verdict. */
export const judgeStep: JudgeStep = (metrics, canary, baseline): StepJudgement => {
  const judgements = metrics.map((m) => judgeMetric(m, canary, baseline));
  return { decision: stepVerdict(judgements), judgements };
};
