/**
 * Rollouts in the fleet log (DESIGN: Fleet state and the fleet log, Feedback and rollouts): the
 * rollout ops, the per-rollout state they fold into (`FleetState.rollouts[<id>]`), the pure
 * reducer every reader of the log runs, and the "holds" that stop `site plan` from undoing what a
 * rollout assigned.
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
import { z } from 'zod';
import { VerificationError } from '../cli/errors.js';

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

export const ROLLOUT_OP_NAMES = [
  'rollout.start',
  'rollout.step',
  'rollout.judgement',
  'rollout.pause',
  'rollout.resume',
  'rollout.promote',
  'rollout.abort',
  'rollout.undo',
] as const;
export type RolloutOpName = (typeof ROLLOUT_OP_NAMES)[number];

const DIGEST_RE = /^sha256:[0-9a-f]{64}$/;
const SITE_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
export const ROLLOUT_ID_RE = /^[a-z0-9]([a-z0-9.-]{0,78}[a-z0-9])?$/;

const resolvedRef = z.strictObject({ ref: z.string().min(1), manifestDigest: z.string().regex(DIGEST_RE) });
const siteList = z.array(z.string().regex(SITE_RE));
const slotSchema = z.enum(['model', 'adapters', 'policy']);
/** Any JSON value (rollout ops carry free-form fields such as evidence). */
export const jsonValueSchema: z.ZodType<JsonValue> = z.lazy(() =>
  z.union([
    z.string(),
    z.number(),
    z.boolean(),
    z.null(),
    z.array(jsonValueSchema),
    z.record(z.string(), jsonValueSchema),
  ]),
);
const jsonObject = z.record(z.string(), jsonValueSchema);
const rolloutId = z.string().regex(ROLLOUT_ID_RE, 'a rollout id is lower-case letters, digits, . and -');

const startSchema = z.strictObject({
  op: z.literal('rollout.start'),
  rollout: rolloutId,
  candidate: resolvedRef,
  slot: slotSchema,
  /** `<kind>/<name>` the candidate replaces in the slot (for adapters: the adapter's identity). */
  identity: z.string().min(1),
  selector: z.string(),
  /** Every selected site, in wave order (the first `waves[0]` sites are wave 1...). */
  sites: siteList.min(2),
  /** Cumulative canary size after each step; the last is the number of selected sites. */
  waves: z.array(z.number().int().min(1)).min(1),
  /** Each selected site's ref in the slot before the rollout (null: it had none). */
  previous: z.record(z.string(), resolvedRef.nullable()),
  /** The normalized spec (JSON) and the digest of its canonical JSON. */
  spec: jsonObject,
  specDigest: z.string().regex(DIGEST_RE),
  by: z.string(),
});
const stepSchema = z.strictObject({
  op: z.literal('rollout.step'),
  rollout: rolloutId,
  /** 0 only for the shadow step. */
  step: z.number().int().min(0),
  /** The shadow step: the sites get the candidate in their `shadow` slot, serving nothing new. */
  shadow: z.literal(true).optional(),
  /** Sites that get the candidate with this step (assigned by an `assign` op in the same entry). */
  sites: siteList.min(1),
  reason: z.string(),
});
const judgementSchema = z.strictObject({
  op: z.literal('rollout.judgement'),
  rollout: rolloutId,
  step: z.number().int().min(0),
  /** Judged in the shadow step (acceptance of shadow runs against the same sites' served drafts). */
  shadow: z.literal(true).optional(),
  decision: z.enum(['promote', 'rollback', 'continue', 'pause']),
  reason: z.string(),
  /** The judge's per-metric judgements (metric, verdict, value, boundary, evidence, samples, sites). */
  judgements: z.array(jsonObject),
  /** Canary and baseline sites/windows the judgement was computed from. */
  windows: z.strictObject({ canary: z.number().int().min(0), baseline: z.number().int().min(0) }),
});
const pauseSchema = z.strictObject({
  op: z.literal('rollout.pause'),
  rollout: rolloutId,
  reason: z.enum(['manual', 'inconclusive', 'timeout', 'environment']),
  message: z.string(),
  by: z.string(),
});
const resumeSchema = z.strictObject({
  op: z.literal('rollout.resume'),
  rollout: rolloutId,
  by: z.string(),
});
const promoteSchema = z.strictObject({
  op: z.literal('rollout.promote'),
  rollout: rolloutId,
  /** Sites assigned the candidate by this entry (the rest of the selection). */
  sites: siteList,
  reason: z.string(),
  by: z.string(),
});
const abortSchema = z.strictObject({
  op: z.literal('rollout.abort'),
  rollout: rolloutId,
  /** Canary sites whose previous ref is re-assigned (or the slot removed) in the same entry. */
  sites: siteList,
  reason: z.string(),
  by: z.string(),
});
const undoSchema = z.strictObject({
  op: z.literal('rollout.undo'),
  rollout: rolloutId,
  sites: siteList,
  reason: z.string(),
  by: z.string(),
});

export type RolloutStartOp = z.infer<typeof startSchema>;
export type RolloutStepOp = z.infer<typeof stepSchema>;
export type RolloutJudgementOp = z.infer<typeof judgementSchema>;
export type RolloutPauseOp = z.infer<typeof pauseSchema>;
export type RolloutResumeOp = z.infer<typeof resumeSchema>;
export type RolloutPromoteOp = z.infer<typeof promoteSchema>;
export type RolloutAbortOp = z.infer<typeof abortSchema>;
export type RolloutUndoOp = z.infer<typeof undoSchema>;
export type RolloutOp =
  | RolloutStartOp
  | RolloutStepOp
  | RolloutJudgementOp
  | RolloutPauseOp
  | RolloutResumeOp
  | RolloutPromoteOp
  | RolloutAbortOp
  | RolloutUndoOp;

const opSchema = z.discriminatedUnion('op', [
  startSchema,
  stepSchema,
  judgementSchema,
  pauseSchema,
  resumeSchema,
  promoteSchema,
  abortSchema,
  undoSchema,
]);

export type RolloutStatus = 'running' | 'paused' | 'promoted' | 'aborted' | 'undone';
export type ResolvedRefJson = { ref: string; manifestDigest: string };

/** The folded state of one rollout, stored under `FleetState.rollouts[<id>]` (JSON). */
export interface RolloutState {
  // `undefined` only for the optional fields below (absent, never written as null).
  [key: string]: JsonValue | undefined;
  id: string;
  status: RolloutStatus;
  candidate: ResolvedRefJson;
  slot: 'model' | 'adapters' | 'policy';
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
  const touch = { updatedAt: ctx.time, updatedSeq: ctx.seq };
  let next: RolloutState;
  if (op.op === 'rollout.start') {
    if (cur) throw invalid(ctx, op, 'a rollout with this id already exists');
    const last = op.waves.at(-1);
    if (last !== op.sites.length || op.waves.some((w, i) => i > 0 && w <= (op.waves[i - 1] ?? 0))) {
      throw invalid(ctx, op, 'waves must grow and end at the number of selected sites');
    }
    if (op.sites.some((s) => !Object.hasOwn(op.previous, s))) {
      throw invalid(ctx, op, 'previous must name every selected site');
    }
    next = started(op, ctx);
  } else {
    if (!cur) throw invalid(ctx, op, 'no such rollout (it was never started)');
    const active = isActive(cur);
    switch (op.op) {
      case 'rollout.step': {
        if (!active) throw invalid(ctx, op, `the rollout is ${cur.status}`);
        if (op.shadow) {
          if (op.step !== 0 || cur.step !== 0 || cur.shadowSites !== undefined) {
            throw invalid(ctx, op, 'a shadow step is step 0, right after the start, and only once');
          }
          next = {
            ...cur,
            ...touch,
            phase: 'shadow',
            shadowSites: op.sites,
            stepSeq: ctx.seq,
            stepTime: ctx.time,
            clockFrom: ctx.time,
            last: null,
          };
          break;
        }
        if (op.step !== cur.step + 1 || op.step > cur.waves.length) {
          throw invalid(ctx, op, `step ${op.step} does not follow step ${cur.step}`);
        }
        next = {
          ...cur,
          ...touch,
          ...withCanary(cur, op.sites, ctx.seq),
          step: op.step,
          stepSeq: ctx.seq,
          stepTime: ctx.time,
          clockFrom: ctx.time,
          last: null,
        };
        delete next.phase;
        break;
      }
      case 'rollout.judgement': {
        if (!active) throw invalid(ctx, op, `the rollout is ${cur.status}`);
        const verdicts: Record<string, string> = {};
        for (const j of op.judgements) {
          if (typeof j.metric === 'string')
            verdicts[j.metric] = typeof j.verdict === 'string' ? j.verdict : '?';
        }
        next = {
          ...cur,
          ...touch,
          judgements: cur.judgements + 1,
          last: { step: op.step, decision: op.decision, verdicts },
        };
        break;
      }
      case 'rollout.pause':
        if (cur.status !== 'running') throw invalid(ctx, op, `the rollout is ${cur.status}, not running`);
        next = { ...cur, ...touch, status: 'paused', reason: op.message, pauseReason: op.reason };
        break;
      case 'rollout.resume':
        if (cur.status !== 'paused') throw invalid(ctx, op, `the rollout is ${cur.status}, not paused`);
        next = {
          ...cur,
          ...touch,
          status: 'running',
          reason: null,
          pauseReason: null,
          clockFrom: ctx.time,
          runningSince: ctx.time,
        };
        break;
      case 'rollout.promote':
        if (!active) throw invalid(ctx, op, `the rollout is ${cur.status}`);
        next = {
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
        break;
      case 'rollout.abort':
        if (!active) throw invalid(ctx, op, `the rollout is ${cur.status}`);
        next = { ...cur, ...touch, status: 'aborted', canary: [], endedAt: ctx.time, reason: op.reason };
        break;
      case 'rollout.undo':
        if (cur.status !== 'promoted')
          throw invalid(ctx, op, `only a promoted rollout can be undone (it is ${cur.status})`);
        next = { ...cur, ...touch, status: 'undone', canary: [], endedAt: ctx.time, reason: op.reason };
        break;
    }
  }
  return { ...rollouts, [op.rollout]: next };
};

/** The reducer readers use when none is passed: the real one. */
export const defaultRolloutReducer: RolloutReducer = rolloutReducer;

// ---------------------------------------------------------------------------------------------
// Holds: what `site plan` must not undo.

export interface RolloutHold {
  rollout: string;
  slot: 'model' | 'adapters' | 'policy';
  /** `<kind>/<name>` of the held ref (the slot's identity). */
  identity: string;
  /** The rollout's ref on this site now (candidate, or previous while not yet in the canary). */
  status: RolloutStatus;
  previous: ResolvedRefJson | null;
  candidate: ResolvedRefJson;
}

/**
 * The slot of each site that a rollout controls, by site. While a rollout is running or paused,
 * `site plan` keeps every selected site's slot as the log has it (the controller owns it). After a
 * promotion, plan keeps the candidate only where sites/*.yaml still declares the ref the rollout
 * replaced (git has not caught up yet); any other declared ref wins, so later changes in git are
 * never blocked. Aborted and undone rollouts restored the previous refs and hold nothing.
 */
export function rolloutHolds(
  rollouts: Readonly<Record<string, RolloutState>> | undefined,
): Map<string, RolloutHold[]> {
  const out = new Map<string, RolloutHold[]>();
  if (!rollouts) return out;
  for (const r of Object.values(rollouts)) {
    if (!isActive(r) && r.status !== 'promoted') continue;
    for (const site of r.sites) {
      const hold: RolloutHold = {
        rollout: r.id,
        slot: r.slot,
        identity: r.identity,
        status: r.status,
        previous: r.previous[site] ?? null,
        candidate: r.candidate,
      };
      const list = out.get(site);
      if (list) list.push(hold);
      else out.set(site, [hold]);
    }
  }
  return out;
}

/** A slot `site plan` left as the log has it, and why. */
export interface HeldField {
  site: string;
  /** `model`, `policy` or `adapters[adapter/<name>]`, as plan names fields. */
  field: string;
  rollout: string;
  /** The ref the log keeps (null: the slot stays empty). */
  kept: string | null;
  /** The ref sites/*.yaml declares (null: none). */
  declared: string | null;
}

type Assignments = {
  model?: ResolvedRefJson;
  adapters: ResolvedRefJson[];
  policy?: ResolvedRefJson;
};

function slotRef(a: Assignments, slot: RolloutHold['slot'], identity: string): ResolvedRefJson | undefined {
  if (slot === 'adapters') return a.adapters.find((r) => r.ref.slice(0, r.ref.indexOf('@')) === identity);
  return a[slot];
}

function sameRef(x: ResolvedRefJson | null | undefined, y: ResolvedRefJson | null | undefined): boolean {
  return (
    (x ?? undefined)?.ref === (y ?? undefined)?.ref &&
    (x ?? undefined)?.manifestDigest === (y ?? undefined)?.manifestDigest
  );
}

function withSlot(
  a: Assignments,
  slot: RolloutHold['slot'],
  identity: string,
  r: ResolvedRefJson | undefined,
) {
  const out: Assignments = { adapters: a.adapters };
  if (a.model) out.model = a.model;
  if (a.policy) out.policy = a.policy;
  if (slot === 'adapters') {
    const rest = a.adapters.filter((x) => x.ref.slice(0, x.ref.indexOf('@')) !== identity);
    out.adapters = r ? [...rest, r].sort((x, y) => (x.ref < y.ref ? -1 : x.ref > y.ref ? 1 : 0)) : rest;
  } else if (r) out[slot] = r;
  else delete out[slot];
  return out;
}

/**
 * The assignments `site plan` should aim for on one site, given the rollouts' holds (see
 * `rolloutHolds`): `want` with every held slot replaced by what the log has now, plus the fields held.
 */
export function applyRolloutHolds<A extends Assignments>(
  site: string,
  current: A,
  want: A,
  holds: readonly RolloutHold[] | undefined,
): { want: A; held: HeldField[] } {
  let out: Assignments = want;
  const held: HeldField[] = [];
  for (const h of holds ?? []) {
    const cur = slotRef(current, h.slot, h.identity);
    const wanted = slotRef(out, h.slot, h.identity);
    if (sameRef(cur, wanted)) continue;
    if (h.status === 'promoted' && !sameRef(wanted, h.previous)) continue;
    out = withSlot(out, h.slot, h.identity, cur);
    held.push({
      site,
      field: h.slot === 'adapters' ? `adapters[${h.identity}]` : h.slot,
      rollout: h.rollout,
      kept: cur?.ref ?? null,
      declared: wanted?.ref ?? null,
    });
  }
  return { want: out as A, held };
}
