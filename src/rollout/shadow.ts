/**
 * The shadow step of a rollout (docs/rollouts.md): before any wave serves the candidate, its sites
 * run it in their `shadow` slot, where the site runtime re-decodes a sample of served requests
 * with it after each response (its drafts are verified, never served; src/runtime/engine/shadow.ts)
 * and reports the counts in the window's `shadow` field.
 *
 * Judged on acceptance only, and tightly: the canary arm is the shadow counters of the shadow
 * sites' windows since the step took effect (windows whose context lists the candidate among its
 * shadow refs, recorded at or after the step's seq), the baseline arm is the served speculative
 * counters of the same sites over the same windows — the same requests, drafted by the adapter
 * being replaced and by the candidate. Other metrics (latency, errors) say nothing about a
 * candidate that serves no one, so they wait for the first wave.
 *
 * Owns: the shadow evidence, the metrics judged in shadow, and the op that clears the shadow slot
 * when the step ends (next wave, promote or abort).
 */
import type { UnassignOp } from '../fleet/ops.js';
import type { RolloutState } from '../fleet/rollout-ops.js';
import type { FleetState } from '../fleet/state.js';
import {
  emptyCounters,
  emptyHistogram,
  type FeedbackCounters,
  type FeedbackReport,
} from '../feedback/index.js';
import type { ArmHealth, StepEvidence } from './evidence.js';
import { stepEvidence } from './evidence.js';
import { sumWindows, type WindowLike } from './judge/index.js';
import type { ArmSample, MetricSpec } from './judge/types.js';
import { METRIC_DEFAULTS, type RolloutSpec } from './spec.js';

export function inShadow(r: RolloutState): boolean {
  return r.phase === 'shadow' && r.step === 0;
}

function isCandidate(x: { ref: string; manifestDigest: string }, r: RolloutState): boolean {
  return x.ref === r.candidate.ref && x.manifestDigest === r.candidate.manifestDigest;
}

/** The metrics of the shadow step: the spec's acceptance metric (or its defaults), nothing else. */
export function shadowMetrics(spec: RolloutSpec): MetricSpec[] {
  const acceptance = spec.metrics.find((m) => m.metric === 'acceptance');
  return [acceptance ?? { metric: 'acceptance', ...METRIC_DEFAULTS.acceptance }];
}

/** The window as the canary arm sees it: the candidate's shadow runs only. */
function shadowWindow(w: FeedbackReport, r: RolloutState): WindowLike {
  const s = w.shadow?.find((x) => isCandidate(x, r));
  const counters: FeedbackCounters = emptyCounters();
  if (s) {
    counters.requests.speculative = s.runs - s.errors;
    counters.draftTokens = s.draftTokens;
    counters.acceptedTokens = s.acceptedTokens;
    counters.verifyRounds = s.verifyRounds;
    counters.errors = s.errors;
  }
  return { counters, latency: { ttftMs: emptyHistogram(), e2eMs: emptyHistogram() } };
}

const NO_HEALTH: ArmHealth = { requests: 0, unhealthy: 0, speculative: 0 };

/** The shadow step's evidence from the reports at hand (pure; see the module comment). */
export function shadowEvidence(
  state: FleetState,
  r: RolloutState,
  reportsOf: (site: string) => readonly FeedbackReport[],
): StepEvidence {
  const from = Date.parse(r.stepTime);
  const sites = (r.shadowSites ?? []).filter((s) => Object.hasOwn(state.sites, s));
  const canary: ArmSample[] = [];
  const baseline: ArmSample[] = [];
  for (const site of sites) {
    const windows = reportsOf(site).filter(
      (w) =>
        w.fleetSeq >= r.stepSeq &&
        Date.parse(w.windowStart) >= from &&
        (w.refs.shadow ?? []).some((x) => isCandidate(x, r)),
    );
    if (windows.length === 0) continue;
    canary.push(
      sumWindows(
        windows.map((w) => shadowWindow(w, r)),
        site,
      ),
    );
    baseline.push(sumWindows(windows, site));
  }
  const count = (a: ArmSample[]) => a.reduce((n, s) => n + s.windows, 0);
  return {
    canary,
    baseline,
    sites: { canary: sites, baseline: sites },
    windows: { canary: count(canary), baseline: count(baseline) },
    // The abort limits judge served traffic; in shadow the candidate serves none.
    health: { canary: NO_HEALTH, baseline: NO_HEALTH },
  };
}

/** The evidence and metrics of the rollout's current step, shadow or wave. */
export function currentStep(
  state: FleetState,
  r: RolloutState,
  spec: RolloutSpec,
  reportsOf: (site: string) => readonly FeedbackReport[],
): { evidence: StepEvidence; metrics: MetricSpec[] } {
  return inShadow(r)
    ? { evidence: shadowEvidence(state, r, reportsOf), metrics: shadowMetrics(spec) }
    : { evidence: stepEvidence(state, r, reportsOf), metrics: spec.metrics };
}

/** Unassigns the candidate from the shadow slot of the sites that still have it (or nothing). */
export function shadowCleanupOps(state: FleetState, r: RolloutState): UnassignOp[] {
  const sites = (r.shadowSites ?? []).filter((s) =>
    (state.sites[s]?.assignments.shadow ?? []).some((x) => isCandidate(x, r)),
  );
  if (sites.length === 0) return [];
  const name = r.identity.slice(r.identity.indexOf('/') + 1);
  return [{ op: 'unassign', sites: [...sites].sort(), slot: 'shadow', name }];
}
