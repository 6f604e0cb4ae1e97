/**
 * Reading the fleet from a registry: the head, the latest snapshot it names, and the entries after
 * that snapshot, each verified under the trust root's fleet role and applied with `applyEntries`.
 * The result is the fleet state at the head's seq, or the genesis when no head exists yet.
 *
 * Every object is checked against its key (an entry stored under seq N must say seq N, so an old
 * entry copied forward cannot pass as a no-op), the snapshot against its digest, and the final
 * entry digest against the head's. Any failure is a VerificationError (exit 4).
 *
 * Key rotation (registry/trust-history.ts): the head must be signed by the current fleet role (a
 * writer re-signing it may accept an earlier, unrevoked fleet key: `writer`). Entries and snapshots
 * between the snapshot and the head may carry an earlier, unrevoked fleet key's signatures,
 * because the hash chain ending in the head's entry digest covers them (a snapshot signed that way
 * is also bound to the entry at its seq); everything is refused if that chain does not close.
 */
import { VerificationError } from '../foundation/errors.js';
import { PayloadType } from '../registry/envelope.js';
import { HEAD_KEY, fleetLogKey, snapshotKey } from '../registry/layout.js';
import type { Store } from '../registry/store.js';
import type { TrustRoot } from '../registry/trust.js';
import {
  applyEntries,
  entryDigest,
  genesis,
  parseEntryPayload,
  type AppliedFleet,
  type FleetEntry,
} from './entry.js';
import { parseHeadPayload, type FleetHead } from './head.js';
import type { RolloutReducer } from './rollout-ops.js';
import { fleetKeys, verifyFleetObject, type FleetKeys, type SignerRule } from './signed.js';
import { parseSnapshotPayload } from './snapshot.js';
import { stateDigest, type FleetState } from './state.js';

export interface ReadFleetOptions {
  /** The time expiry is checked against (fixed once per read, as TUF's client workflow does). */
  now: Date;
  /** Accept an expired head (the writer re-signing it, or a log view); never for installing. */
  allowExpired?: boolean;
  rolloutReducer?: RolloutReducer;
  /** Parallel entry downloads (default 8). */
  concurrency?: number;
  /**
   * A writer that re-signs the head: accept a head signed by an earlier root version's fleet key
   * (never a revoked one); `headPastVersion` then says so and the writer must re-sign it.
   */
  writer?: boolean;
}

export interface FleetRead {
  state: FleetState;
  seq: number;
  entryDigest: string | null;
  applied: AppliedFleet;
  head: FleetHead | undefined;
  /** ETag of fleet/head.json as read: the compare-and-swap token for moving it. */
  headEtag: string | undefined;
  /** Set when the head was signed by an earlier root version's fleet key (`writer` reads only). */
  headPastVersion?: number;
}

export interface VerifiedEntry {
  entry: FleetEntry;
  keyids: string[];
  /** Set when only an earlier root version's fleet role signed it (rule.allowPast). */
  pastVersion?: number;
}

function missing(key: string, why: string): VerificationError {
  return new VerificationError(`${key} is missing from the registry (${why})`, {
    code: 'E_FLEET_MISSING',
    suggestion: 'the registry is incomplete; restore it from a backup or check the registry URL',
    details: { key },
  });
}

function asKeys(trust: TrustRoot | FleetKeys): FleetKeys {
  return 'role' in trust ? trust : fleetKeys(trust);
}

/** The verified head and its etag, or undefined when the fleet has no head yet. */
export async function readHead(
  store: Store,
  trust: TrustRoot | FleetKeys,
  now: Date,
  allowExpired = false,
  rule: SignerRule = {},
): Promise<{ head: FleetHead; etag: string; pastVersion?: number } | undefined> {
  const obj = await store.get(HEAD_KEY);
  if (!obj) return undefined;
  const v = verifyFleetObject(obj.body, PayloadType.head, asKeys(trust), HEAD_KEY, rule);
  return {
    head: parseHeadPayload(v.raw, HEAD_KEY, now, allowExpired),
    etag: obj.etag,
    ...(v.pastVersion !== undefined ? { pastVersion: v.pastVersion } : {}),
  };
}

/**
 * One verified entry, or undefined when `fleet/log/<seq>` does not exist. `rule.allowPast` only for
 * an entry the caller then checks against the hash chain from a current head (see the module comment).
 */
export async function readEntry(
  store: Store,
  trust: TrustRoot | FleetKeys,
  seq: number,
  rule: SignerRule = {},
): Promise<VerifiedEntry | undefined> {
  const key = fleetLogKey(seq);
  const obj = await store.get(key);
  if (!obj) return undefined;
  const v = verifyFleetObject(obj.body, PayloadType.entry, asKeys(trust), key, rule);
  const entry = parseEntryPayload(v.raw, v.payload, key);
  if (entry.seq !== seq) {
    throw new VerificationError(`${key}: holds entry seq ${entry.seq}, not ${seq}`, {
      code: 'E_ENTRY_INVALID',
    });
  }
  return { entry, keyids: v.keyids, ...(v.pastVersion !== undefined ? { pastVersion: v.pastVersion } : {}) };
}

/**
 * The verified snapshot at `seq` as an applied fleet. One signed by an earlier root version's fleet
 * key is accepted only if it is the state of the entry at its seq (entry digest and state digest),
 * so that the caller's hash-chain check up to the head covers it.
 */
export async function readSnapshot(
  store: Store,
  trust: TrustRoot | FleetKeys,
  seq: number,
  rule: SignerRule = { allowPast: true },
): Promise<AppliedFleet> {
  const key = snapshotKey(seq);
  const obj = await store.get(key);
  if (!obj) throw missing(key, `the head names snapshot ${seq}`);
  const v = verifyFleetObject(obj.body, PayloadType.snapshot, asKeys(trust), key, rule);
  const applied = parseSnapshotPayload(v.raw, key);
  if (applied.seq !== seq) {
    throw new VerificationError(`${key}: holds the snapshot of seq ${applied.seq}, not ${seq}`, {
      code: 'E_SNAPSHOT_INVALID',
    });
  }
  if (v.pastVersion !== undefined) await bindSnapshotToLog(store, trust, applied, key, rule);
  return applied;
}

async function bindSnapshotToLog(
  store: Store,
  trust: TrustRoot | FleetKeys,
  snap: AppliedFleet,
  key: string,
  rule: SignerRule,
): Promise<void> {
  const entry = await readEntry(store, trust, snap.seq, rule);
  if (!entry) throw missing(fleetLogKey(snap.seq), `${key} was signed before a key rotation`);
  if (entryDigest(entry.entry) !== snap.entryDigest || entry.entry.stateDigest !== stateDigest(snap.state)) {
    throw new VerificationError(
      `${key}: signed by an earlier fleet key, and not the state of ${fleetLogKey(snap.seq)}`,
      { code: 'E_SNAPSHOT_INVALID', details: { seq: snap.seq } },
    );
  }
}

/** Entries `from..to` (inclusive), verified, in order; fetched `concurrency` at a time. */
export async function readEntries(
  store: Store,
  trust: TrustRoot | FleetKeys,
  from: number,
  to: number,
  concurrency = 8,
  rule: SignerRule = {},
): Promise<VerifiedEntry[]> {
  const keys = asKeys(trust);
  const out: VerifiedEntry[] = [];
  for (let start = from; start <= to; start += concurrency) {
    const batch: Promise<VerifiedEntry>[] = [];
    for (let seq = start; seq <= Math.min(to, start + concurrency - 1); seq++) {
      batch.push(
        readEntry(store, keys, seq, rule).then((v) => {
          if (!v) throw missing(fleetLogKey(seq), `the head is at seq ${to}`);
          return v;
        }),
      );
    }
    out.push(...(await Promise.all(batch)));
  }
  return out;
}

/**
 * The fleet as of the registry's head: latest snapshot plus the entries after it, all verified.
 * No head yet = the genesis (seq 0, empty state).
 */
export async function readFleet(
  store: Store,
  trust: TrustRoot | FleetKeys,
  opts: ReadFleetOptions,
): Promise<FleetRead> {
  const keys = asKeys(trust);
  const read = await readHead(store, keys, opts.now, opts.allowExpired ?? false, {
    allowPast: opts.writer ?? false,
  });
  if (!read) {
    const g = genesis();
    return { state: g.state, seq: 0, entryDigest: null, applied: g, head: undefined, headEtag: undefined };
  }
  const { head, etag } = read;
  let applied = head.snapshotSeq === null ? genesis() : await readSnapshot(store, keys, head.snapshotSeq);
  // Covered by the head's entry digest, checked below: earlier fleet keys may have signed them.
  const entries = await readEntries(store, keys, applied.seq + 1, head.seq, opts.concurrency ?? 8, {
    allowPast: true,
  });
  const applyOpts = opts.rolloutReducer ? { rolloutReducer: opts.rolloutReducer } : {};
  applied = applyEntries(
    applied,
    entries.map((e) => e.entry),
    applyOpts,
  );
  if (applied.seq !== head.seq || applied.entryDigest !== head.entryDigest) {
    throw new VerificationError(
      `${HEAD_KEY}: names entry ${head.seq} as ${head.entryDigest}, but the log has ${applied.entryDigest ?? 'none'} at seq ${applied.seq}`,
      { code: 'E_HEAD_MISMATCH', details: { seq: head.seq } },
    );
  }
  return {
    state: applied.state,
    seq: applied.seq,
    entryDigest: applied.entryDigest,
    applied,
    head,
    headEtag: etag,
    ...(read.pastVersion !== undefined ? { headPastVersion: read.pastVersion } : {}),
  };
}
