/**
 * The extension point for rollouts in the fleet log (DESIGN: Fleet state and the fleet log, Feedback
 * and rollouts). The rollout ops (`rollout.start`, `.step`, `.judgement`, `.pause`, `.promote`,
 * `.abort`) and the per-rollout state they fold into are designed by the rollout task; until then
 * this module fixes only their envelope: every rollout op names its rollout id and carries JSON
 * fields, and `applyEntry` hands it to a `RolloutReducer`. The default reducer refuses, so an entry
 * this version cannot interpret is never silently skipped (which would fork the state digest).
 *
 * The rollout task replaces `RolloutOpFields`/`RolloutState` with precise types and
 * `defaultRolloutReducer` with the real fold; entry parsing already accepts the op names below.
 */
import { VerificationError } from '../cli/errors.js';

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

export const ROLLOUT_OP_NAMES = [
  'rollout.start',
  'rollout.step',
  'rollout.judgement',
  'rollout.pause',
  'rollout.promote',
  'rollout.abort',
] as const;
export type RolloutOpName = (typeof ROLLOUT_OP_NAMES)[number];

/** A rollout op: its name, the rollout it belongs to, and op-specific JSON fields. */
export interface RolloutOp {
  op: RolloutOpName;
  rollout: string;
  [field: string]: JsonValue | undefined;
}

/** The folded state of one rollout, stored under `FleetState.rollouts[<id>]`. */
export type RolloutState = { [key: string]: JsonValue };

/**
 * Folds one rollout op into the rollouts map. Pure: returns the new map (or the same one) and must
 * not mutate its inputs. It may throw VerificationError for an op that does not fit the state.
 */
export type RolloutReducer = (
  rollouts: Readonly<Record<string, RolloutState>>,
  op: RolloutOp,
  ctx: { seq: number; time: string },
) => Record<string, RolloutState>;

export const defaultRolloutReducer: RolloutReducer = (_rollouts, op, ctx) => {
  throw new VerificationError(
    `fleet entry ${ctx.seq}: op "${op.op}" (rollout ${op.rollout}) is not supported by this version of edgectl`,
    {
      code: 'E_UNSUPPORTED_OP',
      suggestion: 'upgrade edgectl to a version that understands rollout entries',
      details: { seq: ctx.seq, op: op.op },
    },
  );
};
