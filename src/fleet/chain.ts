/**
 * Inspecting the whole fleet log for `doctor` and `fleet repair`: the longest valid chain from
 * seq 1 (each entry present, signed by the fleet role, stored under its own seq, `prev` naming
 * the entry before, its ops applying to the stated state digest), and what disagrees with it: a
 * head naming a missing or different entry, entries past the head, a gap, an entry that does not
 * chain, snapshots of another branch. Such a log is what concurrent writers leave on a store
 * that does not enforce conditional writes; readers (`fleet log`, `site sync`, `site apply`) then
 * fail with exit 4 until `fleet repair` moves the head back to the valid chain.
 *
 * Cost: one list of the log and of the snapshots, one GET per entry and per snapshot. States are
 * folded in batches (one state digest per batch, as readers do); a batch that fails is replayed
 * entry by entry to name the seq.
 */
import { mapConcurrent } from '../artifact/concurrency.js';
import { VerificationError } from '../foundation/errors.js';
import { PayloadType } from '../registry/envelope.js';
import { FLEET_LOG_PREFIX, HEAD_KEY, SNAPSHOT_PREFIX, parseSeqKey, snapshotKey } from '../registry/layout.js';
import type { Store } from '../registry/store.js';
import {
  applyEntries,
  applyEntry,
  entryDigest,
  genesis,
  type AppliedFleet,
  type FleetEntry,
} from './entry.js';
import type { FleetHead } from './head.js';
import { readEntry, readHead } from './read.js';
import { verifyFleetObject, type FleetKeys } from './signed.js';
import { parseSnapshotPayload } from './snapshot.js';

export type ChainProblemKind =
  'gap' | 'broken' | 'head-missing' | 'head-mismatch' | 'head-invalid' | 'past-head' | 'snapshot-mismatch';

export interface ChainProblem {
  kind: ChainProblemKind;
  /** The seq the problem is at (the head's, the first missing or broken entry's, the snapshot's). */
  seq: number;
  severity: 'fail' | 'warn';
  message: string;
}

export interface ChainObject {
  seq: number;
  key: string;
  /** Entry or snapshot digest when it could be read, else null. */
  digest: string | null;
  reason: string;
}

export interface FleetChainReport {
  head: FleetHead | null;
  /** Whether fleet/head.json exists (it may exist and fail verification: `head` is then null). */
  headPresent: boolean;
  /** Highest seq under fleet/log/ (0: none). */
  maxSeq: number;
  /** The fleet at the end of the longest valid chain (seq 0: no valid entry). */
  valid: AppliedFleet;
  /** Entries in the log that are not on the valid chain (all after valid.seq). */
  beyond: ChainObject[];
  /** Snapshots of another branch or past the valid chain. */
  badSnapshots: ChainObject[];
  /** Snapshots at or below valid.seq that match the chain, ascending. */
  goodSnapshots: number[];
  problems: ChainProblem[];
}

const BATCH = 64;

type Slot =
  | { seq: number; entry: FleetEntry; past: boolean }
  | { seq: number; missing: true }
  | { seq: number; error: string };

async function readSlot(store: Store, keys: FleetKeys, seq: number, listed: Set<number>): Promise<Slot> {
  if (!listed.has(seq)) return { seq, missing: true };
  try {
    // Entries signed before a fleet-key rotation count here; inspectFleetChain then ends the chain
    // where nothing current-signed covers them (trust-history.ts: a fresh object needs the current role).
    const v = await readEntry(store, keys, seq, { allowPast: true });
    return v ? { seq, entry: v.entry, past: v.pastVersion !== undefined } : { seq, missing: true };
  } catch (err) {
    // Only a failed check makes an entry invalid; a registry that cannot be read is an error,
    // never a reason for `fleet repair` to drop something.
    if (!(err instanceof VerificationError)) throw err;
    return { seq, error: err.message };
  }
}

/** Folds a batch of consecutive entries; on failure replays one by one to find the seq. */
function foldBatch(
  applied: AppliedFleet,
  entries: FleetEntry[],
  digests: Map<number, string>,
): { applied: AppliedFleet; broken?: { seq: number; reason: string } } {
  try {
    const next = applyEntries(applied, entries);
    for (const e of entries) digests.set(e.seq, entryDigest(e));
    return { applied: next };
  } catch (err) {
    if (!(err instanceof VerificationError)) throw err;
  }
  let cur = applied;
  for (const e of entries) {
    try {
      cur = applyEntry(cur, e);
      digests.set(e.seq, entryDigest(e));
    } catch (err) {
      if (!(err instanceof VerificationError)) throw err;
      return { applied: cur, broken: { seq: e.seq, reason: err.message } };
    }
  }
  return { applied: cur };
}

/** Walks the log from seq 1: the longest valid chain, its digests, and where it stops. */
async function walkChain(
  store: Store,
  keys: FleetKeys,
  listed: Set<number>,
  maxSeq: number,
): Promise<{
  valid: AppliedFleet;
  digests: Map<number, string>;
  /** The highest seq of the chain signed by the current fleet role (0: none). */
  lastCurrent: number;
  stop?: { seq: number; reason: string; missing: boolean };
}> {
  let valid = genesis();
  const digests = new Map<number, string>();
  let lastCurrent = 0;
  for (let start = 1; start <= maxSeq; start += BATCH) {
    const seqs = Array.from({ length: Math.min(BATCH, maxSeq - start + 1) }, (_, i) => start + i);
    const slots = await mapConcurrent(seqs, 8, (seq) => readSlot(store, keys, seq, listed));
    const good: FleetEntry[] = [];
    let stop: { seq: number; reason: string; missing: boolean } | undefined;
    for (const s of slots) {
      if ('entry' in s) {
        good.push(s.entry);
        if (!s.past) lastCurrent = s.seq;
        continue;
      }
      stop =
        'missing' in s
          ? { seq: s.seq, reason: `entry ${s.seq} is missing`, missing: true }
          : { seq: s.seq, reason: s.error, missing: false };
      break;
    }
    const folded = foldBatch(valid, good, digests);
    valid = folded.applied;
    lastCurrent = Math.min(lastCurrent, valid.seq);
    if (folded.broken) return { valid, digests, lastCurrent, stop: { ...folded.broken, missing: false } };
    if (stop) return { valid, digests, lastCurrent, stop };
  }
  return { valid, digests, lastCurrent };
}

/**
 * The longest valid chain, ended where no current signature covers it: entries signed only by an
 * earlier fleet key count up to the head that names them or up to a later current-signed entry,
 * never past both (what a rotated-out key signed after the head is not adopted by `fleet repair`).
 */
async function coveredChain(
  store: Store,
  keys: FleetKeys,
  listed: Set<number>,
  maxSeq: number,
  head: FleetHead | null,
): Promise<Awaited<ReturnType<typeof walkChain>>> {
  const walked = await walkChain(store, keys, listed, maxSeq);
  const headCovers =
    head !== null && head.seq <= walked.valid.seq && walked.digests.get(head.seq) === head.entryDigest;
  const cover = Math.max(walked.lastCurrent, headCovers && head ? head.seq : 0);
  if (cover >= walked.valid.seq) return walked;
  const trimmed = await walkChain(store, keys, listed, cover);
  return {
    ...trimmed,
    stop: {
      seq: cover + 1,
      reason: `entry ${cover + 1} is signed only by a key that has left the fleet role, past the head`,
      missing: false,
    },
  };
}

async function seqsUnder(store: Store, prefix: string): Promise<number[]> {
  return (await store.list(prefix))
    .map((o) => parseSeqKey(o.key, prefix))
    .filter((s): s is number => s !== undefined)
    .sort((a, b) => a - b);
}

async function checkSnapshots(
  store: Store,
  keys: FleetKeys,
  validSeq: number,
  digests: Map<number, string>,
): Promise<{ bad: ChainObject[]; good: number[] }> {
  const bad: ChainObject[] = [];
  const good: number[] = [];
  for (const seq of await seqsUnder(store, SNAPSHOT_PREFIX)) {
    const key = snapshotKey(seq);
    if (seq > validSeq) {
      bad.push({ seq, key, digest: null, reason: `past the valid chain (seq ${validSeq})` });
      continue;
    }
    let digest: string | null = null;
    try {
      const obj = await store.get(key);
      if (!obj) continue;
      // An earlier key's snapshot is bound to the chain by the digest comparison below.
      const v = verifyFleetObject(obj.body, PayloadType.snapshot, keys, key, { allowPast: true });
      digest = parseSnapshotPayload(v.raw, key).entryDigest;
    } catch (err) {
      if (!(err instanceof VerificationError)) throw err;
      bad.push({ seq, key, digest, reason: err.message });
      continue;
    }
    if (digest !== digests.get(seq)) {
      bad.push({
        seq,
        key,
        digest,
        reason: `snapshot of another branch (entry ${digest}, the chain has ${digests.get(seq)})`,
      });
    } else good.push(seq);
  }
  return { bad, good };
}

export async function inspectFleetChain(store: Store, keys: FleetKeys, now: Date): Promise<FleetChainReport> {
  const listedSeqs = await seqsUnder(store, FLEET_LOG_PREFIX);
  const listed = new Set(listedSeqs);
  const maxSeq = listedSeqs.at(-1) ?? 0;
  const problems: ChainProblem[] = [];
  let head: FleetHead | null = null;
  let headPresent = false;
  try {
    const read = await readHead(store, keys, now, true, { allowPast: true });
    head = read?.head ?? null;
    headPresent = read !== undefined;
  } catch (err) {
    headPresent = (await store.head(HEAD_KEY)) !== undefined;
    problems.push({
      kind: 'head-invalid',
      seq: 0,
      severity: 'fail',
      message: `${HEAD_KEY}: ${(err as Error).message}`,
    });
  }
  const walked = await coveredChain(store, keys, listed, maxSeq, head);
  const { valid, digests, stop } = walked;
  const beyond: ChainObject[] = [];
  for (const seq of listedSeqs.filter((s) => s > valid.seq)) {
    const reason =
      stop && seq === stop.seq
        ? stop.reason
        : `after seq ${stop?.seq ?? valid.seq + 1}, where the chain stops`;
    beyond.push({
      seq,
      key: `${FLEET_LOG_PREFIX}${String(seq).padStart(12, '0')}.json`,
      digest: null,
      reason,
    });
  }
  for (const b of beyond) {
    const e = await readEntry(store, keys, b.seq).catch(() => undefined);
    if (e) b.digest = entryDigest(e.entry);
  }
  if (stop && beyond.length > 0) {
    problems.push({
      kind: stop.missing ? 'gap' : 'broken',
      seq: stop.seq,
      severity: 'fail',
      message: stop.missing
        ? `fleet log gap: entry ${stop.seq} is missing but entries up to ${maxSeq} exist`
        : `fleet entry ${stop.seq} does not continue the chain: ${stop.reason}`,
    });
  }
  problems.push(...headProblems(head, headPresent, valid, digests, listed));
  const snaps = await checkSnapshots(store, keys, valid.seq, digests);
  for (const s of snaps.bad.filter((b) => b.seq <= valid.seq || b.seq === head?.snapshotSeq)) {
    problems.push({
      kind: 'snapshot-mismatch',
      seq: s.seq,
      severity: 'fail',
      message: `snapshot ${s.seq}: ${s.reason}`,
    });
  }
  return {
    head,
    headPresent,
    maxSeq,
    valid,
    beyond,
    badSnapshots: snaps.bad,
    goodSnapshots: snaps.good,
    problems,
  };
}

function headProblems(
  head: FleetHead | null,
  headPresent: boolean,
  valid: AppliedFleet,
  digests: Map<number, string>,
  listed: Set<number>,
): ChainProblem[] {
  if (!head) {
    if (headPresent || valid.seq === 0) return [];
    return [
      {
        kind: 'past-head',
        seq: 1,
        severity: 'warn',
        message: `entries 1-${valid.seq} exist but no head yet (an interrupted first apply; the next \`site apply\` moves the head)`,
      },
    ];
  }
  if (head.seq > valid.seq) {
    const present = listed.has(head.seq);
    return [
      {
        kind: present ? 'head-mismatch' : 'head-missing',
        seq: head.seq,
        severity: 'fail',
        message: present
          ? `the head names entry ${head.seq}, which is not on the valid chain (it ends at seq ${valid.seq})`
          : `the head names entry ${head.seq}, which the log does not hold`,
      },
    ];
  }
  if (digests.get(head.seq) !== head.entryDigest) {
    return [
      {
        kind: 'head-mismatch',
        seq: head.seq,
        severity: 'fail',
        message: `the head names entry ${head.seq} as ${head.entryDigest}, the log holds ${digests.get(head.seq) ?? 'none'}`,
      },
    ];
  }
  if (valid.seq > head.seq) {
    return [
      {
        kind: 'past-head',
        seq: head.seq + 1,
        severity: 'warn',
        message: `entries ${head.seq + 1}-${valid.seq} chain past the head (an interrupted apply; the next \`site apply\` includes them)`,
      },
    ];
  }
  return [];
}
