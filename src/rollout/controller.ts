/**
 * The rollout controller (docs/rollouts.md, docs/formats.md "Feedback reports"): one pass (`tick`) folds the rollout from
 * the fleet log, reads the new signed feedback of its sites, judges the current step, decides, and
 * appends what changed; `runController` repeats passes every `interval` until the rollout is
 * promoted, rolled back or paused, or the caller's deadline or signal stops it.
 *
 * The controller keeps nothing that matters in memory: the state is the log (the feedback cache
 * only saves re-reading reports). Kill it at any point and `rollout resume` continues from the log:
 * an entry is either in the log or not, and a decision not yet written is simply made again.
 *
 * Two controllers on one rollout: each decision is written through `appendEntry` with a `build`
 * that re-reads the rollout and refuses unless it is unchanged since the judgement (same
 * `updatedSeq`, still running). Entry seqs are create-only, so of two controllers acting on the
 * same state exactly one entry lands; the other sees the moved state, writes nothing and judges
 * again on the next pass. Judgements that merely repeat the last logged verdicts are not written
 * (a `continue` is logged when a verdict or the decision changes), so a long inconclusive step adds
 * a handful of entries, not one per pass.
 */
import { NotFoundError } from '../foundation/errors.js';
import type { FleetState } from '../fleet/state.js';
import type { RolloutState } from '../fleet/rollout-ops.js';
import { appendEntry, readLatest, type FleetWriter } from './append.js';
import { decisionOps, nextTransition, specFromJson, type Transition } from './actions.js';
import { FeedbackCache, type StepEvidence } from './evidence.js';
import { currentStep } from './shadow.js';
import type { JudgeStep, StepJudgement } from './judge/types.js';

export interface ControllerDeps extends FleetWriter {
  judge: JudgeStep;
  /** Who acts, recorded in the ops (`controller@host`). */
  by: string;
  cache?: FeedbackCache;
}

export interface TickResult {
  /** The rollout after this pass. */
  rollout: RolloutState;
  state: FleetState;
  judged: StepJudgement | null;
  decided: Transition | null;
  evidence: StepEvidence | null;
  /** Seq of the entry this pass wrote, or null. */
  wrote: number | null;
  /** Another writer changed the rollout between judging and writing: nothing of ours was written. */
  raced: boolean;
}

export function getRollout(state: FleetState, id: string): RolloutState {
  const r = state.rollouts && Object.hasOwn(state.rollouts, id) ? state.rollouts[id] : undefined;
  if (!r) {
    throw new NotFoundError(`no rollout ${id} in the fleet log`, {
      code: 'E_ROLLOUT_NOT_FOUND',
      suggestion: 'list rollouts with `edgectl rollout history`',
    });
  }
  return r;
}

/** One controller pass over rollout `id` (see the module comment). */
export async function tick(deps: ControllerDeps, id: string): Promise<TickResult> {
  const now = deps.clock();
  const latest = await readLatest(deps.store, deps.trust, now);
  const state = latest.applied.state;
  const r = getRollout(state, id);
  if (r.status !== 'running') {
    return { rollout: r, state, judged: null, decided: null, evidence: null, wrote: null, raced: false };
  }
  const cache = deps.cache ?? new FeedbackCache();
  // Windows that ended before the step began can never count; a minute of slack for clock skew.
  await cache.refresh(deps.store, state, r.sites, new Date(Date.parse(r.stepTime) - 60_000));
  const spec = specFromJson(r.spec);
  // A shadow step is judged on shadow runs against the same sites' served drafts (shadow.ts).
  const { evidence, metrics } = currentStep(state, r, spec, (s) => cache.reports(s));
  const judged = deps.judge(metrics, evidence.canary, evidence.baseline);
  const decided = nextTransition(r, judged, evidence.health, now);
  let raced = false;
  const res = await appendEntry(deps, (fleet) => {
    const cur = fleet.state.rollouts?.[id];
    if (!cur || cur.updatedSeq !== r.updatedSeq || cur.status !== 'running') {
      raced = true;
      return null;
    }
    return { ops: decisionOps(fleet.state, cur, judged, decided, evidence.windows, deps.by) };
  });
  const after = getRollout(res.fleet.state, id);
  if (res.duplicate) raced = true;
  return { rollout: after, state: res.fleet.state, judged, decided, evidence, wrote: res.seq, raced };
}

export interface RunOptions {
  /** Stop waiting at this time (the rollout goes on; `rollout resume` continues it). */
  deadline?: number;
  signal?: AbortSignal;
  /** Overrides the spec's interval between passes (ms). */
  intervalMs?: number;
  onTick?: (t: TickResult) => void;
}

export interface RunResult {
  last: TickResult;
  /** Why the loop stopped. */
  stopped: 'ended' | 'paused' | 'deadline' | 'signal';
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** Passes until the rollout is no longer running, or the deadline or signal stops the wait. */
export async function runController(
  deps: ControllerDeps,
  id: string,
  opts: RunOptions = {},
): Promise<RunResult> {
  const cache = deps.cache ?? new FeedbackCache();
  const d = { ...deps, cache };
  for (;;) {
    const t = await tick(d, id);
    opts.onTick?.(t);
    if (t.rollout.status === 'paused') return { last: t, stopped: 'paused' };
    if (t.rollout.status !== 'running') return { last: t, stopped: 'ended' };
    if (t.raced) continue;
    const interval = opts.intervalMs ?? specFromJson(t.rollout.spec).intervalMs;
    const left = opts.deadline !== undefined ? opts.deadline - Date.now() : Infinity;
    if (left <= 0) return { last: t, stopped: 'deadline' };
    if (opts.signal?.aborted) return { last: t, stopped: 'signal' };
    await sleep(Math.min(interval, left), opts.signal);
    if (opts.signal?.aborted) return { last: t, stopped: 'signal' };
  }
}
