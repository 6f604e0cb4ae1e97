/**
 * The rollout judge: pure, anytime-valid comparisons of canary sites with baseline sites. Owns
 * `judgeStep` (the seam in types.ts), one judge per metric, and `sumWindows`/`addWindow`, which
 * sum feedback windows into an `ArmSample` (with the per-window squares the judge needs to
 * measure overdispersion). Every metric is reduced to a rate (accepted draft tokens, failed
 * requests, blocked requests, requests slower than the pooled p95 bucket bound) and compared with
 * a non-inferiority boundary by two one-sided normal-mixture e-values (stats.ts): one for "worse
 * than the margin allows" (fail) and one for "within the margin" (pass). Both are functions of the
 * cumulative counts only, so the controller may call the judge after every window without
 * inflating false rollbacks. The math and the simulations are in docs/rollout-judge.md.
 */
import {
  emptyCounters,
  emptyHistogram,
  LATENCY_BOUNDS_MS,
  histogramQuantile,
  type FeedbackCounters,
  type FeedbackLatency,
  type LatencyHistogram,
} from '../../site/feedback/report.js';
import { armChi, dispersions, finiteExp, logMixtureEValue, type SiteCounts } from './stats.js';
import type {
  ArmDispersion,
  ArmSample,
  Judgement,
  JudgeStep,
  MetricName,
  MetricSpec,
  StepDecision,
  StepJudgement,
} from './types.js';

export * from './types.js';

/** Default absolute allowance per metric (see `MetricSpec.absoluteMargin`). */
export const DEFAULT_ABSOLUTE_MARGIN: Readonly<Record<MetricName, number>> = Object.freeze({
  acceptance: 0,
  ttft: 0.005,
  e2e: 0.005,
  errorRate: 0.001,
  policyViolations: 0.001,
});

/**
 * Scale of the mixing distribution relative to the pooled rate (plus the absolute allowance):
 * the size of difference each test is most sensitive to. Acceptance sits near 0.7 and a canary
 * worth catching moves it by about 10%; errors, blocks and the latency tail are small shares that
 * a bad canary multiplies, so their scale is the rate itself. Any fixed choice keeps the error
 * bound; the choice only moves power.
 */
export const MIXTURE_SCALE: Readonly<Record<MetricName, number>> = Object.freeze({
  acceptance: 0.1,
  ttft: 1,
  e2e: 1,
  errorRate: 1,
  policyViolations: 1,
});

/** Quantile whose bucket bound sets the latency threshold. */
export const LATENCY_QUANTILE = 0.95;

const NBUCKETS = LATENCY_BOUNDS_MS.length + 1;

// ---------------------------------------------------------------------------------------------
// Summing windows

/** What `sumWindows` needs of a window or report. */
export interface WindowLike {
  counters: FeedbackCounters;
  latency: FeedbackLatency;
  site?: string;
}

function emptyDispersion(): ArmDispersion {
  return {
    acceptance: { windows: 0, sq: 0 },
    errorRate: { windows: 0, sq: 0 },
    policyViolations: { windows: 0, sq: 0 },
    ttft: { windows: 0, sq: new Array<number>(NBUCKETS).fill(0) },
    e2e: { windows: 0, sq: new Array<number>(NBUCKETS).fill(0) },
  };
}

/** An ArmSample with nothing in it, ready for `addWindow`. */
export function emptyArmSample(site: string): ArmSample {
  return {
    site,
    counters: emptyCounters(),
    latency: { ttftMs: emptyHistogram(), e2eMs: emptyHistogram() },
    windows: 0,
    dispersion: emptyDispersion(),
  };
}

function addHistogram(into: LatencyHistogram, h: LatencyHistogram, sq: number[]): boolean {
  const n = h.count;
  if (n <= 0) return false;
  const src = h.counts;
  const dst = into.counts;
  const inv = 1 / n;
  // Walk from the top bucket down: `above` is the count strictly above bucket i's bound. Empty
  // top buckets add nothing to sq; below the lowest occupied bucket every request is above.
  let i = NBUCKETS - 1;
  while (i > 0 && src[i] === 0) i--;
  let above = 0;
  for (; i >= 0; i--) {
    const c = src[i]!;
    dst[i]! += c;
    sq[i]! += above * above * inv;
    above += c;
    if (above === n) break;
  }
  for (i--; i >= 0; i--) sq[i]! += n;
  into.sum += h.sum;
  into.count += n;
  return true;
}

/** Adds one window to a sample in place (the controller's incremental path). */
export function addWindow(sample: ArmSample, w: WindowLike): ArmSample {
  const a = sample.counters;
  const c = w.counters;
  // A sample summed elsewhere without squares stays without them: squares of only its later
  // windows would not match its totals.
  if (!sample.dispersion && sample.windows === 0) sample.dispersion = emptyDispersion();
  const d = sample.dispersion ?? emptyDispersion();
  a.requests.edge += c.requests.edge;
  a.requests.speculative += c.requests.speculative;
  a.requests.cloud += c.requests.cloud;
  a.draftTokens += c.draftTokens;
  a.acceptedTokens += c.acceptedTokens;
  a.verifyRounds += c.verifyRounds;
  a.outputTokens += c.outputTokens;
  a.errors += c.errors;
  a.policyBlocks += c.policyBlocks;
  a.redactions += c.redactions;
  a.escalations += c.escalations;
  a.fallbacks += c.fallbacks;
  if (c.draftTokens > 0) {
    d.acceptance.windows++;
    d.acceptance.sq += (c.acceptedTokens * c.acceptedTokens) / c.draftTokens;
  }
  const requests = c.requests.edge + c.requests.speculative + c.requests.cloud;
  if (requests > 0) {
    d.errorRate.windows++;
    d.errorRate.sq += (c.errors * c.errors) / requests;
  }
  const total = requests + c.policyBlocks;
  if (total > 0) {
    d.policyViolations.windows++;
    d.policyViolations.sq += (c.policyBlocks * c.policyBlocks) / total;
  }
  if (addHistogram(sample.latency.ttftMs, w.latency.ttftMs, d.ttft.sq)) d.ttft.windows++;
  if (addHistogram(sample.latency.e2eMs, w.latency.e2eMs, d.e2e.sq)) d.e2e.windows++;
  sample.windows++;
  return sample;
}

/**
 * Sums one site's windows (or reports) into an ArmSample, with the per-window squares the judge
 * uses to measure overdispersion. The site defaults to the first window's `site` field.
 */
export function sumWindows(windows: readonly WindowLike[], site?: string): ArmSample {
  const sample = emptyArmSample(site ?? windows[0]?.site ?? '');
  for (const w of windows) addWindow(sample, w);
  return sample;
}

// ---------------------------------------------------------------------------------------------
// Rate comparison

interface RateTest {
  metric: MetricName;
  /** true: the canary fails by being lower (acceptance); false: by being higher. */
  higherIsBetter: boolean;
  canary: SiteCounts[];
  baseline: SiteCounts[];
  margin: number;
  absoluteMargin: number;
}

interface RateResult {
  pc: number;
  pb: number;
  difference: number;
  standardError: number;
  phiC: number;
  phiB: number;
  logFail: number;
  logPass: number;
}

function totals(sites: readonly SiteCounts[]): { x: number; n: number } {
  let x = 0;
  let n = 0;
  for (const s of sites) {
    x += s.x;
    n += s.n;
  }
  return { x, n };
}

/**
 * Non-inferiority of the canary's rate against (1 ∓ margin)·baseline ∓ absoluteMargin, as a
 * difference of pooled rates with a quasi-binomial variance (delta method over both arms).
 */
function compareRates(t: RateTest): RateResult {
  const c = totals(t.canary);
  const b = totals(t.baseline);
  const pc = c.x / c.n;
  const pb = b.x / b.n;
  const k = t.higherIsBetter ? 1 - t.margin : 1 + t.margin;
  const difference = t.higherIsBetter ? pc - (k * pb - t.absoluteMargin) : k * pb + t.absoluteMargin - pc;
  // Variances from rates pulled half an event off 0 and 1, so an arm with no events yet still
  // carries its sampling uncertainty.
  const qc = (c.x + 0.5) / (c.n + 1);
  const qb = (b.x + 0.5) / (b.n + 1);
  const phi = dispersions(armChi(t.canary), armChi(t.baseline));
  const phiC = phi.canary;
  const phiB = phi.baseline;
  const variance = (phiC * qc * (1 - qc)) / c.n + (k * k * phiB * qb * (1 - qb)) / b.n;
  const pooled = (c.x + b.x) / (c.n + b.n);
  const tau = Math.max(MIXTURE_SCALE[t.metric] * pooled + t.absoluteMargin, 1e-6);
  return {
    pc,
    pb,
    difference,
    standardError: Math.sqrt(variance),
    phiC,
    phiB,
    logFail: logMixtureEValue(-difference, variance, tau),
    logPass: logMixtureEValue(difference, variance, tau),
  };
}

// ---------------------------------------------------------------------------------------------
// Formatting

function fmtE(e: number): string {
  if (e >= 1e4) return e.toExponential(1).replace('e+', 'e');
  if (e >= 100) return String(Math.round(e));
  return String(Number(e.toPrecision(2)));
}

function fmtPct(x: number, digits = 1): string {
  return `${(100 * x).toFixed(digits)}%`;
}

function fmtSigned(x: number, digits = 1): string {
  return `${x >= 0 ? '+' : '-'}${Math.abs(100 * x).toFixed(digits)}%`;
}

function fmtMargin(spec: MetricSpec, higherIsBetter: boolean, absoluteMargin: number, pp: boolean): string {
  const sign = higherIsBetter ? '-' : '+';
  const rel = `${sign}${Number((100 * spec.margin).toFixed(2))}%`;
  if (absoluteMargin <= 0) return rel;
  const abs = pp ? `${Number((100 * absoluteMargin).toFixed(3))}pp` : String(absoluteMargin);
  return `${rel} ${sign}${abs}`;
}

function verdictText(r: RateResult, boundary: number): { verdict: Judgement['verdict']; text: string } {
  const fail = finiteExp(r.logFail);
  const pass = finiteExp(r.logPass);
  if (fail >= boundary) return { verdict: 'fail', text: `e-value ${fmtE(fail)} >= ${fmtE(boundary)} → fail` };
  if (pass >= boundary) {
    return { verdict: 'pass', text: `pass e-value ${fmtE(pass)} >= ${fmtE(boundary)} → pass` };
  }
  return {
    verdict: 'inconclusive',
    text: `e-values fail ${fmtE(fail)}, pass ${fmtE(pass)} < ${fmtE(boundary)} → inconclusive`,
  };
}

// ---------------------------------------------------------------------------------------------
// Per-metric judges

function siteNames(arm: readonly ArmSample[]): string[] {
  return arm.map((s) => s.site);
}

function boundaryOf(spec: MetricSpec): number {
  const alpha = spec.alpha > 0 && spec.alpha < 1 ? spec.alpha : 0.01;
  return 1 / alpha;
}

function absoluteMarginOf(spec: MetricSpec): number {
  const a = spec.absoluteMargin;
  return a !== undefined && Number.isFinite(a) && a >= 0 ? a : DEFAULT_ABSOLUTE_MARGIN[spec.metric];
}

interface Base {
  spec: MetricSpec;
  canary: readonly ArmSample[];
  baseline: readonly ArmSample[];
  samples: { canary: number; baseline: number };
  unit: string;
}

function tooFew(b: Base, value: Judgement['value']): Judgement | undefined {
  const { spec, samples } = b;
  const min = Math.max(1, spec.minSamples);
  if (samples.canary >= min && samples.baseline >= min) return undefined;
  return {
    metric: spec.metric,
    verdict: 'inconclusive',
    dryRun: spec.dryRun,
    value,
    boundary: boundaryOf(spec),
    evidence: { fail: 1, pass: 1 },
    samples,
    sites: { canary: siteNames(b.canary), baseline: siteNames(b.baseline) },
    reason:
      `${spec.metric}: ${samples.canary} canary and ${samples.baseline} baseline ${b.unit}, ` +
      `below minSamples ${spec.minSamples} → inconclusive`,
  };
}

function judged(
  b: Base,
  r: RateResult,
  value: Judgement['value'],
  head: string,
  thresholdMs?: number,
): Judgement {
  const boundary = boundaryOf(b.spec);
  const v = verdictText(r, boundary);
  return {
    metric: b.spec.metric,
    verdict: v.verdict,
    dryRun: b.spec.dryRun,
    value,
    boundary,
    evidence: { fail: finiteExp(r.logFail), pass: finiteExp(r.logPass) },
    samples: b.samples,
    sites: { canary: siteNames(b.canary), baseline: siteNames(b.baseline) },
    reason: `${head}: ${v.text}${b.spec.dryRun ? ' (dry run)' : ''}`,
    detail: {
      rate: { canary: r.pc, baseline: r.pb },
      difference: r.difference,
      standardError: r.standardError,
      dispersion: { canary: r.phiC, baseline: r.phiB },
      ...(thresholdMs !== undefined ? { thresholdMs } : {}),
    },
  };
}

function relChange(c: number, b: number): string {
  return b > 0 ? fmtSigned(c / b - 1) : c > 0 ? '+∞' : '+0.0%';
}

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
