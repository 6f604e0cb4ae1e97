/**
 * The evidence a rollout step is judged on (docs/rollouts.md, docs/formats.md "Feedback reports"): signed feedback of the
 * selected sites, read incrementally from the registry's feedback index (only reports signed by each
 * site's declared key count; feedback/feed.ts and read.ts verify them), filtered to the current step and summed per site.
 *
 * Which windows count for step k (which took effect at entry seq s_k, time t_k):
 * - canary site: the candidate (ref and manifest digest) is among the window's refs, the window's
 *   `fleetSeq` is at least the seq at which this site was assigned the candidate, and the window
 *   starts at or after t_k (each step is judged on fresh evidence, so the sequential test of a
 *   step starts from zero, and a wave that grew is judged on the grown wave);
 * - baseline site (selected, not in the canary): the candidate is not among its refs and the window
 *   starts at or after t_k: the same span of time as the canary.
 * Windows of sites outside the selection never count; nor do windows recorded before the site
 * applied the candidate (a site that has not synced yet contributes nothing, not old evidence).
 */
import type { FleetState } from '../fleet/state.js';
import type { RolloutState } from '../fleet/rollout-ops.js';
import type { FeedbackReport } from '../feedback/index.js';
import { sumWindows } from './judge/index.js';
import type { ArmSample } from './judge/types.js';

/**
 * Reports read so far per site, so each tick only fetches new ones: the fleet-wide feedback index
 * read incrementally (src/feedback/feed.ts; a tick costs requests in proportion to new reports).
 */
export { FeedbackFeed as FeedbackCache } from '../feedback/index.js';

function hasCandidate(report: FeedbackReport, r: RolloutState): boolean {
  const { ref, manifestDigest } = r.candidate;
  const refs = report.refs;
  const list =
    r.slot === 'adapters'
      ? refs.adapters
      : r.slot === 'indexes'
        ? (refs.indexes ?? [])
        : r.slot === 'model'
          ? [refs.model]
          : [refs.policy];
  return list.some((x) => x !== undefined && x.ref === ref && x.manifestDigest === manifestDigest);
}

export interface ArmHealth {
  requests: number;
  /** Requests that failed or were answered unverified because the verifier was unavailable. */
  unhealthy: number;
  /** Requests the router served speculatively (draft + verifier). */
  speculative: number;
}

export interface StepEvidence {
  canary: ArmSample[];
  baseline: ArmSample[];
  /** Selected sites in each arm (with or without feedback). */
  sites: { canary: string[]; baseline: string[] };
  windows: { canary: number; baseline: number };
  health: { canary: ArmHealth; baseline: ArmHealth };
}

function sample(site: string, reports: readonly FeedbackReport[]): ArmSample {
  return sumWindows(reports, site);
}

function health(samples: readonly ArmSample[]): ArmHealth {
  let requests = 0;
  let unhealthy = 0;
  let speculative = 0;
  for (const s of samples) {
    const c = s.counters;
    requests += c.requests.edge + c.requests.speculative + c.requests.cloud;
    unhealthy += c.errors + c.fallbacks;
    speculative += c.requests.speculative;
  }
  return { requests, unhealthy, speculative };
}

/** The step's evidence from the reports at hand (pure; see the module comment for the rules). */
export function stepEvidence(
  state: FleetState,
  r: RolloutState,
  reportsOf: (site: string) => readonly FeedbackReport[],
): StepEvidence {
  const from = Date.parse(r.stepTime);
  const canarySet = new Set(r.canary);
  const present = r.sites.filter((s) => Object.hasOwn(state.sites, s));
  const sites = {
    canary: present.filter((s) => canarySet.has(s)),
    baseline: present.filter((s) => !canarySet.has(s)),
  };
  const canary: ArmSample[] = [];
  const baseline: ArmSample[] = [];
  for (const site of sites.canary) {
    const minSeq = r.assignedSeq[site] ?? r.stepSeq;
    const windows = reportsOf(site).filter(
      (w) => w.fleetSeq >= minSeq && Date.parse(w.windowStart) >= from && hasCandidate(w, r),
    );
    if (windows.length > 0) canary.push(sample(site, windows));
  }
  for (const site of sites.baseline) {
    const windows = reportsOf(site).filter((w) => Date.parse(w.windowStart) >= from && !hasCandidate(w, r));
    if (windows.length > 0) baseline.push(sample(site, windows));
  }
  const count = (a: ArmSample[]) => a.reduce((n, s) => n + s.windows, 0);
  return {
    canary,
    baseline,
    sites,
    windows: { canary: count(canary), baseline: count(baseline) },
    health: { canary: health(canary), baseline: health(baseline) },
  };
}
