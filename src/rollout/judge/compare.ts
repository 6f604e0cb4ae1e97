/**
 * The judge's comparison core and the judgement it reports: `compareRates` (non-inferiority of
 * the canary's pooled rate against the baseline's, with a quasi-binomial variance and two
 * one-sided normal-mixture e-values from stats.ts), the verdict against the 1/alpha boundary,
 * the minimum-sample guard and the reason text. The per-metric judges in index.ts reduce each
 * metric to a rate and call into this module. The math is in docs/rollout-judge.md.
 */
import { armChi, dispersions, finiteExp, logMixtureEValue, type SiteCounts } from './stats.js';
import type { ArmSample, Judgement, MetricName, MetricSpec } from './types.js';

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

export function totals(sites: readonly SiteCounts[]): { x: number; n: number } {
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
export function compareRates(t: RateTest): RateResult {
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

export function fmtPct(x: number, digits = 1): string {
  return `${(100 * x).toFixed(digits)}%`;
}

function fmtSigned(x: number, digits = 1): string {
  return `${x >= 0 ? '+' : '-'}${Math.abs(100 * x).toFixed(digits)}%`;
}

export function fmtMargin(
  spec: MetricSpec,
  higherIsBetter: boolean,
  absoluteMargin: number,
  pp: boolean,
): string {
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
// Judgements

function siteNames(arm: readonly ArmSample[]): string[] {
  return arm.map((s) => s.site);
}

function boundaryOf(spec: MetricSpec): number {
  const alpha = spec.alpha > 0 && spec.alpha < 1 ? spec.alpha : 0.01;
  return 1 / alpha;
}

export function absoluteMarginOf(spec: MetricSpec): number {
  const a = spec.absoluteMargin;
  return a !== undefined && Number.isFinite(a) && a >= 0 ? a : DEFAULT_ABSOLUTE_MARGIN[spec.metric];
}

export interface Base {
  spec: MetricSpec;
  canary: readonly ArmSample[];
  baseline: readonly ArmSample[];
  samples: { canary: number; baseline: number };
  unit: string;
}

export function tooFew(b: Base, value: Judgement['value']): Judgement | undefined {
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

export function judged(
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

export function relChange(c: number, b: number): string {
  return b > 0 ? fmtSigned(c / b - 1) : c > 0 ? '+∞' : '+0.0%';
}
