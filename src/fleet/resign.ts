/**
 * `edgectl fleet resign`: after a fleet-key rotation or revocation, make the fleet readable with the
 * current fleet key (docs/operations.md "Key rotation").
 *
 * The head is always re-signed (new `issued`/`expires`) by the current key: readers require that.
 * Entries and snapshots signed by an earlier root version's fleet key stay as they are (readers
 * accept them through the hash chain, registry/trust-history.ts). Those whose only signatures are by
 * a REVOKED key are re-signed in place, same payload (so every entry digest and the chain stay the
 * same), but only with `acceptRevoked`: the operator vouches for what the compromised key signed.
 * Before anything is written, the whole log is checked to chain from seq 1 to the head's entry
 * digest, and each re-signed snapshot to be the state of its entry. Objects are re-signed before
 * the head, so a reader never sees the new head over objects it would refuse.
 */
import { VerificationError } from '../foundation/errors.js';
import {
  PayloadType,
  decodeEnvelope,
  encodeEnvelope,
  envelopePayloadBytes,
  signPayloadBytes,
  type Envelope,
} from '../registry/envelope.js';
import type { KeyPair } from '../registry/keys.js';
import { HEAD_KEY, fleetLogKey, snapshotKey } from '../registry/layout.js';
import type { Store } from '../registry/store.js';
import type { TrustRoot } from '../registry/trust.js';
import { checkInForce, verifyInForce, type RoleInForce } from '../registry/trust-history.js';
import { entryDigest, parseEntryPayload, type FleetEntry } from './entry.js';
import { DEFAULT_HEAD_TTL_MS, buildHead, type FleetHead } from './head.js';
import { readHead } from './read.js';
import { FLEET_RESIGN_FIX, checkFleetSigners, fleetKeys, signFleetObject } from './signed.js';
import { parseSnapshotPayload } from './snapshot.js';
import { stateDigest } from './state.js';

export interface ResignFleetOptions {
  store: Store;
  trust: TrustRoot;
  signers: KeyPair[];
  clock: () => Date;
  headTtlMs?: number;
  /** Re-sign objects signed only by a revoked key (the operator has checked them). */
  acceptRevoked?: boolean;
}

export interface ResignFleetResult {
  /** Head seq (0: the fleet has no head; nothing to do). */
  seq: number;
  headResigned: boolean;
  /** Seqs of entries and snapshots re-signed in place (signed by a revoked key). */
  entries: number[];
  snapshots: number[];
  /** Entries still signed by an earlier, unrevoked fleet key (valid through the chain; left as is). */
  earlierKeyEntries: number;
}

interface Stored {
  key: string;
  seq: number;
  env: Envelope;
  etag: string;
  /** True when only revoked keys' signatures verify it. */
  revoked: boolean;
}

async function readSigned(
  store: Store,
  key: string,
  seq: number,
  type: string,
  role: RoleInForce,
  acceptRevoked: boolean,
): Promise<Stored & { raw: unknown; past: boolean }> {
  const obj = await store.get(key);
  if (!obj) {
    throw new VerificationError(`${key} is missing: the fleet log cannot be re-signed`, {
      code: 'E_FLEET_MISSING',
      suggestion: 'the registry is incomplete; restore it from a backup',
      details: { key },
    });
  }
  const env = decodeEnvelope(obj.body, key);
  const fix = `${FLEET_RESIGN_FIX}`;
  const ok = checkInForce(env, role, { allowPast: true });
  const v = verifyInForce<unknown>(env, type, role, key, {
    allowPast: true,
    allowRevoked: acceptRevoked,
    fix,
  });
  return {
    key,
    seq,
    env,
    etag: obj.etag,
    raw: v.payload,
    revoked: ok === undefined,
    past: v.pastVersion !== undefined,
  };
}

/** Reads and chains entries 1..head.seq (concurrently, 8 at a time). */
async function readLog(
  o: ResignFleetOptions,
  role: RoleInForce,
  head: FleetHead,
): Promise<{ stored: (Stored & { past: boolean })[]; entries: FleetEntry[] }> {
  const stored: (Stored & { past: boolean })[] = [];
  const entries: FleetEntry[] = [];
  for (let start = 1; start <= head.seq; start += 8) {
    const batch = [];
    for (let seq = start; seq <= Math.min(head.seq, start + 7); seq++) {
      batch.push(
        readSigned(o.store, fleetLogKey(seq), seq, PayloadType.entry, role, o.acceptRevoked ?? false),
      );
    }
    for (const s of await Promise.all(batch)) {
      const entry = parseEntryPayload(s.raw, envelopePayloadBytes(s.env), s.key);
      const prev = entries.at(-1);
      if (entry.seq !== s.seq || entry.prev !== (prev ? entryDigest(prev) : null)) {
        throw new VerificationError(`${s.key}: does not chain to entry ${s.seq - 1}: refusing to re-sign`, {
          code: 'E_CHAIN',
          details: { seq: s.seq },
        });
      }
      entries.push(entry);
      stored.push(s);
    }
  }
  const last = entries.at(-1);
  if (!last || entryDigest(last) !== head.entryDigest) {
    throw new VerificationError(`${HEAD_KEY} does not name the last entry of the log: refusing to re-sign`, {
      code: 'E_HEAD_MISMATCH',
      details: { seq: head.seq },
    });
  }
  return { stored, entries };
}

/** Snapshots at or below the head signed only by a revoked key, each bound to its entry. */
async function revokedSnapshots(
  o: ResignFleetOptions,
  role: RoleInForce,
  head: FleetHead,
  entries: FleetEntry[],
): Promise<Stored[]> {
  const out: Stored[] = [];
  for (const { key } of await o.store.list('fleet/snapshots/')) {
    const seq = Number(/(\d+)\.json$/.exec(key)?.[1] ?? NaN);
    if (!Number.isInteger(seq) || seq < 1 || seq > head.seq || key !== snapshotKey(seq)) continue;
    const s = await readSigned(o.store, key, seq, PayloadType.snapshot, role, o.acceptRevoked ?? false);
    if (!s.revoked) continue;
    const snap = parseSnapshotPayload(s.raw, key);
    const entry = entries[seq - 1];
    if (!entry || entryDigest(entry) !== snap.entryDigest || entry.stateDigest !== stateDigest(snap.state)) {
      throw new VerificationError(`${key} is not the state of ${fleetLogKey(seq)}: refusing to re-sign it`, {
        code: 'E_SNAPSHOT_INVALID',
        suggestion: `remove ${key} (readers then replay the log) and run ${FLEET_RESIGN_FIX} again`,
        details: { seq },
      });
    }
    out.push(s);
  }
  return out;
}

async function resignInPlace(store: Store, s: Stored, signers: KeyPair[]): Promise<void> {
  const body = encodeEnvelope(signPayloadBytes(s.env.payloadType, envelopePayloadBytes(s.env), signers));
  await store.compareAndSwap(s.key, body, s.etag);
}

export async function resignFleet(o: ResignFleetOptions): Promise<ResignFleetResult> {
  const keys = fleetKeys(o.trust);
  const role = keys.inForce;
  if (!role) throw new TypeError('fleetKeys returns the role in force');
  checkFleetSigners(o.signers, keys);
  const now = o.clock();
  const read = await readHead(o.store, keys, now, true, {
    allowPast: true,
    allowRevoked: o.acceptRevoked ?? false,
  });
  if (!read) return { seq: 0, headResigned: false, entries: [], snapshots: [], earlierKeyEntries: 0 };
  const { stored, entries } = await readLog(o, role, read.head);
  const entriesToSign = stored.filter((s) => s.revoked);
  const snapshotsToSign = await revokedSnapshots(o, role, read.head, entries);
  for (const s of [...entriesToSign, ...snapshotsToSign]) await resignInPlace(o.store, s, o.signers);
  const head = buildHead({
    seq: read.head.seq,
    entryDigest: read.head.entryDigest,
    snapshotSeq: read.head.snapshotSeq,
    now,
    ttlMs: o.headTtlMs ?? DEFAULT_HEAD_TTL_MS,
  });
  await o.store.compareAndSwap(HEAD_KEY, signFleetObject(PayloadType.head, head, o.signers), read.etag);
  return {
    seq: read.head.seq,
    headResigned: true,
    entries: entriesToSign.map((s) => s.seq),
    snapshots: snapshotsToSign.map((s) => s.seq),
    earlierKeyEntries: stored.filter((s) => s.past && !s.revoked).length,
  };
}
