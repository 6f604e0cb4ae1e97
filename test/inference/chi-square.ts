/**
 * Pearson's chi-square goodness-of-fit test for the sampling tests: observed token counts against
 * an expected distribution, with bins of expected count < 5 pooled (the usual validity rule), and
 * the exact p-value from the regularized upper incomplete gamma function Q(df/2, x/2).
 */

function logGamma(x: number): number {
  // Lanczos approximation (g = 7, n = 9), accurate to ~1e-15 for x > 0.
  const c = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
    12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
  ];
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  const z = x - 1;
  let a = c[0] as number;
  const t = z + 7.5;
  for (let i = 1; i < 9; i++) a += (c[i] as number) / (z + i);
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(a);
}

/** Regularized upper incomplete gamma Q(a, x) (Numerical Recipes gammq). */
export function gammaQ(a: number, x: number): number {
  if (x <= 0) return 1;
  const lead = -x + a * Math.log(x) - logGamma(a);
  if (x < a + 1) {
    let sum = 1 / a;
    let term = sum;
    for (let n = 1; n < 1000; n++) {
      term *= x / (a + n);
      sum += term;
      if (Math.abs(term) < Math.abs(sum) * 1e-15) break;
    }
    return 1 - sum * Math.exp(lead);
  }
  let b = x + 1 - a;
  let c = 1 / 1e-300;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i < 1000; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < 1e-300) d = 1e-300;
    c = b + an / c;
    if (Math.abs(c) < 1e-300) c = 1e-300;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < 1e-15) break;
  }
  return Math.exp(lead) * h;
}

export interface ChiSquareResult {
  statistic: number;
  df: number;
  pValue: number;
}

/** Tests `counts` (observations per outcome) against the probabilities `expected`. */
export function chiSquareTest(counts: ArrayLike<number>, expected: ArrayLike<number>): ChiSquareResult {
  let n = 0;
  for (let i = 0; i < counts.length; i++) n += counts[i] as number;
  let total = 0;
  for (let i = 0; i < expected.length; i++) total += expected[i] as number;
  const bins: { observed: number; expected: number }[] = [];
  let pooled = { observed: 0, expected: 0 };
  for (let i = 0; i < expected.length; i++) {
    const e = (n * (expected[i] as number)) / total;
    const o = counts[i] ?? 0;
    if (e >= 5) bins.push({ observed: o, expected: e });
    else {
      pooled.observed += o;
      pooled.expected += e;
    }
  }
  if (pooled.expected > 0 || pooled.observed > 0) {
    // An outcome with expected probability 0 that was observed makes the statistic infinite.
    if (pooled.expected < 5 && bins.length > 0) {
      const last = bins.pop() as { observed: number; expected: number };
      pooled = { observed: pooled.observed + last.observed, expected: pooled.expected + last.expected };
    }
    bins.push(pooled);
  }
  let statistic = 0;
  for (const b of bins) {
    statistic += b.expected > 0 ? (b.observed - b.expected) ** 2 / b.expected : b.observed > 0 ? Infinity : 0;
  }
  const df = Math.max(1, bins.length - 1);
  return { statistic, df, pValue: Number.isFinite(statistic) ? gammaQ(df / 2, statistic / 2) : 0 };
}
