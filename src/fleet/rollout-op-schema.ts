/**
 * The rollout ops of the fleet log, as zod schemas and types (docs/formats.md "Fleet log"): what each op carries (candidate, previous refs, the spec, judgements with their evidence)
 * and the shape `rolloutReducer` (src/fleet/rollout-ops.ts) validates before folding an op. Kept
 * apart from the reducer so the wire format reads on its own.
 */
import { z } from 'zod';

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
const slotSchema = z.enum(['model', 'adapters', 'policy', 'indexes']);
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

export const opSchema = z.discriminatedUnion('op', [
  startSchema,
  stepSchema,
  judgementSchema,
  pauseSchema,
  resumeSchema,
  promoteSchema,
  abortSchema,
  undoSchema,
]);
