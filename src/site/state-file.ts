/**
 * The site's committed sync state, `state.json` in its data directory, the verified fleet state it
 * names (`fleet-states/<digest>.json`), and the record of the last sync attempt, `last-sync.json`.
 *
 * state.json is the commit point of a sync (docs/formats.md "Fleet log"): the applied
 * seq together with its entry digest and state digest, the head it came from (etag for the
 * conditional GET, expiry for freshness), this site's assignments, the generation installed for
 * them and a rollback pin. The full fleet state at that seq, which the next entries are applied to
 * with the pure `applyEntry`, lives in a file named by its state digest and written before
 * state.json: state.json is small, so the steady-state poll never parses the whole fleet, and a
 * crash between the two writes only leaves an unreferenced file. Every write is atomic, and a
 * loaded fleet state is re-hashed against its digest: a damaged file is reported, never trusted.
 *
 * last-sync.json says what the last attempt did (result, error, drift, request counts). Keeping it
 * apart lets a refused sync leave state.json exactly as it was.
 */
import { mkdir, readFile, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { OperationalError, isEdgectlError } from '../foundation/errors.js';
import { genesis, type AppliedFleet } from '../fleet/entry.js';
import { parseSnapshotPayload } from '../fleet/snapshot.js';
import { stateDigest, type FleetState, type SiteAssignments } from '../fleet/state.js';
import { digestHex, isDigest } from '../foundation/digest.js';
import { writeJsonAtomic } from '../foundation/atomic-file.js';

export const STATE_SCHEMA = 'edgectl.site-state.v1';

/** The verified head a state came from. */
export interface CommittedHead {
  /** ETag of fleet/head.json: what the next conditional GET sends. */
  etag: string;
  seq: number;
  entryDigest: string;
  snapshotSeq: number | null;
  issued: string;
  expires: string;
}

/**
 * Set by `site rollback`: keep `generation` while the fleet still assigns what it assigned when
 * the operator rolled back (`desired`); any other assignment from the fleet clears the pin.
 */
export interface RollbackPin {
  generation: string;
  desired: string;
  since: string;
}

export interface SiteSyncState {
  schema: typeof STATE_SCHEMA;
  site: string;
  registry: string;
  appliedSeq: number;
  entryDigest: string | null;
  stateDigest: string;
  head: CommittedHead | null;
  /** This site's assignments in the fleet state; null when the fleet does not declare the site. */
  assignments: SiteAssignments | null;
  /** Generation installed for the committed state (what `current` points to after the sync). */
  generation: string | null;
  pin: RollbackPin | null;
  /** Time of the last sync that committed a change. */
  lastSuccess: string | null;
}

const digest = z.string().refine(isDigest, 'must be sha256:<64 hex>');
const resolved = z.object({ ref: z.string(), manifestDigest: digest }).strict();
const stateSchema = z
  .object({
    schema: z.literal(STATE_SCHEMA),
    site: z.string(),
    registry: z.string(),
    appliedSeq: z.number().int().min(0),
    entryDigest: digest.nullable(),
    stateDigest: digest,
    head: z
      .object({
        etag: z.string(),
        seq: z.number().int().min(1),
        entryDigest: digest,
        snapshotSeq: z.number().int().nullable(),
        issued: z.string(),
        expires: z.string(),
      })
      .strict()
      .nullable(),
    assignments: z
      .object({
        model: resolved.optional(),
        adapters: z.array(resolved),
        policy: resolved.optional(),
        shadow: z.array(resolved).optional(),
        indexes: z.array(resolved).optional(),
      })
      .strict()
      .nullable(),
    generation: z.string().nullable(),
    pin: z.object({ generation: z.string(), desired: z.string(), since: z.string() }).strict().nullable(),
    lastSuccess: z.string().nullable(),
  })
  .strict();

export function initialState(site: string, registry: string): SiteSyncState {
  const g = genesis();
  return {
    schema: STATE_SCHEMA,
    site,
    registry,
    appliedSeq: 0,
    entryDigest: null,
    stateDigest: stateDigest(g.state),
    head: null,
    assignments: null,
    generation: null,
    pin: null,
    lastSuccess: null,
  };
}

function corrupt(path: string, why: string): OperationalError {
  return new OperationalError(`${path} is damaged: ${why}`, {
    code: 'E_SITE_STATE',
    suggestion:
      'restore it from a backup, or move it away to make the next sync start again from the registry ' +
      '(the site keeps serving its current generation meanwhile)',
    details: { path },
  });
}

/** The committed state, or undefined before the first successful sync. */
export async function readSiteState(path: string): Promise<SiteSyncState | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw corrupt(path, `not JSON (${(err as Error).message})`);
  }
  const parsed = stateSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw corrupt(path, `${issue?.path.map(String).join('.') || '(root)'}: ${issue?.message ?? 'invalid'}`);
  }
  const s = parsed.data;
  if (s.appliedSeq > 0 && s.entryDigest === null) throw corrupt(path, 'entryDigest is null after seq 0');
  return s as SiteSyncState;
}

function fleetFile(dir: string, digest: string): string {
  return join(dir, `${digestHex(digest)}.json`);
}

/** The verified fleet state a committed state names (the genesis at seq 0). */
export async function readFleetState(dir: string, state: SiteSyncState): Promise<FleetState> {
  if (state.appliedSeq === 0 || state.entryDigest === null) return genesis().state;
  const path = fleetFile(dir, state.stateDigest);
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(path, 'utf8'));
  } catch (err) {
    throw corrupt(
      path,
      (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing' : `not JSON (${(err as Error).message})`,
    );
  }
  try {
    return parseSnapshotPayload(
      { seq: state.appliedSeq, state: raw, stateDigest: state.stateDigest, entryDigest: state.entryDigest },
      path,
    ).state;
  } catch (err) {
    throw corrupt(path, isEdgectlError(err) ? err.message : String(err));
  }
}

/** Writes the fleet state under its digest (before the state.json naming it). */
export async function writeFleetState(dir: string, fleet: FleetState, digest: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeJsonAtomic(fleetFile(dir, digest), fleet);
}

/** Removes fleet state files other than the one state.json names. */
export async function pruneFleetStates(dir: string, keep: string): Promise<void> {
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (name !== `${digestHex(keep)}.json`) await rm(join(dir, name), { force: true });
  }
}

export async function writeSiteState(path: string, state: SiteSyncState): Promise<void> {
  await writeJsonAtomic(path, state);
}

/** The fleet position a state describes, for applyEntry. */
export function appliedOf(state: SiteSyncState, fleet: FleetState): AppliedFleet {
  return { seq: state.appliedSeq, entryDigest: state.entryDigest, state: fleet };
}

// ---- last-sync.json ----

export interface DriftReport {
  /** Files checked in the current generation. */
  checked: number;
  /** Files whose content differs from the signed manifest. */
  changed: string[];
  missing: string[];
  /** Files that no manifest lists (removed). */
  extra: string[];
  repaired: string[];
  /** Drifted files that could not be repaired (offline and not in the chunk cache). */
  unrepaired: string[];
}

export type SyncOutcome = 'installed' | 'unchanged' | 'offline' | 'refused' | 'error';

export interface LastSync {
  time: string;
  durationMs: number;
  result: SyncOutcome;
  seq: number;
  generation: string | null;
  changed: boolean;
  bytesFetched: number;
  requests: number;
  frozen?: boolean;
  error?: { code: string; message: string };
  drift: DriftReport | null;
}

export async function readLastSync(path: string): Promise<LastSync | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as LastSync;
  } catch {
    // A missing or damaged record only loses history; state.json is the authority.
    return undefined;
  }
}

export async function writeLastSync(path: string, record: LastSync): Promise<void> {
  await writeJsonAtomic(path, record);
}
