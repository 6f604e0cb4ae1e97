/**
 * Summing feedback windows into the judge's `ArmSample`: `addWindow` (the controller's
 * incremental path), `sumWindows` and `emptyArmSample`. Besides the counter and histogram totals,
 * each sample keeps per-window squares (`ArmDispersion`) from which the judge measures
 * overdispersion between windows; docs/rollout-judge.md explains why the variance needs them.
 */
import {
  emptyCounters,
  emptyHistogram,
  LATENCY_BOUNDS_MS,
  type FeedbackCounters,
  type FeedbackLatency,
  type LatencyHistogram,
} from '../../feedback/report.js';
import type { ArmDispersion, ArmSample } from './types.js';

/** Number of latency buckets (the fixed bounds plus the overflow bucket). */
export const NBUCKETS = LATENCY_BOUNDS_MS.length + 1;

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
