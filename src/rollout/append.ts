/**
 * Appending rollout entries to the fleet log with the registry's commit protocol (the same one
 * `site apply` follows, fleet/apply.ts): read and verify the head with its etag, roll forward over
 * entries written past it, let the caller build its ops from that exact state, write entry seq+1
 * create-only, write a snapshot every N entries, then compare-and-swap the head.
 *
 * This is what makes two controllers safe: both may judge, but an entry seq can be created once,
 * so when two build an entry on the same state only one lands. The loser re-reads, and its `build`
 * sees the winner's entry in the state (the rollout moved on) and returns null or other ops. No
 * lease is needed; `build` must check that the state still is the one it decided on.
 */
import { ConflictError } from '../foundation/errors.js';
import type { Io } from '../foundation/output.js';
import { applyEntry, buildEntry, type AppliedFleet } from '../fleet/entry.js';
import { DEFAULT_HEAD_TTL_MS, buildHead, headNeedsRefresh } from '../fleet/head.js';
import type { FleetOp } from '../fleet/ops.js';
import type { FleetWriteGuard } from '../fleet/write-guard.js';
import { readEntry, readFleet, readHead } from '../fleet/read.js';
import { checkFleetSigners, fleetKeys, signFleetBytes, signFleetObject } from '../fleet/signed.js';
import { DEFAULT_SNAPSHOT_EVERY, buildSnapshot, snapshotPayloadBytes } from '../fleet/snapshot.js';
import { PayloadType } from '../registry/envelope.js';
import type { KeyPair } from '../registry/keys.js';
import { HEAD_KEY, fleetLogKey, snapshotKey } from '../registry/layout.js';
import type { Store } from '../registry/store.js';
import type { TrustRoot } from '../registry/trust.js';

export interface FleetWriter {
  store: Store;
  trust: TrustRoot;
  signers: KeyPair[];
  clock: () => Date;
  io?: Io;
  snapshotEvery?: number;
  headTtlMs?: number;
  /**
   * On a store without conditional writes: refuse, or hold the single-writer lease while writing
   * (fleet/write-guard.ts). Absent: write directly (tests, and callers that guard themselves).
   */
  guard?: FleetWriteGuard;
}

export interface AppendResult<T> {
  /** The fleet after the append (or as read, when nothing was written). */
  fleet: AppliedFleet;
  /** Seq of the entry written, or null. */
  seq: number | null;
  /** What `build` returned alongside its ops. */
  value: T | undefined;
  /** How many times another writer won the seq first. */
  conflicts: number;
  /**
   * Another writer had already written byte-identical ops at this seq (two controllers making the
   * same decision in the same millisecond): the entry is in the log once, and `seq` is null.
   */
  duplicate: boolean;
}

/** Reads the fleet at the head plus any entries written past it (a writer that crashed or is racing). */
export async function readLatest(
  store: Store,
  trust: TrustRoot,
  now: Date,
): Promise<{ applied: AppliedFleet; headSeq: number; headEtag: string | undefined; headFresh: boolean }> {
  const keys = fleetKeys(trust);
  // A writer: a head signed by a rotated-out (unrevoked) fleet key is read, and re-signed by moveHead.
  const read = await readFleet(store, keys, { now, allowExpired: true, writer: true });
  let applied = read.applied;
  for (
    let next = await readEntry(store, keys, applied.seq + 1);
    next;
    next = await readEntry(store, keys, applied.seq + 1)
  ) {
    applied = applyEntry(applied, next.entry);
  }
  return {
    applied,
    headSeq: read.seq,
    headEtag: read.headEtag,
    headFresh: read.head !== undefined && !headNeedsRefresh(read.head, now),
  };
}

type Build<T> = (fleet: AppliedFleet) => { ops: FleetOp[]; value?: T } | null;

/**
 * Appends the ops `build` returns for the latest fleet (null or [] = nothing to write). Retries on
 * a lost race up to `retries` times, calling `build` again on the new state each time. Under a
 * guard that needs the lease, the state is first looked at without it (most controller passes
 * write nothing, and the lease costs a settle delay); a write re-reads and re-builds holding it.
 */
export async function appendEntry<T = undefined>(
  w: FleetWriter,
  build: Build<T>,
  retries = 8,
): Promise<AppendResult<T>> {
  if (!w.guard || (await w.guard.check()) === 'free') return appendUnguarded(w, build, retries);
  const latest = await readLatest(w.store, w.trust, w.clock());
  const built = build(latest.applied);
  if ((!built || built.ops.length === 0) && latest.applied.seq === latest.headSeq) {
    return { fleet: latest.applied, seq: null, value: built?.value, conflicts: 0, duplicate: false };
  }
  return w.guard.run(() => appendUnguarded(w, build, retries));
}

async function appendUnguarded<T>(
  w: FleetWriter,
  build: Build<T>,
  retries: number,
): Promise<AppendResult<T>> {
  const keys = fleetKeys(w.trust);
  checkFleetSigners(w.signers, keys);
  const every = w.snapshotEvery ?? DEFAULT_SNAPSHOT_EVERY;
  for (let conflicts = 0; ; conflicts++) {
    const now = w.clock();
    const latest = await readLatest(w.store, w.trust, now);
    const built = build(latest.applied);
    if (!built || built.ops.length === 0) {
      if (latest.applied.seq !== latest.headSeq) await moveHead(w, latest.applied, now);
      return { fleet: latest.applied, seq: null, value: built?.value, conflicts, duplicate: false };
    }
    const { entry, payload, next } = buildEntry(latest.applied, built.ops, now);
    let duplicate = false;
    try {
      const put = await w.store.putIfAbsent(
        fleetLogKey(entry.seq),
        signFleetBytes(PayloadType.entry, payload, w.signers),
      );
      duplicate = put.status === 'exists';
    } catch (err) {
      if (err instanceof ConflictError && conflicts < retries) {
        w.io?.log('debug', `fleet entry ${entry.seq} was written by another writer first; re-reading`);
        await new Promise((r) => setTimeout(r, 10 + Math.random() * 40));
        continue;
      }
      throw err;
    }
    if (next.seq % every === 0) {
      try {
        await w.store.putIfAbsent(
          snapshotKey(next.seq),
          signFleetBytes(PayloadType.snapshot, snapshotPayloadBytes(buildSnapshot(next)), w.signers),
        );
      } catch (err) {
        if (!(err instanceof ConflictError)) throw err;
      }
    }
    await moveHead(w, next, now);
    return { fleet: next, seq: duplicate ? null : entry.seq, value: built.value, conflicts, duplicate };
  }
}

/**
 * Moves the head to `fleet.seq` unless another writer already moved it there or further. The head
 * names the latest snapshot at or below the seq.
 */
async function moveHead(w: FleetWriter, fleet: AppliedFleet, now: Date): Promise<void> {
  const keys = fleetKeys(w.trust);
  const every = w.snapshotEvery ?? DEFAULT_SNAPSHOT_EVERY;
  for (let attempt = 0; attempt < 8; attempt++) {
    const cur = await readHead(w.store, keys, now, true, { allowPast: true });
    if (cur && cur.head.seq >= fleet.seq) return;
    if (fleet.entryDigest === null) return;
    const snapSeq = Math.floor(fleet.seq / every) * every;
    const snapshotSeq =
      snapSeq > 0 && (await w.store.head(snapshotKey(snapSeq))) !== undefined
        ? snapSeq
        : (cur?.head.snapshotSeq ?? null);
    const head = buildHead({
      seq: fleet.seq,
      entryDigest: fleet.entryDigest,
      snapshotSeq,
      now,
      ttlMs: w.headTtlMs ?? DEFAULT_HEAD_TTL_MS,
    });
    try {
      await w.store.compareAndSwap(HEAD_KEY, signFleetObject(PayloadType.head, head, w.signers), cur?.etag);
      w.io?.log('debug', `moved the fleet head to seq ${fleet.seq}`);
      return;
    } catch (err) {
      if (!(err instanceof ConflictError)) throw err;
    }
  }
}
