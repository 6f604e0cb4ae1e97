/**
 * Rollouts in the fleet log (docs/formats.md "Fleet log", docs/rollouts.md): the
 * rollout ops, the per-rollout state they fold into (`FleetState.rollouts[<id>]`), the pure
 * reducer every reader of the log runs (one fold per op), and, re-exported, the ops' schemas
 * (rollout-op-schema.ts) and the "holds" that stop `site plan` from undoing what a rollout assigned
 * (rollout-holds.ts).
 *
 * A rollout op never changes a site's assignments itself: the controller writes the assignment
 * change as ordinary `assign`/`unassign` ops in the same entry (`rollout.step` + `assign`,
 * `rollout.abort` + the previous refs re-assigned), so `applyEntry` stays one pure fold, sites
 * sync rollouts through the normal state, and an old reader that skips nothing still computes the
 * same state digest. The rollout ops carry what a reader needs to explain the change (candidate,
 * previous refs, judgements with their evidence) and what the controller needs to continue after a
 * crash (the spec itself, the seq and time each step took effect).
 *
 * Shadow steps: a spec with a shadow step starts with `rollout.step` 0 (`shadow: true`) and an
 * `assign` of the candidate to those sites' `shadow` slot; the rollout is then at step 0 with
 * `phase: 'shadow'` and no canary. Step 1 (with the `unassign` of the shadow slot and the first
 * wave's `assign`) ends the shadow phase; an abort during it keeps `phase` (it ended in shadow).
 *
 * The reducer validates each op (zod, then state transitions) and throws VerificationError for a
 * signed op that does not fit: an entry that cannot be interpreted must be refused, never skipped.
 */
import { VerificationError } from '../foundation/errors.js';
import { opSchema, type JsonValue, type RolloutOp, type RolloutStartOp } from './rollout-op-schema.js';

export * from './rollout-op-schema.js';
export * from './rollout-holds.js';

export type RolloutStatus = 'running' | 'paused' | 'promoted' | 'aborted' | 'undone';
export type ResolvedRefJson = { ref: string; manifestDigest: string };

/** The folded state of one rollout, stored under `FleetState.rollouts[<id>]` (JSON). */
export interface RolloutState {
  // `undefined` only for the optional fields below (absent, never written as null).
  [key: string]: JsonValue | undefined;
  id: string;
  status: RolloutStatus;
  candidate: ResolvedRefJson;
  slot: 'model' | 'adapters' | 'policy' | 'indexes';
  identity: string;
  selector: string;
  sites: string[];
  waves: number[];
  previous: { [site: string]: ResolvedRefJson | null };
  spec: { [key: string]: JsonValue };
  specDigest: string;
  /** Current step (1-based); the canary is the first `waves[step-1]` sites. */
  step: number;
  /** Sites currently assigned the candidate. */
  canary: string[];
  /** Seq at which each canary site was assigned the candidate (its feedback counts from then). */
  assignedSeq: { [site: string]: number };
  /** Seq and time the current step took effect (the evidence window of the step starts here). */
  stepSeq: number;
  stepTime: string;
  /** Time the timeouts count from: the step's start or the last resume, whichever is later. */
  clockFrom: string;
  /** Time of the start or of the last resume (the total timeout counts from here). */
  runningSince: string;
  startedAt: string;
  startSeq: number;
  updatedAt: string;
  updatedSeq: number;
  endedAt: string | null;
  /** Why it is paused or ended (null while running normally). */
  reason: string | null;
  pauseReason: string | null;
  judgements: number;
  /** The last judgement's step, decision and per-metric verdicts (to log only changes). */
  last: { step: number; decision: string; verdicts: { [metric: string]: string } } | null;
  /** `shadow` while in the shadow step (and after an abort in it); absent otherwise. */
  phase?: 'shadow';
  /** Sites of the shadow step, once there was one. */
  shadowSites?: string[];
}

/**
 * Folds one rollout op into the rollouts map. Pure: returns the new map (or the same one) and must
 * not mutate its inputs. It may throw VerificationError for an op that does not fit the state.
 */
export type RolloutReducer = (
  rollouts: Readonly<Record<string, RolloutState>>,
  op: RolloutOp,
  ctx: { seq: number; time: string },
) => Record<string, RolloutState>;

function invalid(ctx: { seq: number }, op: { op: string; rollout: string }, message: string) {
  return new VerificationError(`fleet entry ${ctx.seq}: ${op.op} ${op.rollout}: ${message}`, {
    code: 'E_ENTRY_INVALID',
    details: { seq: ctx.seq, op: op.op, rollout: op.rollout },
  });
}

/** True while the controller acts on the rollout (running or paused). */
export function isActive(r: Pick<RolloutState, 'status'>): boolean {
  return r.status === 'running' || r.status === 'paused';
}

function started(op: RolloutStartOp, ctx: { seq: number; time: string }): RolloutState {
  return {
    id: op.rollout,
    status: 'running',
    candidate: op.candidate,
    slot: op.slot,
    identity: op.identity,
    selector: op.selector,
    sites: op.sites,
    waves: op.waves,
    previous: op.previous,
    spec: op.spec,
    specDigest: op.specDigest,
    step: 0,
    canary: [],
    assignedSeq: {},
    stepSeq: ctx.seq,
    stepTime: ctx.time,
    clockFrom: ctx.time,
    runningSince: ctx.time,
    startedAt: ctx.time,
    startSeq: ctx.seq,
    updatedAt: ctx.time,
    updatedSeq: ctx.seq,
    endedAt: null,
    reason: null,
    pauseReason: null,
    judgements: 0,
    last: null,
  };
}

function withCanary(
  r: RolloutState,
  add: string[],
  seq: number,
): Pick<RolloutState, 'canary' | 'assignedSeq'> {
  const assignedSeq = { ...r.assignedSeq };
  for (const s of add) assignedSeq[s] = seq;
  const set = new Set([...r.canary, ...add]);
  return { canary: r.sites.filter((s) => set.has(s)), assignedSeq };
}

type Ctx = { seq: number; time: string };
type Touch = { updatedAt: string; updatedSeq: number };
type OpOf<K extends RolloutOp['op']> = Extract<RolloutOp, { op: K }>;
/** Folds one op into the rollout it names (which exists); throws for an op that does not fit. */
type Fold<K extends RolloutOp['op']> = (
  cur: RolloutState,
  op: OpOf<K>,
  ctx: Ctx,
  touch: Touch,
) => RolloutState;

function mustBeActive(cur: RolloutState, op: RolloutOp, ctx: Ctx): void {
  if (!isActive(cur)) throw invalid(ctx, op, `the rollout is ${cur.status}`);
}

function foldStart(op: RolloutStartOp, ctx: Ctx): RolloutState {
  const last = op.waves.at(-1);
  if (last !== op.sites.length || op.waves.some((w, i) => i > 0 && w <= (op.waves[i - 1] ?? 0))) {
    throw invalid(ctx, op, 'waves must grow and end at the number of selected sites');
  }
  if (op.sites.some((s) => !Object.hasOwn(op.previous, s))) {
    throw invalid(ctx, op, 'previous must name every selected site');
  }
  return started(op, ctx);
}

const foldStep: Fold<'rollout.step'> = (cur, op, ctx, touch) => {
  mustBeActive(cur, op, ctx);
  const clock = { stepSeq: ctx.seq, stepTime: ctx.time, clockFrom: ctx.time, last: null };
  if (op.shadow) {
    if (op.step !== 0 || cur.step !== 0 || cur.shadowSites !== undefined) {
      throw invalid(ctx, op, 'a shadow step is step 0, right after the start, and only once');
    }
    return { ...cur, ...touch, phase: 'shadow', shadowSites: op.sites, ...clock };
  }
  if (op.step !== cur.step + 1 || op.step > cur.waves.length) {
    throw invalid(ctx, op, `step ${op.step} does not follow step ${cur.step}`);
  }
  const next: RolloutState = {
    ...cur,
    ...touch,
    ...withCanary(cur, op.sites, ctx.seq),
    step: op.step,
    ...clock,
  };
  delete next.phase;
  return next;
};

const foldJudgement: Fold<'rollout.judgement'> = (cur, op, ctx, touch) => {
  mustBeActive(cur, op, ctx);
  const verdicts: Record<string, string> = {};
  for (const j of op.judgements) {
    if (typeof j.metric === 'string') verdicts[j.metric] = typeof j.verdict === 'string' ? j.verdict : '?';
  }
  return {
    ...cur,
    ...touch,
    judgements: cur.judgements + 1,
    last: { step: op.step, decision: op.decision, verdicts },
  };
};

const foldPause: Fold<'rollout.pause'> = (cur, op, ctx, touch) => {
  if (cur.status !== 'running') throw invalid(ctx, op, `the rollout is ${cur.status}, not running`);
  return { ...cur, ...touch, status: 'paused', reason: op.message, pauseReason: op.reason };
};

const foldResume: Fold<'rollout.resume'> = (cur, op, ctx, touch) => {
  if (cur.status !== 'paused') throw invalid(ctx, op, `the rollout is ${cur.status}, not paused`);
  return {
    ...cur,
    ...touch,
    status: 'running',
    reason: null,
    pauseReason: null,
    clockFrom: ctx.time,
    runningSince: ctx.time,
  };
};

const foldPromote: Fold<'rollout.promote'> = (cur, op, ctx, touch) => {
  mustBeActive(cur, op, ctx);
  const next: RolloutState = {
    ...cur,
    ...touch,
    ...withCanary(cur, op.sites, ctx.seq),
    status: 'promoted',
    step: cur.waves.length,
    endedAt: ctx.time,
    reason: op.reason,
    pauseReason: null,
  };
  delete next.phase;
  return next;
};

const foldAbort: Fold<'rollout.abort'> = (cur, op, ctx, touch) => {
  mustBeActive(cur, op, ctx);
  return { ...cur, ...touch, status: 'aborted', canary: [], endedAt: ctx.time, reason: op.reason };
};

const foldUndo: Fold<'rollout.undo'> = (cur, op, ctx, touch) => {
  if (cur.status !== 'promoted')
    throw invalid(ctx, op, `only a promoted rollout can be undone (it is ${cur.status})`);
  return { ...cur, ...touch, status: 'undone', canary: [], endedAt: ctx.time, reason: op.reason };
};

/** How each op after the start folds into its rollout. */
const FOLDS: { [K in Exclude<RolloutOp['op'], 'rollout.start'>]: Fold<K> } = {
  'rollout.step': foldStep,
  'rollout.judgement': foldJudgement,
  'rollout.pause': foldPause,
  'rollout.resume': foldResume,
  'rollout.promote': foldPromote,
  'rollout.abort': foldAbort,
  'rollout.undo': foldUndo,
};

/** The real reducer: folds every rollout op (see the module comment). */
export const rolloutReducer: RolloutReducer = (rollouts, raw, ctx) => {
  const parsed = opSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue?.path.map(String).join('.') ?? '';
    throw invalid(ctx, raw, `${field ? `${field}: ` : ''}${issue?.message ?? 'invalid'}`);
  }
  const op = parsed.data;
  const cur = Object.hasOwn(rollouts, op.rollout) ? rollouts[op.rollout] : undefined;
  let next: RolloutState;
  if (op.op === 'rollout.start') {
    if (cur) throw invalid(ctx, op, 'a rollout with this id already exists');
    next = foldStart(op, ctx);
  } else {
    if (!cur) throw invalid(ctx, op, 'no such rollout (it was never started)');
    const fold = FOLDS[op.op] as Fold<typeof op.op>;
    next = fold(cur, op, ctx, { updatedAt: ctx.time, updatedSeq: ctx.seq });
  }
  return { ...rollouts, [op.rollout]: next };
};

/** The reducer readers use when none is passed: the real one. */
export const defaultRolloutReducer: RolloutReducer = rolloutReducer;
