/**
 * `site apply`: turns the plan into the next signed fleet entry and moves the head, following the
 * registry's commit protocol (immutable objects first, then one compare-and-swap):
 *
 *   1. read and verify the head (keeping its etag), the snapshot and the entries after it;
 *   2. roll forward over entries past the head (an apply that crashed, or is racing us, between
 *      writing its entry and moving the head), so they are never overwritten or lost;
 *   3. plan; with no ops and a fresh head, stop without writing anything;
 *   4. write entry seq+1 create-only: if another apply created that seq first, we lost the race
 *      (ConflictError, retryable) and nothing of ours was written;
 *   5. write a snapshot every `snapshotEvery` entries (create-only, idempotent);
 *   6. compare-and-swap the head from the etag read in step 1.
 *
 * Each seq can be created once and each entry's `prev` must match the only entry at seq-1, so two
 * concurrent applies can never fork the log; the head only moves from the state its writer read,
 * so it never goes backwards. A head past half its lifetime is re-signed even without changes, so
 * sites do not freeze on an expired head while the fleet is quiet; so is a head signed by a fleet
 * key that a trust root rotation took out of the fleet role (not a revoked one), which is how
 * `site apply` after a fleet-key rotation brings the fleet back (as `fleet resign` does).
 */
import { ConflictError, isEdgectlError } from '../foundation/errors.js';
import type { Io } from '../foundation/output.js';
import { PayloadType } from '../registry/envelope.js';
import type { KeyPair } from '../registry/keys.js';
import { HEAD_KEY, fleetLogKey, snapshotKey } from '../registry/layout.js';
import type { Store } from '../registry/store.js';
import type { TrustRoot } from '../registry/trust.js';
import { applyEntry, buildEntry, type AppliedFleet, type ApplyOptions } from './entry.js';
import { DEFAULT_HEAD_TTL_MS, buildHead, headNeedsRefresh } from './head.js';
import type { FleetOp } from './ops.js';
import { planFleet, type FleetPlan } from './plan.js';
import { readEntry, readFleet, type FleetRead } from './read.js';
import { pinnedDigests, registryRefResolver, type RefResolver } from './resolve.js';
import type { RolloutReducer } from './rollout-ops.js';
import { checkFleetSigners, fleetKeys, signFleetBytes, signFleetObject, type FleetKeys } from './signed.js';
import { type DeclaredSite } from './site-schema.js';
import { loadSiteDeclarations } from './site-files.js';
import { DEFAULT_SNAPSHOT_EVERY, buildSnapshot, snapshotPayloadBytes } from './snapshot.js';
import { stateDigest } from './state.js';

export interface ApplyFleetOptions {
  store: Store;
  trust: TrustRoot;
  /** The fleet role key (or keys, for a threshold above 1). */
  signer: KeyPair | KeyPair[];
  /** Directory of `<site>.yaml` declarations; or pass `desired` directly. */
  sitesDir?: string;
  desired?: DeclaredSite[];
  clock: () => Date;
  snapshotEvery?: number;
  headTtlMs?: number;
  /** Default: resolve refs against the same registry. */
  resolveRef?: RefResolver;
  /** Turns paths into the names shown in messages. */
  display?: (path: string) => string;
  io?: Io;
  rolloutReducer?: RolloutReducer;
}

export interface ApplyFleetResult {
  /** Seq of the head after the apply. */
  seq: number;
  /** Seq of the head before. */
  previousSeq: number;
  /** Ops of the entry written by this apply (empty: nothing to change). */
  ops: FleetOp[];
  sites: FleetPlan['sites'];
  summary: FleetPlan['summary'];
  held?: FleetPlan['held'];
  stateDigest: string;
  entryDigest: string | null;
  /** Whether this apply wrote a snapshot. */
  snapshot: boolean;
  /** Whether the head was written (new entries, or a refresh). */
  headMoved: boolean;
  /** Entries past the old head that this apply found and included (a crashed or racing apply). */
  rolledForward: number;
}

function desiredSites(opts: ApplyFleetOptions): DeclaredSite[] {
  if (opts.desired) return opts.desired;
  if (!opts.sitesDir) throw new TypeError('applyFleet needs sitesDir or desired');
  return loadSiteDeclarations(opts.sitesDir, opts.display);
}

function lostRace(seq: number, what: string, cause: unknown): ConflictError {
  return new ConflictError(
    `another \`site apply\` ${what} (fleet seq ${seq}); nothing of this apply was lost`,
    {
      code: 'E_APPLY_CONFLICT',
      suggestion: 'run `edgectl site apply` again to plan against the new head, or pass --retries <n>',
      details: { seq, retryable: true },
      cause,
    },
  );
}

/**
 * The head's compare-and-swap failed because the head is gone (deleted behind our back), not
 * because another apply moved it: say so. Retrying is safe: the next apply rebuilds the head from
 * the log (step 2 rolls forward over every entry past a missing head).
 */
function headDeleted(seq: number, cause: ConflictError): ConflictError {
  return new ConflictError(
    `fleet/head.json was deleted while this apply ran (fleet seq ${seq} was written; the head was not moved)`,
    {
      code: 'E_HEAD_DELETED',
      suggestion:
        'run `edgectl site apply` again: it rebuilds the head from the fleet log; then find out what deleted it',
      details: { seq, retryable: true },
      cause,
    },
  );
}

/** What the steps of one apply attempt share. */
interface Attempt {
  store: Store;
  io: Io | undefined;
  signers: KeyPair[];
  keys: FleetKeys;
  /** Snapshot every this many entries. */
  every: number;
  now: Date;
  applyOpts: ApplyOptions;
  /** Applied fleets at snapshot seqs, written in step 5. */
  snapshots: AppliedFleet[];
}

/** Step 2: applies the entries past the head (an earlier apply crashed or is racing us). */
async function rollForward(a: Attempt, from: AppliedFleet): Promise<AppliedFleet> {
  let applied = from;
  for (
    let next = await readEntry(a.store, a.keys, applied.seq + 1);
    next;
    next = await readEntry(a.store, a.keys, applied.seq + 1)
  ) {
    applied = applyEntry(applied, next.entry, a.applyOpts);
    if (applied.seq % a.every === 0) a.snapshots.push(applied);
    a.io?.log('info', `including fleet entry ${applied.seq}, written past the head by an earlier apply`);
  }
  return applied;
}

/** Step 4: writes the plan's ops as entry seq+1, create-only; a seq written first is a lost race. */
async function writeEntry(a: Attempt, applied: AppliedFleet, ops: FleetOp[]): Promise<AppliedFleet> {
  const { entry, payload, next } = buildEntry(applied, ops, a.now, a.applyOpts);
  const body = signFleetBytes(PayloadType.entry, payload, a.signers);
  try {
    await a.store.putIfAbsent(fleetLogKey(entry.seq), body);
  } catch (err) {
    if (err instanceof ConflictError) throw lostRace(entry.seq, 'wrote this seq first', err);
    throw err;
  }
  a.io?.log('info', `wrote fleet entry ${entry.seq} (${ops.length} ops)`);
  if (next.seq % a.every === 0) a.snapshots.push(next);
  return next;
}

/** Step 5: writes the snapshots due, create-only. */
async function writeSnapshots(a: Attempt): Promise<void> {
  for (const snap of a.snapshots) {
    try {
      await a.store.putIfAbsent(
        snapshotKey(snap.seq),
        signFleetBytes(PayloadType.snapshot, snapshotPayloadBytes(buildSnapshot(snap)), a.signers),
      );
      a.io?.log('info', `wrote snapshot ${snap.seq}`);
    } catch (err) {
      // Another writer's snapshot of the same seq (e.g. signed by another fleet key) is as good.
      if (!(err instanceof ConflictError)) throw err;
    }
  }
}

/**
 * Step 6: compare-and-swap the head from the etag read in step 1, when it has new entries, is
 * missing, is due for a refresh or was signed by a past fleet key. Returns whether it had to move.
 */
async function moveHead(a: Attempt, read: FleetRead, applied: AppliedFleet, ttlMs: number): Promise<boolean> {
  const head = read.head;
  const moved =
    applied.seq !== read.seq ||
    head === undefined ||
    headNeedsRefresh(head, a.now) ||
    read.headPastVersion !== undefined;
  if (!moved || applied.seq <= 0 || applied.entryDigest === null) return moved;
  const lastSnapshot = a.snapshots.at(-1)?.seq ?? head?.snapshotSeq ?? null;
  const newHead = buildHead({
    seq: applied.seq,
    entryDigest: applied.entryDigest,
    snapshotSeq: lastSnapshot,
    now: a.now,
    ttlMs,
  });
  try {
    await a.store.compareAndSwap(
      HEAD_KEY,
      signFleetObject(PayloadType.head, newHead, a.signers),
      read.headEtag,
    );
  } catch (err) {
    if (!(err instanceof ConflictError)) throw err;
    // Only a head that really moved is a lost race; store errors (E_CAS_REFUSED, I/O) pass as is.
    if (read.headEtag !== undefined && err.details?.found === null) throw headDeleted(applied.seq, err);
    throw lostRace(applied.seq, 'moved the fleet head first', err);
  }
  a.io?.log('info', `moved the fleet head to seq ${applied.seq}`);
  return moved;
}

/** One apply attempt; ConflictError when another writer won a race (see applyFleetWithRetries). */
export async function applyFleet(opts: ApplyFleetOptions): Promise<ApplyFleetResult> {
  const { store, trust } = opts;
  const signers = Array.isArray(opts.signer) ? opts.signer : [opts.signer];
  const keys = fleetKeys(trust);
  checkFleetSigners(signers, keys);
  const desired = desiredSites(opts);
  const a: Attempt = {
    store,
    io: opts.io,
    signers,
    keys,
    every: opts.snapshotEvery ?? DEFAULT_SNAPSHOT_EVERY,
    now: opts.clock(),
    applyOpts: opts.rolloutReducer ? { rolloutReducer: opts.rolloutReducer } : {},
    snapshots: [],
  };

  const read = await readFleet(store, keys, { now: a.now, allowExpired: true, writer: true, ...a.applyOpts });
  const previousSeq = read.seq;
  let applied = await rollForward(a, read.applied);
  const rolledForward = applied.seq - previousSeq;

  const plan = await planFleet(
    desired,
    applied.state,
    opts.resolveRef ?? registryRefResolver(store, trust, pinnedDigests(applied.state)),
  );
  if (plan.ops.length > 0) applied = await writeEntry(a, applied, plan.ops);
  await writeSnapshots(a);
  const moved = await moveHead(a, read, applied, opts.headTtlMs ?? DEFAULT_HEAD_TTL_MS);

  return {
    seq: applied.seq,
    previousSeq,
    ops: plan.ops,
    sites: plan.sites,
    summary: plan.summary,
    ...(plan.held ? { held: plan.held } : {}),
    stateDigest: stateDigest(applied.state),
    entryDigest: applied.entryDigest,
    snapshot: a.snapshots.length > 0,
    headMoved: moved && applied.seq > 0,
    rolledForward,
  };
}

/**
 * applyFleet, retried up to `retries` times when another apply wins a race (each retry re-reads
 * the head and re-plans). Other errors are not retried.
 */
export async function applyFleetWithRetries(
  opts: ApplyFleetOptions,
  retries: number,
): Promise<ApplyFleetResult> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await applyFleet(opts);
    } catch (err) {
      const retryable =
        isEdgectlError(err) && (err.code === 'E_APPLY_CONFLICT' || err.code === 'E_HEAD_DELETED');
      if (!retryable || attempt >= retries) throw err;
      opts.io?.log('warn', `${(err as Error).message}; retrying (${attempt + 1}/${retries})`);
      // Jittered backoff so racing writers do not collide again in lockstep.
      await new Promise((r) => setTimeout(r, 20 * (attempt + 1) + Math.random() * 50));
    }
  }
}
