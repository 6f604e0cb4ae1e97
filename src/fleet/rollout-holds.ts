/**
 * Rollout holds: what `site plan` must not undo (docs/rollouts.md, docs/formats.md "Feedback reports"). While a rollout is
 * active the controller owns the slots of its selected sites; after a promotion the candidate is
 * kept until git catches up. `rolloutHolds` derives the holds from the folded rollouts of the fleet
 * state (src/fleet/rollout-ops.ts) and `applyRolloutHolds` applies them to declared assignments.
 */
import { isActive, type ResolvedRefJson, type RolloutState, type RolloutStatus } from './rollout-ops.js';

export interface RolloutHold {
  rollout: string;
  slot: 'model' | 'adapters' | 'policy' | 'indexes';
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
  indexes?: ResolvedRefJson[];
};

const identityOf = (r: ResolvedRefJson) => r.ref.slice(0, r.ref.indexOf('@'));

function slotRef(a: Assignments, slot: RolloutHold['slot'], identity: string): ResolvedRefJson | undefined {
  if (slot === 'adapters' || slot === 'indexes')
    return (a[slot] ?? []).find((r) => identityOf(r) === identity);
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
  if (a.indexes) out.indexes = a.indexes;
  if (slot === 'adapters' || slot === 'indexes') {
    const rest = (a[slot] ?? []).filter((x) => identityOf(x) !== identity);
    const list = r ? [...rest, r].sort((x, y) => (x.ref < y.ref ? -1 : x.ref > y.ref ? 1 : 0)) : rest;
    if (slot === 'adapters') out.adapters = list;
    else if (list.length > 0) out.indexes = list;
    else delete out.indexes;
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
      field: h.slot === 'adapters' || h.slot === 'indexes' ? `${h.slot}[${h.identity}]` : h.slot,
      rollout: h.rollout,
      kept: cur?.ref ?? null,
      declared: wanted?.ref ?? null,
    });
  }
  return { want: out as A, held };
}
