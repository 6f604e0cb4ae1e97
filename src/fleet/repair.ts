/**
 * `edgectl fleet repair`: puts a broken fleet log back into a state every reader accepts. It
 * inspects the log (chain.ts) and moves the head to the end of the longest valid chain from
 * seq 1. Entries not on that chain (past a gap, not chaining, of another branch) and snapshots
 * of another branch are moved aside to `fleet/orphans/` (copied create-only, then deleted from
 * the log, so a later apply can use their seqs and nothing signed is destroyed). The new head is
 * signed with the fleet key and written with compare-and-swap from the head read at inspection.
 *
 * Dry run by default: the same report, nothing written, no key needed. What the dropped entries
 * did (an apply's site changes, a rollout decision) is made again by the next `site apply` (it
 * re-plans from git) or rollout controller pass. A site that already installed a dropped entry
 * refuses the repaired head (fork or rollback, exit 4) and is re-synced from scratch
 * (docs/operations.md, "Recovering the fleet log").
 */
import { PayloadType } from '../registry/envelope.js';
import { sha256Hex } from '../foundation/digest.js';
import type { KeyPair } from '../registry/keys.js';
import { HEAD_KEY } from '../registry/layout.js';
import type { Store } from '../registry/store.js';
import { inspectFleetChain, type ChainObject, type ChainProblem } from './chain.js';
import { DEFAULT_HEAD_TTL_MS, buildHead } from './head.js';
import { checkFleetSigners, signFleetObject, type FleetKeys } from './signed.js';

export const ORPHAN_PREFIX = 'fleet/orphans/';

export interface RepairedObject extends ChainObject {
  /** Where the object was moved (with --apply), or will be. */
  orphan: string;
}

export interface FleetRepairResult {
  registry: string;
  /** False for a dry run. */
  applied: boolean;
  /** Whether anything needs (or needed) to change. */
  changes: boolean;
  headBefore: { seq: number; entryDigest: string } | null;
  /** The head after the repair (seq 0 and null digest: no valid entry, the head is removed). */
  headAfter: { seq: number; entryDigest: string | null; snapshotSeq: number | null };
  /** Entries dropped from the log: past the valid chain, or orphaned by it. */
  dropped: RepairedObject[];
  droppedSnapshots: RepairedObject[];
  problems: ChainProblem[];
}

export interface RepairOptions {
  store: Store;
  keys: FleetKeys;
  now: Date;
  /** The fleet key(s): required to apply. */
  signers?: KeyPair[];
  apply: boolean;
  headTtlMs?: number;
}

function orphanKey(obj: ChainObject, kind: 'log' | 'snapshots', body: Buffer): string {
  return `${ORPHAN_PREFIX}${kind}/${String(obj.seq).padStart(12, '0')}-${sha256Hex(body).slice(0, 16)}.json`;
}

/** Copies an object under fleet/orphans/ (create-only) and deletes it from its place. */
async function moveAside(
  store: Store,
  obj: ChainObject,
  kind: 'log' | 'snapshots',
  apply: boolean,
): Promise<RepairedObject> {
  const got = await store.get(obj.key);
  if (!got) return { ...obj, orphan: '' };
  const orphan = orphanKey(obj, kind, got.body);
  if (apply) {
    await store.putIfAbsent(orphan, got.body);
    await store.delete(obj.key);
  }
  return { ...obj, orphan };
}

export async function repairFleet(opts: RepairOptions): Promise<FleetRepairResult> {
  const { store, keys, now } = opts;
  if (opts.apply) checkFleetSigners(opts.signers ?? [], keys);
  const report = await inspectFleetChain(store, keys, now);
  const { valid, head } = report;
  const snapshotSeq = report.goodSnapshots.at(-1) ?? null;
  const headRight =
    head !== null &&
    head.seq === valid.seq &&
    head.entryDigest === valid.entryDigest &&
    (head.snapshotSeq === null || report.goodSnapshots.includes(head.snapshotSeq));
  const headGone = valid.seq === 0 && !report.headPresent;
  const changes = report.beyond.length > 0 || report.badSnapshots.length > 0 || !(headRight || headGone);
  const headEtag = (await store.head(HEAD_KEY))?.etag;
  const dropped: RepairedObject[] = [];
  const droppedSnapshots: RepairedObject[] = [];
  // Objects first, the head last: a repair interrupted half way is simply run again.
  for (const b of report.beyond) dropped.push(await moveAside(store, b, 'log', opts.apply));
  for (const s of report.badSnapshots)
    droppedSnapshots.push(await moveAside(store, s, 'snapshots', opts.apply));
  if (opts.apply && changes && !(headRight || headGone)) {
    if (valid.seq === 0 || valid.entryDigest === null) {
      await store.delete(HEAD_KEY);
    } else {
      const newHead = buildHead({
        seq: valid.seq,
        entryDigest: valid.entryDigest,
        snapshotSeq,
        now,
        ttlMs: opts.headTtlMs ?? DEFAULT_HEAD_TTL_MS,
      });
      await store.compareAndSwap(
        HEAD_KEY,
        signFleetObject(PayloadType.head, newHead, opts.signers ?? []),
        headEtag,
      );
    }
  }
  return {
    registry: store.url,
    applied: opts.apply,
    changes,
    headBefore: head ? { seq: head.seq, entryDigest: head.entryDigest } : null,
    headAfter: {
      seq: valid.seq,
      entryDigest: valid.entryDigest,
      snapshotSeq: valid.seq === 0 ? null : snapshotSeq,
    },
    dropped,
    droppedSnapshots,
    problems: report.problems,
  };
}
