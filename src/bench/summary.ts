/**
 * Small statistics for benchmark reports: nearest-rank percentiles and a latency summary. Written
 * here because the handful of lines needed do not justify a statistics dependency.
 */

/** Nearest-rank percentile (p in 0..100) of unsorted values; NaN for an empty list. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1] as number;
}

export interface LatencySummary {
  p50: number;
  p95: number;
  mean: number;
}

export function summarize(values: readonly number[]): LatencySummary {
  const mean = values.length ? values.reduce((a, b) => a + b, 0) / values.length : Number.NaN;
  return { p50: round(percentile(values, 50)), p95: round(percentile(values, 95)), mean: round(mean) };
}

/** Rounds for reports (3 significant decimals is plenty for ms and ratios). */
export function round(v: number, digits = 3): number {
  if (!Number.isFinite(v)) return v;
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

export function ratio(a: number, b: number): number | null {
  return b > 0 && Number.isFinite(a) ? round(a / b) : null;
}
