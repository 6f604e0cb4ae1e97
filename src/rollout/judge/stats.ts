/**
 * The numerical core of the rollout judge: the normal distribution function, the one-sided
 * normal-mixture e-value (mixture sequential probability ratio, Robbins 1970; Johari et al. 2017
 * "Always valid inference"), and the overdispersion estimate for clustered binomial counts
 * (quasi-binomial Pearson dispersion, Williams 1982). Pure functions of cumulative sufficient
 * statistics, so they never need the history of looks. docs/rollout-judge.md has the derivations.
 */

/** ln(2π)/2 */
const HALF_LOG_2PI = 0.9189385332046728;

/**
 * Complementary error function with relative error < 1.2e-7 everywhere (Chebyshev fit,
 * Numerical Recipes `erfcc`); relative accuracy in the tails is what log Φ needs.
 */
const ERFC_COEFFS = [
  -1.26551223, 1.00002368, 0.37409196, 0.09678418, -0.18628806, 0.27886807, -1.13520398, 1.48851587,
  -0.82215223, 0.17087277,
];

export function erfc(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  let poly = 0;
  for (let i = ERFC_COEFFS.length - 1; i >= 0; i--) poly = poly * t + ERFC_COEFFS[i]!;
  const r = t * Math.exp(-z * z + poly);
  return x >= 0 ? r : 2 - r;
}

/** Standard normal distribution function Φ. */
export function normalCdf(x: number): number {
  return 0.5 * erfc(-x / Math.SQRT2);
}

/** log Φ(x), accurate far into the lower tail (where Φ underflows). */
export function logNormalCdf(x: number): number {
  if (x > -8) return Math.log(normalCdf(x));
  // Asymptotic series: Φ(x) = φ(x)/|x| · (1 - 1/x² + 3/x⁴ - 15/x⁶ + …) for x → -∞.
  const x2 = x * x;
  return -x2 / 2 - HALF_LOG_2PI - Math.log(-x) + Math.log(1 - 1 / x2 + 3 / (x2 * x2) - 15 / (x2 * x2 * x2));
}

/**
 * log of the one-sided normal-mixture e-value for H0: θ <= 0 against θ > 0, given an estimate
 * `estimate` of θ with variance `variance` (a function of cumulative data only).
 *
 * The likelihood ratio of θ against 0 for a Gaussian estimate is exp(θ·d/v − θ²/(2v)); mixing θ
 * over a half-normal prior of scale τ on (0, ∞) gives, in closed form,
 *   Λ = 2 / sqrt(1 + r) · exp(d² r / (2 v (1 + r))) · Φ(d / sqrt(v) · sqrt(r / (1 + r))),  r = τ²/v.
 * For every true θ' <= 0 each component (θ > 0) is a nonnegative supermartingale in information
 * time I = 1/v (its expectation is exp(θ·θ'·I) <= 1), so Λ is an e-process for the whole composite
 * null and, by
 * Ville's inequality, P(Λ ever >= 1/α) <= α however often it is looked at.
 */
export function logMixtureEValue(estimate: number, variance: number, tau: number): number {
  if (!(variance > 0) || !(tau > 0) || !Number.isFinite(estimate)) return 0;
  const r = (tau * tau) / variance;
  const z = estimate / Math.sqrt(variance);
  return (
    Math.LN2 - 0.5 * Math.log1p(r) + (z * z * r) / (2 * (1 + r)) + logNormalCdf(z * Math.sqrt(r / (1 + r)))
  );
}

/** e^logE, kept finite for JSON (Number.MAX_VALUE above ~1e308). */
export function finiteExp(logE: number): number {
  return logE >= 709 ? Number.MAX_VALUE : Math.exp(logE);
}

/** One site's counts for one rate: x events in n trials, and its per-window squares if known. */
export interface SiteCounts {
  x: number;
  n: number;
  /** Σ over windows (with n_w > 0) of x_w² / n_w. */
  sq?: number;
  /** Windows with n_w > 0. */
  windows?: number;
}

/** Pseudo degrees of freedom of the between-site estimate's prior (the within-site φ). */
export const DISPERSION_PRIOR_DF = 4;

/** Normal quantile of the one-sided confidence level of the within-site φ (0.75). */
const DISPERSION_Z = 0.6745;

/**
 * Lower q-quantile of χ²(df) by the Wilson–Hilferty cube approximation (z = the normal quantile
 * of 1 − q), floored to stay positive for tiny df.
 */
export function chiSquareLower(df: number, z: number): number {
  const a = 2 / (9 * df);
  const c = 1 - a - z * Math.sqrt(a);
  return Math.max(df * c * c * c, 0.05 * df);
}

/** Cumulative Pearson statistics of one arm for one rate. */
export interface ArmChi {
  /** Pooled rate. */
  p: number;
  /** Between windows within sites: Σ_s Σ_w (x_w − n_w p̂_s)² / (n_w p̂ (1 − p̂)), and its df. */
  windowChi: number;
  windowDf: number;
  /** Between sites: Σ_s (x_s − n_s p̂)² / (n_s p̂ (1 − p̂)), and its df (sites − 1). */
  siteChi: number;
  siteDf: number;
}

export function armChi(sites: readonly SiteCounts[]): ArmChi {
  let x = 0;
  let n = 0;
  for (const s of sites) {
    x += s.x;
    n += s.n;
  }
  const out: ArmChi = { p: n > 0 ? x / n : 0, windowChi: 0, windowDf: 0, siteChi: 0, siteDf: 0 };
  const pq = out.p * (1 - out.p);
  if (!(pq > 0)) return out;
  let k = 0;
  for (const s of sites) {
    if (s.n <= 0) continue;
    k++;
    const dev = s.x - s.n * out.p;
    out.siteChi += (dev * dev) / (s.n * pq);
    if (s.sq !== undefined && s.windows !== undefined && s.windows > 1) {
      // Σ_w (x_w − n_w p̂_s)² / n_w = Σ_w x_w²/n_w − x_s²/n_s  (around the site's own rate).
      out.windowChi += Math.max(0, s.sq - (s.x * s.x) / s.n) / pq;
      out.windowDf += s.windows - 1;
    }
  }
  out.siteDf = Math.max(0, k - 1);
  return out;
}

/**
 * Variance inflation φ of each arm's pooled rate over Bernoulli trials: Var(p̂) ≈ φ·p(1−p)/N.
 *
 * Two Pearson (quasi-binomial) estimates, both from cumulative sums. Within sites, between
 * windows: captures tokens clustered in requests and requests clustered in time; per arm, with
 * many degrees of freedom, and taken at its upper 75% confidence bound so the first looks (few
 * windows) do not under-estimate it. Between sites, pooled over both arms: also captures sites
 * that differ, the unit the rollout actually assigns; with few sites it has few degrees of
 * freedom, so it is shrunk towards the within-site value. Never below 1.
 */
export function dispersions(canary: ArmChi, baseline: ArmChi): { canary: number; baseline: number } {
  const point = (a: ArmChi): number => (a.windowDf > 0 ? a.windowChi / a.windowDf : 1);
  const upper = (a: ArmChi): number =>
    a.windowDf > 0 ? Math.max(1, a.windowChi / chiSquareLower(a.windowDf, DISPERSION_Z)) : 1;
  const siteDf = canary.siteDf + baseline.siteDf;
  let excess = 0;
  if (siteDf > 0) {
    // What the sites' spread would be if sites differed only by within-site noise, pooled over
    // both arms; the between-site estimate is shrunk towards it, and only its excess is added.
    const expected =
      (canary.siteDf * Math.max(1, point(canary)) + baseline.siteDf * Math.max(1, point(baseline))) / siteDf;
    const site =
      (DISPERSION_PRIOR_DF * expected + canary.siteChi + baseline.siteChi) / (DISPERSION_PRIOR_DF + siteDf);
    excess = Math.max(0, site - expected);
  }
  return { canary: upper(canary) + excess, baseline: upper(baseline) + excess };
}
