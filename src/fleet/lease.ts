/**
 * The single-writer lease, `fleet/lease.json`: what makes fleet writes safe on a store that does
 * not enforce conditional writes, when the operator opts in (`--single-writer`, write-guard.ts).
 * Such a store keeps whichever write lands last, so the lease uses Fischer's timed mutual
 * exclusion: read the lease; refuse if another owner holds a live one; write ours; if the
 * read-to-write round trip took more than half the settle delay, start again (the bound the
 * algorithm relies on); wait the settle delay; read again and act only if the lease still names
 * us. Of two writers that both found it free, the one whose write landed last is the one both
 * re-reads see, so exactly one proceeds. A crashed writer's lease expires (`expires`); a finished
 * writer deletes its own lease.
 *
 * It relies on the operator: every writer must be edgectl with the same settle delay, clocks must
 * agree to well within the lease's lifetime, and nothing else may write the registry. That is why
 * taking it prints a warning (write-guard.ts).
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { ConflictError } from '../foundation/errors.js';
import type { Io } from '../foundation/output.js';
import type { Store } from '../registry/store.js';

export const LEASE_KEY = 'fleet/lease.json';
export const DEFAULT_LEASE_TTL_MS = 5 * 60_000;
export const DEFAULT_LEASE_SETTLE_MS = 1_000;

export interface Lease {
  /** Random id of the holder (one per acquisition). */
  owner: string;
  host: string;
  pid: number;
  /** What holds it (`site apply`, `rollout canary`...). */
  command: string;
  acquired: string;
  expires: string;
}

const leaseSchema = z.object({
  owner: z.string().min(1),
  host: z.string(),
  pid: z.number().int(),
  command: z.string(),
  acquired: z.iso.datetime(),
  expires: z.iso.datetime(),
});

export interface LeaseOptions {
  command: string;
  /** Lifetime of the lease (default 5 min): a crashed holder blocks others at most this long. */
  ttlMs?: number;
  /** Wait between writing the lease and checking it (default 1 s). */
  settleMs?: number;
  clock?: () => Date;
  io?: Io;
}

export interface HeldLease {
  lease: Lease;
  /** A live lease of another owner that expired and was taken over, if any. */
  tookOver: Lease | undefined;
}

/** The lease object as stored, or undefined when there is none (an unreadable one counts as expired). */
export async function readLease(
  store: Store,
): Promise<{ lease: Lease | undefined; etag: string } | undefined> {
  const obj = await store.get(LEASE_KEY);
  if (!obj) return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(obj.body.toString('utf8'));
  } catch {
    return { lease: undefined, etag: obj.etag };
  }
  const parsed = leaseSchema.safeParse(raw);
  return { lease: parsed.success ? parsed.data : undefined, etag: obj.etag };
}

function heldBy(lease: Lease, store: Store): ConflictError {
  return new ConflictError(
    `${store.url}: the single-writer lease ${LEASE_KEY} is held by ${lease.command} (pid ${lease.pid} on ${lease.host}) until ${lease.expires}`,
    {
      code: 'E_LEASE_HELD',
      suggestion: `wait for that writer to finish and run the command again; if it crashed, the lease expires at ${lease.expires}`,
      details: { lease },
    },
  );
}

function isLive(lease: Lease | undefined, now: Date): lease is Lease {
  return lease !== undefined && Date.parse(lease.expires) > now.getTime();
}

/** Takes the lease or throws ConflictError (E_LEASE_HELD, exit 1) naming its holder. */
export async function acquireLease(store: Store, opts: LeaseOptions): Promise<HeldLease> {
  const clock = opts.clock ?? (() => new Date());
  const settle = opts.settleMs ?? DEFAULT_LEASE_SETTLE_MS;
  const owner = randomBytes(12).toString('hex');
  for (let attempt = 0; ; attempt++) {
    const started = Date.now();
    const cur = await readLease(store);
    const now = clock();
    if (isLive(cur?.lease, now) && cur.lease.owner !== owner) throw heldBy(cur.lease, store);
    const lease: Lease = {
      owner,
      host: hostname(),
      pid: process.pid,
      command: opts.command,
      acquired: now.toISOString(),
      expires: new Date(now.getTime() + (opts.ttlMs ?? DEFAULT_LEASE_TTL_MS)).toISOString(),
    };
    try {
      await store.compareAndSwap(LEASE_KEY, Buffer.from(`${JSON.stringify(lease, null, 2)}\n`), cur?.etag);
    } catch (err) {
      // Someone wrote the lease since we read it: look again (it refuses if theirs is live).
      if (err instanceof ConflictError && attempt < 5) continue;
      throw err;
    }
    if (Date.now() - started > settle / 2 && attempt < 5) {
      opts.io?.log('debug', `writing the lease took longer than ${settle / 2} ms; checking again`);
      continue;
    }
    await sleep(settle);
    const check = await readLease(store);
    if (check?.lease?.owner !== owner) {
      if (check?.lease) throw heldBy(check.lease, store);
      throw new ConflictError(`${store.url}: the single-writer lease ${LEASE_KEY} vanished while taking it`, {
        code: 'E_LEASE_HELD',
        suggestion: 'another writer is releasing or taking it: run the command again',
      });
    }
    const tookOver = cur?.lease && cur.lease.owner !== owner ? cur.lease : undefined;
    if (tookOver) {
      opts.io?.log(
        'warn',
        `took over the expired lease of ${tookOver.command} (pid ${tookOver.pid} on ${tookOver.host}, expired ${tookOver.expires})`,
      );
    }
    return { lease, tookOver };
  }
}

/** Deletes the lease if it is still ours (a lease that expired and was taken over is left alone). */
export async function releaseLease(store: Store, held: HeldLease): Promise<void> {
  const cur = await readLease(store);
  if (cur?.lease?.owner === held.lease.owner) await store.delete(LEASE_KEY);
}

/** Runs `body` holding the lease; releases it afterwards, also on an error. */
export async function withLease<T>(store: Store, opts: LeaseOptions, body: () => Promise<T>): Promise<T> {
  const held = await acquireLease(store, opts);
  try {
    return await body();
  } finally {
    await releaseLease(store, held).catch((err: unknown) => {
      opts.io?.log(
        'warn',
        `could not release ${LEASE_KEY}: ${(err as Error).message}; it expires at ${held.lease.expires}`,
      );
    });
  }
}
