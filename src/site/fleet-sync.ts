/**
 * The fleet half of a site sync: poll the head with a conditional GET, verify it, and bring the
 * site's fleet state from its applied seq to the head's (docs/formats.md "Fleet log").
 *
 * Checks, in order: the head's signature under the fleet role; freshness (an expired head is a
 * freeze: nothing new is installed); no rollback (head seq below the applied seq); no fork (a
 * different entry digest at the applied seq). Then the entries applied+1..head are fetched,
 * verified and applied with the pure `applyEntry` (prev chain, state digest, forks), or, when the
 * site is new or far behind, the latest snapshot is used instead (its state re-hashed against its
 * digest) after checking that the registry's entry at the applied seq is the one the site applied.
 * Every refusal is a VerificationError (exit 4) and nothing local is changed by this module.
 */
import { OperationalError, VerificationError } from '../foundation/errors.js';
import { applyEntry, entryDigest, type AppliedFleet, type ApplyOptions } from '../fleet/entry.js';
import { isHeadExpired, parseHeadPayload, type FleetHead } from '../fleet/head.js';
import { readEntries, readEntry, readSnapshot } from '../fleet/read.js';
import { fleetKeys, verifyFleetObject, type FleetKeys } from '../fleet/signed.js';
import { PayloadType } from '../registry/envelope.js';
import { HEAD_KEY, TRUST_ROOT_PREFIX, fleetLogKey } from '../registry/layout.js';
import type { Store } from '../registry/store.js';
import type { TrustRoot } from '../registry/trust.js';

/** Behind by more than this many entries (and a snapshot exists past the applied seq): use it. */
export const SNAPSHOT_WHEN_BEHIND = 64;

export type HeadPoll =
  { kind: 'missing' } | { kind: 'unchanged'; etag: string } | { kind: 'changed'; body: Buffer; etag: string };

/**
 * One request; with an etag and no change, no body (HTTP 304). A head over the head cap (a head is
 * a few hundred bytes; EDGECTL_MAX_HEAD_BYTES, limits.ts) is refused by the store before it is read.
 */
export async function pollHead(store: Store, etag: string | undefined): Promise<HeadPoll> {
  const res = await store.getIfChanged(HEAD_KEY, etag);
  if (!res) return { kind: 'missing' };
  if (res.notModified) return { kind: 'unchanged', etag: res.etag };
  return { kind: 'changed', body: res.object.body, etag: res.object.etag };
}

/** Verifies head bytes under the fleet role; expiry is checked separately (checkFresh). */
export function verifyHead(body: Buffer, keys: FleetKeys, now: Date): FleetHead {
  const v = verifyFleetObject(body, PayloadType.head, keys, HEAD_KEY);
  return parseHeadPayload(v.raw, HEAD_KEY, now, true);
}

/**
 * The error for a head that is gone although this site applied `appliedSeq` from it. The registry
 * answered, so this is not "offline": when it still holds a trust root it was initialized and
 * reachable, and a deleted head (a reset, or someone hiding new entries) is refused (exit 4). A
 * registry with no trust root either is not there (an unmounted directory, a wrong prefix): that
 * stays an offline condition, and the site keeps serving.
 */
export async function missingHeadError(
  store: Store,
  appliedSeq: number,
): Promise<VerificationError | OperationalError> {
  const initialized = (await store.list(TRUST_ROOT_PREFIX)).length > 0;
  if (!initialized) {
    return new OperationalError(
      `the registry ${store.url} has no fleet/head.json and no trust root (unreachable, unmounted or reset)`,
      { code: 'E_REGISTRY_OFFLINE', details: { url: store.url } },
    );
  }
  return new VerificationError(
    `${HEAD_KEY} is missing from ${store.url}, which this site synced to seq ${appliedSeq}: a deleted head is refused ` +
      '(the site keeps serving its current generation)',
    {
      code: 'E_HEAD_MISSING',
      suggestion:
        'restore fleet/head.json from a backup, or re-sign it with `edgectl site apply` from the fleet repository',
      details: { url: store.url, appliedSeq },
    },
  );
}

/** Freeze protection: installing anything needs an unexpired head. */
export function checkFresh(head: Pick<FleetHead, 'seq' | 'expires'>, now: Date): void {
  if (!isHeadExpired(head as FleetHead, now)) return;
  throw new VerificationError(
    `the fleet head (seq ${head.seq}) expired at ${head.expires}: refusing to install anything (freeze protection); ` +
      'the site keeps serving its current generation',
    {
      code: 'E_FROZEN',
      suggestion:
        'the fleet operator must re-sign the head (`edgectl site apply` refreshes it); check the registry for a replayed old head',
      details: { frozen: true, seq: head.seq, expires: head.expires },
    },
  );
}

/** Refuses a head that goes back (rollback) or disagrees with the applied entry (fork). */
export function checkHeadAgainstApplied(head: FleetHead, applied: AppliedFleet): void {
  if (head.seq < applied.seq) {
    throw new VerificationError(
      `the fleet head is at seq ${head.seq}, behind the seq ${applied.seq} this site already applied: rollback refused`,
      {
        code: 'E_ROLLBACK',
        suggestion:
          'the registry serves an old head (restored backup or a replay); an operator must check it',
        details: { head: head.seq, applied: applied.seq },
      },
    );
  }
  if (head.seq === applied.seq && head.entryDigest !== applied.entryDigest) {
    throw new VerificationError(
      `the fleet head names entry ${head.seq} as ${head.entryDigest}, but this site applied ${applied.entryDigest ?? 'none'} at that seq: fork refused`,
      { code: 'E_FORK', details: { seq: head.seq, head: head.entryDigest, applied: applied.entryDigest } },
    );
  }
}

export interface CatchUpResult {
  applied: AppliedFleet;
  /** Entries fetched and applied. */
  entries: number;
  /** Seq of the snapshot used, if any. */
  snapshotSeq: number | null;
}

export interface CatchUpOptions extends ApplyOptions {
  snapshotWhenBehind?: number;
  concurrency?: number;
}

/** Brings `from` to the head's seq (see the module comment); verifies the result against the head. */
export async function catchUp(
  store: Store,
  trust: TrustRoot,
  from: AppliedFleet,
  head: FleetHead,
  opts: CatchUpOptions = {},
): Promise<CatchUpResult> {
  const keys = fleetKeys(trust);
  checkHeadAgainstApplied(head, from);
  let applied = from;
  let snapshotSeq: number | null = null;
  const behind = head.seq - from.seq;
  const useSnapshot =
    head.snapshotSeq !== null &&
    head.snapshotSeq > from.seq &&
    (from.seq === 0 || behind > (opts.snapshotWhenBehind ?? SNAPSHOT_WHEN_BEHIND));
  if (useSnapshot && head.snapshotSeq !== null) {
    if (from.seq > 0) {
      // Jumping over entries: make sure the log still holds the entry this site applied.
      // Compared by digest with what this site applied; an earlier fleet key may have signed it.
      const ours = await readEntry(store, keys, from.seq, { allowPast: true });
      if (!ours) {
        throw new VerificationError(
          `${fleetLogKey(from.seq)} is missing: cannot tell whether the log was rewritten`,
          {
            code: 'E_FLEET_MISSING',
            details: { seq: from.seq },
          },
        );
      }
      if (entryDigest(ours.entry) !== from.entryDigest) {
        throw new VerificationError(
          `fleet entry ${from.seq} in the registry is ${entryDigest(ours.entry)}, but this site applied ${from.entryDigest}: fork refused`,
          { code: 'E_FORK', details: { seq: from.seq } },
        );
      }
    }
    applied = await readSnapshot(store, keys, head.snapshotSeq);
    snapshotSeq = head.snapshotSeq;
  }
  // Earlier (unrevoked) fleet keys may have signed these: the head's entry digest, checked below,
  // covers them through the prev chain (registry/trust-history.ts).
  const entries = await readEntries(store, keys, applied.seq + 1, head.seq, opts.concurrency ?? 8, {
    allowPast: true,
  });
  const applyOpts = opts.rolloutReducer ? { rolloutReducer: opts.rolloutReducer } : {};
  for (const { entry } of entries) applied = applyEntry(applied, entry, applyOpts);
  if (applied.seq !== head.seq || applied.entryDigest !== head.entryDigest) {
    throw new VerificationError(
      `${HEAD_KEY}: names entry ${head.seq} as ${head.entryDigest}, but the log has ${applied.entryDigest ?? 'none'} at seq ${applied.seq}`,
      { code: 'E_HEAD_MISMATCH', details: { seq: head.seq } },
    );
  }
  return { applied, entries: entries.length, snapshotSeq };
}
