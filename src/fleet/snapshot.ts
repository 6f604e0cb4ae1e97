/**
 * Snapshots (docs/formats.md "Fleet log"): the full state at a seq, signed with the fleet
 * role and written every N entries (`fleet/snapshots/<seq>.json`), so a new or far-behind reader
 * starts there instead of replaying the whole log. A snapshot carries the entry digest of its seq,
 * which chains it to the next entry's `prev`; its `stateDigest` is recomputed on read.
 */
import { z } from 'zod';
import { VerificationError } from '../foundation/errors.js';
import { isDigest } from '../foundation/digest.js';
import type { AppliedFleet } from './entry.js';
import type { JsonValue, RolloutState } from './rollout-ops.js';
import { siteDeclarationShape } from './site-schema.js';
import { canonicalStateBytes, freezeSite, stateDigest, type FleetState, type SiteState } from './state.js';

/** How often `site apply` writes a snapshot, in entries. */
export const DEFAULT_SNAPSHOT_EVERY = 50;

export interface FleetSnapshot {
  seq: number;
  state: FleetState;
  stateDigest: string;
  entryDigest: string;
}

const digest = z.string().refine(isDigest, 'must be sha256:<64 hex>');
const resolved = z.object({ ref: z.string(), manifestDigest: digest }).strict();
const siteState = z
  .object({
    declaration: siteDeclarationShape,
    assignments: z
      .object({
        model: resolved.optional(),
        adapters: z.array(resolved),
        policy: resolved.optional(),
        shadow: z.array(resolved).optional(),
        indexes: z.array(resolved).optional(),
      })
      .strict(),
  })
  .strict();
const jsonObject = z.record(
  z.string(),
  z.custom<JsonValue>(() => true),
);
const snapshotSchema = z
  .object({
    seq: z.number().int().min(1),
    state: z
      .object({
        sites: z.record(z.string(), siteState),
        rollouts: z.record(z.string(), jsonObject).optional(),
      })
      .strict(),
    stateDigest: digest,
    entryDigest: digest,
  })
  .strict();

/**
 * The canonical JSON bytes of a snapshot (its DSSE payload), assembled from the state's cached
 * canonical pieces instead of re-serializing a whole fleet; equal to canonicalJson(snapshot).
 */
export function snapshotPayloadBytes(snap: FleetSnapshot): Buffer {
  return Buffer.concat([
    Buffer.from(
      `{"entryDigest":${JSON.stringify(snap.entryDigest)},"seq":${JSON.stringify(snap.seq)},"state":`,
    ),
    canonicalStateBytes(snap.state),
    Buffer.from(`,"stateDigest":${JSON.stringify(snap.stateDigest)}}`),
  ]);
}

export function buildSnapshot(applied: AppliedFleet): FleetSnapshot {
  if (applied.seq < 1 || applied.entryDigest === null) throw new TypeError('no snapshot of the genesis');
  return {
    seq: applied.seq,
    state: applied.state,
    stateDigest: stateDigest(applied.state),
    entryDigest: applied.entryDigest,
  };
}

function invalid(what: string, message: string, code = 'E_SNAPSHOT_INVALID'): VerificationError {
  return new VerificationError(`${what}: ${message}`, { code });
}

/**
 * Validates a signature-checked snapshot payload and returns the fleet it describes. Refuses a
 * snapshot whose state does not hash to its `stateDigest`, or whose site keys and names disagree.
 */
export function parseSnapshotPayload(raw: unknown, what: string): AppliedFleet {
  const parsed = snapshotSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw invalid(what, `invalid snapshot: ${issue?.path.map(String).join('.')}: ${issue?.message}`);
  }
  const snap = parsed.data;
  const sites: Record<string, SiteState> = {};
  for (const [name, site] of Object.entries(snap.state.sites)) {
    if (site.declaration.name !== name)
      throw invalid(what, `state.sites.${name}: declaration is for ${site.declaration.name}`);
    sites[name] = freezeSite(site as SiteState);
  }
  const state: FleetState =
    snap.state.rollouts === undefined
      ? { sites }
      : { sites, rollouts: snap.state.rollouts as Record<string, RolloutState> };
  const actual = stateDigest(state);
  if (actual !== snap.stateDigest) {
    throw invalid(
      what,
      `snapshot state does not match its stateDigest (says ${snap.stateDigest}, state hashes to ${actual})`,
      'E_STATE_DIGEST',
    );
  }
  return { seq: snap.seq, entryDigest: snap.entryDigest, state };
}
