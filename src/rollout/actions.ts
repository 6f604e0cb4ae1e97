/**
 * What a rollout writes to the fleet log, as pure functions of the fleet state: the ops of each
 * transition (start, step, promote, abort, undo, pause, resume, judgement); the controller's choice
 * among them is `nextTransition` (transition.ts, re-exported here).
 *
 * Every transition that changes assignments carries them as ordinary `assign`/`unassign` ops in
 * the same entry as the rollout op (see fleet/rollout-ops.ts): step and promote assign the
 * candidate to the wave's new sites; abort re-assigns each canary site's previous ref (or removes
 * the slot where it had none); undo does the same for every site of a promoted rollout. Sites
 * deleted from the fleet since the rollout started are skipped.
 *
 * With a shadow step, start assigns the candidate to the shadow sites' `shadow` slot instead
 * (step 0), and whatever ends the shadow step (the first wave, a promote, an abort) unassigns it in
 * the same entry (shadow.ts).
 */
import { ConflictError, UserError } from '../foundation/errors.js';
import type { AssignOp, FleetOp, UnassignOp } from '../fleet/ops.js';
import type { JsonValue, ResolvedRefJson, RolloutOp, RolloutState } from '../fleet/rollout-ops.js';
import { isActive } from '../fleet/rollout-ops.js';
import { refIdentity } from '../fleet/refs.js';
import type { FleetState, SiteAssignments } from '../fleet/state.js';
import type { Judgement } from './judge/types.js';
import { matches, parseSelector } from './selector.js';
import { shadowSize, specFromJson, specJson, waveSizes, type RolloutSpec } from './spec.js';
import { inShadow, shadowCleanupOps } from './shadow.js';
import { createHash } from 'node:crypto';

type Slot = RolloutState['slot'];

export function slotOfKind(kind: string): Slot {
  if (kind === 'model') return 'model';
  if (kind === 'adapter') return 'adapters';
  if (kind === 'policy') return 'policy';
  if (kind === 'index') return 'indexes';
  throw new UserError(`cannot roll out a ${kind}: only model, adapter, policy and index refs`, {
    code: 'E_SPEC',
  });
}

/** The ref a site has in the rollout's slot (for adapters: the adapter with the same identity). */
export function slotRef(a: SiteAssignments, slot: Slot, identity: string): ResolvedRefJson | undefined {
  if (slot === 'adapters' || slot === 'indexes')
    return (a[slot] ?? []).find((r) => refIdentity(r.ref) === identity);
  const r = a[slot];
  return r ? { ref: r.ref, manifestDigest: r.manifestDigest } : undefined;
}

/** Selected sites in wave order: sorted by a hash of (rollout id, site), so waves mix regions. */
export function waveOrder(id: string, sites: readonly string[]): string[] {
  const key = (s: string) => createHash('sha256').update(`${id}\u0000${s}`).digest('hex');
  return [...sites]
    .map((s) => [key(s), s] as const)
    .sort((a, b) => (a[0] < b[0] ? -1 : 1))
    .map(([, s]) => s);
}

function assignOps(sites: string[], slot: AssignOp['slot'], ref: ResolvedRefJson): AssignOp[] {
  return sites.length === 0
    ? []
    : [{ op: 'assign', sites: [...sites].sort(), slot, ref: ref.ref, manifestDigest: ref.manifestDigest }];
}

/** Ops that put each site back on its previous ref (grouped by ref), or remove the slot. */
function revertOps(r: RolloutState, sites: string[]): FleetOp[] {
  const groups = new Map<string, { ref: ResolvedRefJson; sites: string[] }>();
  const none: string[] = [];
  for (const s of sites) {
    const prev = r.previous[s] ?? null;
    if (prev === null) {
      none.push(s);
      continue;
    }
    const k = `${prev.ref}\u0000${prev.manifestDigest}`;
    const g = groups.get(k);
    if (g) g.sites.push(s);
    else groups.set(k, { ref: prev, sites: [s] });
  }
  const ops: FleetOp[] = [];
  for (const g of [...groups.values()].sort((a, b) => (a.ref.ref < b.ref.ref ? -1 : 1))) {
    ops.push(...assignOps(g.sites, r.slot, g.ref));
  }
  if (none.length > 0) {
    const un: UnassignOp = { op: 'unassign', sites: none.sort(), slot: r.slot };
    if (r.slot === 'adapters' || r.slot === 'indexes')
      un.name = r.identity.slice(r.identity.indexOf('/') + 1);
    ops.push(un);
  }
  return ops;
}

/** Sites of the rollout that still exist and have the candidate in the slot now. */
function onCandidate(state: FleetState, r: RolloutState, sites: readonly string[]): string[] {
  return sites.filter((s) => {
    const site = state.sites[s];
    if (!site) return false;
    const cur = slotRef(site.assignments, r.slot, r.identity);
    return cur?.ref === r.candidate.ref && cur.manifestDigest === r.candidate.manifestDigest;
  });
}

export interface StartInput {
  id: string;
  spec: RolloutSpec;
  candidate: ResolvedRefJson;
  by: string;
}

/**
 * The ops of `rollout canary`: `rollout.start` (selection, waves, previous refs, spec) and step 1
 * with its assignment. UserError when the selection is too small or another active rollout
 * controls the same slot of a selected site (ConflictError).
 */
export function startOps(
  state: FleetState,
  input: StartInput,
): { ops: FleetOp[]; sites: string[]; waves: number[] } {
  const { id, spec, candidate } = input;
  if (state.rollouts && Object.hasOwn(state.rollouts, id)) {
    throw new ConflictError(`a rollout named ${id} already exists`, { code: 'E_ROLLOUT_EXISTS' });
  }
  const kind = candidate.ref.slice(0, candidate.ref.indexOf('/'));
  const slot = slotOfKind(kind);
  const identity = refIdentity(candidate.ref);
  const selected = selectSites(state, spec, slot, identity, candidate);
  if (spec.shadow && slot !== 'adapters') {
    throw new UserError(`a shadow step runs adapters only; ${candidate.ref} is a ${kind}`, {
      code: 'E_SPEC',
      suggestion: 'drop the shadow step (and --shadow) for model and policy rollouts',
    });
  }
  const order = waveOrder(id, selected);
  const { sizes, steps } = waveSizes(spec.steps, order.length);
  const previous: Record<string, ResolvedRefJson | null> = {};
  for (const s of order) previous[s] = slotRef(state.sites[s]!.assignments, slot, identity) ?? null;
  const { json, digest } = specJson({ ...spec, steps });
  const start: RolloutOp = {
    op: 'rollout.start',
    rollout: id,
    candidate,
    slot,
    identity,
    selector: spec.sites,
    sites: order,
    waves: sizes,
    previous,
    spec: json,
    specDigest: digest,
    by: input.by,
  };
  return {
    ops: [start, ...firstStepOps(id, spec, slot, candidate, order, sizes)],
    sites: order,
    waves: sizes,
  };
}

/**
 * The sites a new rollout selects (sorted), refused when fewer than two match, when another active
 * rollout already controls the same slot identity on one of them, or when all run the candidate.
 */
function selectSites(
  state: FleetState,
  spec: RolloutSpec,
  slot: Slot,
  identity: string,
  candidate: ResolvedRefJson,
): string[] {
  const reqs = parseSelector(spec.sites);
  const selected = Object.keys(state.sites)
    .filter((name) => matches(reqs, name, state.sites[name]!.declaration.labels))
    .sort();
  if (selected.length < 2) {
    throw new UserError(
      `the selector "${spec.sites || '(all sites)'}" matches ${selected.length} site${selected.length === 1 ? '' : 's'}; a canary needs at least 2 (one canary, one baseline)`,
      { code: 'E_SELECTION', suggestion: 'check the labels in sites/*.yaml and `--sites`' },
    );
  }
  for (const other of Object.values(state.rollouts ?? {})) {
    if (!isActive(other) || other.slot !== slot || other.identity !== identity) continue;
    const overlap = other.sites.filter((s) => selected.includes(s));
    if (overlap.length > 0) {
      throw new ConflictError(
        `rollout ${other.id} (${other.candidate.ref}, ${other.status}) already controls ${identity} on ${overlap.slice(0, 3).join(', ')}${overlap.length > 3 ? '…' : ''}`,
        {
          code: 'E_ROLLOUT_ACTIVE',
          suggestion: `finish it first: edgectl rollout promote ${other.id} --full, or edgectl rollout abort ${other.id}`,
        },
      );
    }
  }
  const already = selected.filter((s) => {
    const cur = slotRef(state.sites[s]!.assignments, slot, identity);
    return cur?.ref === candidate.ref && cur.manifestDigest === candidate.manifestDigest;
  });
  if (already.length === selected.length) {
    throw new UserError(`every selected site already runs ${candidate.ref}: nothing to roll out`, {
      code: 'E_NOTHING_TO_DO',
    });
  }
  return selected;
}

/** The ops after `rollout.start` in the same entry: the shadow step 0, or wave 1, with their assignments. */
function firstStepOps(
  id: string,
  spec: RolloutSpec,
  slot: Slot,
  candidate: ResolvedRefJson,
  order: string[],
  sizes: number[],
): FleetOp[] {
  if (spec.shadow) {
    const shadowSites = order.slice(0, shadowSize(spec.shadow, order.length, sizes[0] ?? 1));
    const shadow: RolloutOp = {
      op: 'rollout.step',
      rollout: id,
      step: 0,
      shadow: true,
      sites: shadowSites,
      reason: `shadow step: ${shadowSites.length} of ${order.length} sites run the candidate in shadow (verified, never served)`,
    };
    return [shadow, ...assignOps(shadowSites, 'shadow', candidate)];
  }
  const first = order.slice(0, sizes[0]);
  const step: RolloutOp = {
    op: 'rollout.step',
    rollout: id,
    step: 1,
    sites: first,
    reason: `wave 1: ${first.length} of ${order.length} sites`,
  };
  return [step, ...assignOps(first, slot, candidate)];
}

/** Advances to the next wave, or promotes when the next wave is the whole selection. */
export function advanceOps(state: FleetState, r: RolloutState, reason: string, by: string): FleetOp[] {
  const nextSize = r.waves[r.step] ?? r.sites.length;
  if (r.step + 1 >= r.waves.length || nextSize >= r.sites.length) return promoteOps(state, r, reason, by);
  const add = r.sites
    .slice(0, nextSize)
    .filter((s) => !r.canary.includes(s) && Object.hasOwn(state.sites, s));
  const step: RolloutOp = {
    op: 'rollout.step',
    rollout: r.id,
    step: r.step + 1,
    sites: add.length > 0 ? add : r.sites.slice(0, nextSize).filter((s) => !r.canary.includes(s)),
    reason: `wave ${r.step + 1}: ${nextSize} of ${r.sites.length} sites (${inShadow(r) ? 'after the shadow step: ' : ''}${reason})`,
  };
  return [step, ...shadowCleanupOps(state, r), ...assignOps(add, r.slot, r.candidate)];
}

/** Assigns the candidate to every remaining selected site and ends the rollout as promoted. */
export function promoteOps(state: FleetState, r: RolloutState, reason: string, by: string): FleetOp[] {
  const rest = r.sites.filter((s) => Object.hasOwn(state.sites, s) && !onCandidate(state, r, [s]).length);
  const op: RolloutOp = { op: 'rollout.promote', rollout: r.id, sites: rest, reason, by };
  return [op, ...shadowCleanupOps(state, r), ...assignOps(rest, r.slot, r.candidate)];
}

/** Puts every canary site back on its previous ref (instant: sites still hold that generation). */
export function abortOps(state: FleetState, r: RolloutState, reason: string, by: string): FleetOp[] {
  const sites = onCandidate(state, r, r.canary);
  const op: RolloutOp = { op: 'rollout.abort', rollout: r.id, sites, reason, by };
  return [op, ...shadowCleanupOps(state, r), ...revertOps(r, sites)];
}

/** After a promotion: every site still on the candidate goes back to its previous ref. */
export function undoOps(state: FleetState, r: RolloutState, reason: string, by: string): FleetOp[] {
  const sites = onCandidate(state, r, r.sites);
  const op: RolloutOp = { op: 'rollout.undo', rollout: r.id, sites, reason, by };
  return [op, ...revertOps(r, sites)];
}

export type PauseKind = 'manual' | 'inconclusive' | 'timeout' | 'environment';

export function pauseOps(r: RolloutState, kind: PauseKind, message: string, by: string): FleetOp[] {
  return [{ op: 'rollout.pause', rollout: r.id, reason: kind, message, by }];
}

export function resumeOps(r: RolloutState, by: string): FleetOp[] {
  return [{ op: 'rollout.resume', rollout: r.id, by }];
}

/** JSON-safe copy of a judgement (non-finite numbers become null: canonical JSON has no Infinity). */
export function judgementJson(j: Judgement): { [key: string]: JsonValue } {
  return JSON.parse(
    JSON.stringify(j, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v)),
  ) as { [key: string]: JsonValue };
}

export type Decision = 'promote' | 'rollback' | 'continue' | 'pause';

export {
  decisionOps,
  judgementChanged,
  nextTransition,
  type Transition,
  type TransitionReason,
} from './transition.js';

export { specFromJson };
