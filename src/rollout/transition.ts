/**
 * The controller's transition of a running rollout (docs/rollouts.md, docs/formats.md "Feedback reports"), as pure
 * functions: `nextTransition` turns the judge's verdict on a step (src/rollout/judge: `stepVerdict`),
 * the arms' health and the clock into what to do next with a typed reason code, and `decisionOps`
 * into the fleet-log ops that carry it out (the judgement first, then the transition's ops from
 * actions.ts). Kept apart from the judge: the judge says how the metrics compare, this says what
 * the rollout does about it (abort limits, timeouts, soak time, onInconclusive).
 */
import type { FleetOp } from '../fleet/ops.js';
import type { RolloutOp, RolloutState } from '../fleet/rollout-ops.js';
import type { FleetState } from '../fleet/state.js';
import { abortOps, advanceOps, judgementJson, pauseOps, type Decision, type PauseKind } from './actions.js';
import type { ArmHealth } from './evidence.js';
import type { StepJudgement } from './judge/types.js';
import { inShadow } from './shadow.js';
import { specFromJson } from './spec.js';

/**
 * Why the controller made a transition, as a stable code (like Argo Rollouts' condition reasons);
 * `reason` is the human sentence written to the log, `code` what programs branch on.
 */
export type TransitionReason =
  | 'AbortLimitErrorRate' // the canary's failed-or-unverified rate is over abort.errorRate
  | 'EnvironmentUnhealthy' // ... and the baseline's too: the verifier or network, not the candidate
  | 'SpeculativeDrop' // the router stopped trusting the candidate's drafts
  | 'MetricFailed' // the judge's verdict: a non-dry-run metric failed
  | 'RolloutTimedOut' // the total timeout passed
  | 'Soaking' // every metric passed; the step's pause is not over yet
  | 'MetricsPassed' // every metric passed and the step soaked: advance
  | 'StepInconclusiveTimeout' // inconclusive past the step timeout: onInconclusive
  | 'AwaitingEvidence'; // not enough evidence yet

/** The controller's transition of a running rollout: what to do, its reason code and sentence. */
export interface Transition {
  decision: Decision;
  code: TransitionReason;
  reason: string;
  pauseKind?: PauseKind;
}

function rate(h: ArmHealth): number {
  return h.requests > 0 ? h.unhealthy / h.requests : 0;
}

function pct(x: number): string {
  return `${(x * 100).toFixed(1)}%`;
}

/**
 * The next transition of a running rollout (pure). In order:
 * 1. abort limit: the canary's failed-or-unverified rate is above `abort.errorRate` (with at least
 *    `abort.minRequests` requests). If the baseline is as unhealthy, the cause is not the candidate
 *    (the verifier or the network is down): pause (`environment`), never roll back. Otherwise roll back.
 *    Likewise when the canary's share of speculatively served requests is more than
 *    `abort.speculativeDrop` below the baseline's: the router gave up on the candidate's drafts.
 * 2. the judge says rollback (a non-dry-run metric failed): roll back.
 * 3. the total timeout (from the start or the last resume) has passed: pause (`timeout`).
 * 4. the judge says promote: advance once the step has soaked for its `pause`, else continue.
 * 5. inconclusive past the step timeout: `onInconclusive` (default pause; never a silent rollback).
 */
export function nextTransition(
  r: RolloutState,
  judged: StepJudgement,
  health: { canary: ArmHealth; baseline: ArmHealth },
  now: Date,
): Transition {
  const d = stepTransition(r, judged, health, now);
  if (inShadow(r) && d.decision === 'rollback') {
    return { ...d, reason: `rolled back in shadow: no user saw it — ${d.reason}` };
  }
  return d;
}

/**
 * The abort limits (1. of `nextTransition`): the canary's failed-or-unverified rate over
 * `abort.errorRate` (a pause when the baseline is as unhealthy), or its speculative share more
 * than `abort.speculativeDrop` below the baseline's; undefined when neither applies.
 */
function abortLimit(
  spec: ReturnType<typeof specFromJson>,
  health: { canary: ArmHealth; baseline: ArmHealth },
): Transition | undefined {
  const { canary, baseline } = health;
  const ceiling = spec.abort.errorRate;
  if (canary.requests >= spec.abort.minRequests && rate(canary) > ceiling) {
    const what = `canary sites failed or answered unverified ${pct(rate(canary))} of ${canary.requests} requests (limit ${pct(ceiling)})`;
    if (baseline.requests >= spec.abort.minRequests && rate(baseline) > ceiling) {
      return {
        decision: 'pause',
        code: 'EnvironmentUnhealthy',
        pauseKind: 'environment',
        reason: `${what}, but baseline sites did too (${pct(rate(baseline))}): the verifier or the network is failing, not the candidate`,
      };
    }
    return { decision: 'rollback', code: 'AbortLimitErrorRate', reason: `abort limit: ${what}` };
  }
  const minReq = spec.abort.minRequests;
  const drop = spec.abort.speculativeDrop ?? 0.5;
  if (canary.requests >= minReq && baseline.requests >= minReq && drop < 1) {
    const c = canary.speculative / canary.requests;
    const b = baseline.speculative / baseline.requests;
    if (b - c > drop) {
      return {
        decision: 'rollback',
        code: 'SpeculativeDrop',
        reason: `abort limit: canary sites served ${pct(c)} of ${canary.requests} requests speculatively against ${pct(b)} on baseline sites (limit: ${pct(drop)} lower): the router stopped trusting the candidate's drafts`,
      };
    }
  }
  return undefined;
}

function stepTransition(
  r: RolloutState,
  judged: StepJudgement,
  health: { canary: ArmHealth; baseline: ArmHealth },
  now: Date,
): Transition {
  const spec = specFromJson(r.spec);
  const step = inShadow(r) && spec.shadow ? spec.shadow : (spec.steps[r.step - 1] ?? spec.steps.at(-1));
  const t = now.getTime();
  const limit = abortLimit(spec, health);
  if (limit) return limit;
  const failed = judged.judgements.filter((j) => j.verdict === 'fail' && !j.dryRun);
  if (judged.decision === 'rollback') {
    return {
      decision: 'rollback',
      code: 'MetricFailed',
      reason: failed.map((j) => j.reason).join('; ') || 'a metric failed',
    };
  }
  if (t - Date.parse(r.runningSince) > spec.timeoutMs) {
    return {
      decision: 'pause',
      code: 'RolloutTimedOut',
      pauseKind: 'timeout',
      reason: `the rollout ran longer than its timeout (${Math.round(spec.timeoutMs / 1000)} s) without finishing`,
    };
  }
  if (judged.decision === 'promote') {
    const soakLeft = (step?.pauseMs ?? 0) - (t - Date.parse(r.stepTime));
    if (soakLeft > 0)
      return {
        decision: 'continue',
        code: 'Soaking',
        reason: `every metric passed; soaking ${Math.ceil(soakLeft / 1000)} s more`,
      };
    return {
      decision: 'promote',
      code: 'MetricsPassed',
      reason: `every metric passed: ${judged.judgements
        .filter((j) => !j.dryRun)
        .map((j) => j.metric)
        .join(', ')}`,
    };
  }
  const waiting = judged.judgements.filter((j) => j.verdict === 'inconclusive' && !j.dryRun);
  const why = waiting.map((j) => j.reason).join('; ') || 'not enough evidence yet';
  if (step && t - Date.parse(r.clockFrom) > step.timeoutMs) {
    const msg = `step ${r.step} stayed inconclusive past its timeout (${Math.round(step.timeoutMs / 1000)} s): ${why}`;
    const code = 'StepInconclusiveTimeout';
    if (spec.onInconclusive === 'rollback') return { decision: 'rollback', code, reason: msg };
    if (spec.onInconclusive === 'promote')
      return { decision: 'promote', code, reason: `${msg} (onInconclusive: promote)` };
    return { decision: 'pause', code, pauseKind: 'inconclusive', reason: msg };
  }
  return { decision: 'continue', code: 'AwaitingEvidence', reason: why };
}

/** Whether a continue-judgement differs from the last one logged for this step (else: not logged). */
export function judgementChanged(r: RolloutState, judged: StepJudgement, decision: Decision): boolean {
  const last = r.last;
  if (!last || last.step !== r.step || last.decision !== decision) return true;
  const verdicts = Object.fromEntries(judged.judgements.map((j) => [j.metric, j.verdict]));
  const keys = new Set([...Object.keys(verdicts), ...Object.keys(last.verdicts)]);
  for (const k of keys) if (verdicts[k] !== last.verdicts[k]) return true;
  return false;
}

/** The entry ops for a decision: the judgement first, then the transition it causes. */
export function decisionOps(
  state: FleetState,
  r: RolloutState,
  judged: StepJudgement,
  d: Transition,
  windows: { canary: number; baseline: number },
  by: string,
): FleetOp[] {
  const judgement: RolloutOp = {
    op: 'rollout.judgement',
    rollout: r.id,
    step: r.step,
    decision: d.decision,
    reason: d.reason,
    judgements: judged.judgements.map(judgementJson),
    windows,
    ...(inShadow(r) ? { shadow: true as const } : {}),
  };
  switch (d.decision) {
    case 'continue':
      return judgementChanged(r, judged, d.decision) ? [judgement] : [];
    case 'promote':
      return [judgement, ...advanceOps(state, r, d.reason, by)];
    case 'rollback':
      return [judgement, ...abortOps(state, r, d.reason, by)];
    case 'pause':
      return [judgement, ...pauseOps(r, d.pauseKind ?? 'inconclusive', d.reason, by)];
  }
}
