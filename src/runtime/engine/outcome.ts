/**
 * What a finished site request reports (docs/architecture.md, runtime): the feedback outcome (route,
 * fallback, escalation, speculative counts, redactions, TTFT and end-to-end time) that the
 * daemon's accumulator signs into feedback reports and the metrics count, the `edgectl` field of
 * the response, and the served request's round costs that its shadow run drafts with (shadow.ts).
 */
import type { RoundCosts } from '../../inference/adaptive-k.js';
import type { RouteDecision } from '../../policy/router.js';
import type { RequestOutcome } from '../../feedback/accumulator.js';
import type { LoadedGeneration } from './generation.js';
import type { EdgectlInfo } from '../serve/openai.js';
import type { RunState } from './route-executor.js';

export function outcomeOf(
  g: LoadedGeneration,
  decision: RouteDecision | undefined,
  state: RunState | undefined,
  redactions: number,
  ttftMs: number | undefined,
  t0: number,
): RequestOutcome {
  return {
    route: state?.route ?? decision?.route ?? g.policy.routing.default,
    ...(decision?.escalated ? { escalated: true } : {}),
    ...(state?.fallback ? { fallback: true } : {}),
    draftTokens: state?.draftTokens ?? 0,
    acceptedTokens: state?.acceptedTokens ?? 0,
    verifyRounds: state?.verifyRounds ?? 0,
    outputTokens: state?.emitted.length ?? 0,
    redactions,
    ...(ttftMs === undefined ? {} : { ttftMs }),
    e2eMs: performance.now() - t0,
  };
}

/** The response's `edgectl` field: route, why, unverified, speculative statistics, redactions. */
export function edgectlInfo(
  decision: RouteDecision | undefined,
  state: RunState | undefined,
  redactions: number,
): EdgectlInfo {
  return {
    route: state?.route ?? decision?.route ?? 'blocked',
    reason: decision?.reason ?? '',
    unverified: state?.unverified ?? false,
    stats: {
      draftTokens: state?.draftTokens ?? 0,
      acceptedTokens: state?.acceptedTokens ?? 0,
      verifyRounds: state?.verifyRounds ?? 0,
      acceptance: state && state.draftTokens > 0 ? state.acceptedTokens / state.draftTokens : null,
      k:
        state && state.route === 'speculative' && state.verifyRounds > 0
          ? Math.round((state.draftTokens / state.verifyRounds) * 100) / 100
          : null,
    },
    redactions,
  };
}

/** The served request's measured round costs, for its shadow run; none without speculative rounds. */
export function servedCosts(state: RunState): RoundCosts | undefined {
  if (state.route !== 'speculative' || state.verifyRounds === 0 || state.draftTokens === 0) return undefined;
  return {
    draftMsPerToken: state.draftMs / state.draftTokens,
    roundMs: Math.max(state.verifyMs / state.verifyRounds, 1e-3),
  };
}
