/**
 * The fleet head (docs/formats.md "Fleet log"): the registry's one mutable object,
 * `fleet/head.json`, naming the latest entry (seq + entry digest) and the latest snapshot, with
 * `issued` and `expires` for freshness. Signed with the fleet role and moved only with
 * compare-and-swap. A reader that must not install stale state refuses an expired head (freeze
 * protection); the writer re-signs it (`site apply` refreshes a head past half its lifetime).
 */
import { z } from 'zod';
import { VerificationError } from '../foundation/errors.js';
import { isDigest } from '../foundation/digest.js';

export const DEFAULT_HEAD_TTL_MS = 7 * 86_400_000;

export interface FleetHead {
  seq: number;
  entryDigest: string;
  /** Seq of the latest snapshot at or before `seq`, or null before the first snapshot. */
  snapshotSeq: number | null;
  issued: string;
  expires: string;
}

const headSchema = z
  .object({
    seq: z.number().int().min(1),
    entryDigest: z.string().refine(isDigest, 'must be sha256:<64 hex>'),
    snapshotSeq: z.number().int().min(1).nullable(),
    issued: z.iso.datetime(),
    expires: z.iso.datetime(),
  })
  .strict()
  .refine((h) => h.snapshotSeq === null || h.snapshotSeq <= h.seq, 'snapshotSeq is after seq')
  .refine((h) => Date.parse(h.issued) < Date.parse(h.expires), 'expires is not after issued');

export function buildHead(opts: {
  seq: number;
  entryDigest: string;
  snapshotSeq: number | null;
  now: Date;
  ttlMs: number;
}): FleetHead {
  return {
    seq: opts.seq,
    entryDigest: opts.entryDigest,
    snapshotSeq: opts.snapshotSeq,
    issued: opts.now.toISOString(),
    expires: new Date(opts.now.getTime() + opts.ttlMs).toISOString(),
  };
}

export function isHeadExpired(head: FleetHead, now: Date): boolean {
  return Date.parse(head.expires) <= now.getTime();
}

/** True when less than half of the head's lifetime is left: time for the writer to re-sign it. */
export function headNeedsRefresh(head: FleetHead, now: Date): boolean {
  const issued = Date.parse(head.issued);
  const expires = Date.parse(head.expires);
  return now.getTime() >= issued + (expires - issued) / 2;
}

/** Validates a signature-checked head payload; an expired head is refused unless `allowExpired`. */
export function parseHeadPayload(raw: unknown, what: string, now: Date, allowExpired = false): FleetHead {
  const parsed = headSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue?.path.map(String).join('.') ?? '';
    throw new VerificationError(
      `${what}: invalid fleet head: ${field ? `${field}: ` : ''}${issue?.message}`,
      {
        code: 'E_HEAD_INVALID',
      },
    );
  }
  const head = parsed.data;
  if (!allowExpired && isHeadExpired(head, now)) {
    throw new VerificationError(`${what}: the fleet head (seq ${head.seq}) expired at ${head.expires}`, {
      code: 'E_EXPIRED',
      suggestion:
        'run `edgectl site apply` to re-sign the head (it refreshes an old head even without changes)',
      details: { seq: head.seq, expires: head.expires },
    });
  }
  return head;
}
