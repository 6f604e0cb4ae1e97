/**
 * Conditional writes on the three backends (fs, s3rver, Ceph RGW): what the probe reports, that a
 * right compare-and-swap succeeds whatever the ETag's form (quoted, unquoted, multipart), and that
 * every wrong one (stale ETag, deleted object, object replaced behind the writer's back) is refused
 * with nothing written. Racing writers are tested where the probe says the server enforces the
 * conditions (fs, RGW); on s3rver the probe's own answer is the reason they are skipped.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ConflictError, OperationalError } from '../../src/foundation/errors.js';
import {
  conditionalWritesEnforced,
  describeConditionalWrites,
  probeConditionalWrites,
} from '../../src/registry/conditional-writes.js';
import { FsStore } from '../../src/registry/fs-store.js';
import { S3Store } from '../../src/registry/s3-store.js';
import type { Store } from '../../src/registry/store.js';
import { startFaultProxy } from '../helpers/fault-proxy.js';
import { forEachBackend, type MakeStore } from '../helpers/stores.js';

const HEAD = 'fleet/head.json';

/** A second, independent writer on the same registry (another process, in effect). */
function otherWriter(mk: MakeStore, store: Store): Store {
  if (store instanceof FsStore) return new FsStore(store.root);
  if (!(store instanceof S3Store) || !mk.s3) throw new Error('unexpected store');
  return new S3Store(store.bucket, store.prefix, { env: mk.s3.env });
}

async function conflictOf(p: Promise<unknown>): Promise<ConflictError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ConflictError);
  return err as ConflictError;
}

describe('conditional writes', () => {
  forEachBackend(
    (mk) => {
      it('the probe tests both sides and reports what holds, with the answers', async () => {
        const store = await mk();
        const probe = await probeConditionalWrites(store);
        const expected = { fs: 'enforced', s3: 'not-enforced', rgw: 'enforced' }[mk.backend];
        expect(probe.createOnly, describeConditionalWrites(probe)).toBe(expected);
        expect(probe.compareAndSwap, describeConditionalWrites(probe)).toBe(expected);
        expect(store.enforcesConditionalWrites).toBe(expected === 'enforced');
        if (mk.backend === 'fs') return;
        // Four kinds of request, each with the server's answer; the probe object is removed.
        expect(probe.answers.map((a) => a.expected)).toContain('refuse');
        expect(probe.answers.map((a) => a.expected)).toContain('accept');
        expect(await store.list('')).toEqual([]);
        if (mk.backend === 'rgw') {
          // RGW refuses its own quoted ETag in If-Match and accepts the unquoted one.
          expect(probe.ifMatchForm).toBe('unquoted');
          expect(probe.answers).toContainEqual(
            expect.objectContaining({ step: 'replace with the current ETag (as-returned)', status: 412 }),
          );
          expect(describeConditionalWrites(probe)).toMatch(/compare-and-swap: enforced \(unquoted/);
        } else {
          expect(describeConditionalWrites(probe)).toMatch(/create-only: not-enforced \[.*HTTP 200/);
        }
      });

      it('compare-and-swap succeeds with the ETag quoted or unquoted, in a fresh process (no probe)', async () => {
        const store = await mk();
        const e1 = await store.compareAndSwap(HEAD, Buffer.from('v1'), undefined);
        const e2 = await store.compareAndSwap(HEAD, Buffer.from('v2'), e1);
        // Another client holding the ETag in the other form (a fresh store has learnt nothing).
        const fresh = otherWriter(mk, store);
        try {
          const other = e2.startsWith('"') ? e2.slice(1, -1) : mk.backend === 'fs' ? e2 : `"${e2}"`;
          const e3 = await fresh.compareAndSwap(HEAD, Buffer.from('v3'), other);
          expect((await store.get(HEAD))?.body.toString()).toBe('v3');
          expect((await store.head(HEAD))?.etag).toBe(e3);
        } finally {
          await fresh.close();
        }
      });

      it('a stale ETag is refused, is never retried into a success, and writes nothing', async () => {
        const store = await mk();
        const e1 = await store.compareAndSwap(HEAD, Buffer.from('v1'), undefined);
        await store.compareAndSwap(HEAD, Buffer.from('v2'), e1);
        const fresh = otherWriter(mk, store);
        try {
          fresh.resetStats();
          const err = await conflictOf(fresh.compareAndSwap(HEAD, Buffer.from('v3'), e1));
          expect(err.message).toMatch(/changed by another writer/);
          // One conditional PUT at most: a refusal whose precondition really failed is final.
          expect(fresh.stats.puts).toBeLessThanOrEqual(1);
          expect((await store.get(HEAD))?.body.toString()).toBe('v2');
        } finally {
          await fresh.close();
        }
      });

      it('a deleted object is refused (found: no object) and not re-created', async () => {
        const store = await mk();
        const e1 = await store.compareAndSwap(HEAD, Buffer.from('v1'), undefined);
        await store.delete(HEAD);
        const err = await conflictOf(store.compareAndSwap(HEAD, Buffer.from('v2'), e1));
        expect(err.details).toMatchObject({ found: null });
        expect(await store.head(HEAD)).toBeUndefined();
      });

      it('an object replaced behind the writer is refused and the replacement stays', async () => {
        const store = await mk();
        const e1 = await store.compareAndSwap(HEAD, Buffer.from('v1'), undefined);
        const other = otherWriter(mk, store);
        try {
          await other.delete(HEAD);
          await other.compareAndSwap(HEAD, Buffer.from('replaced'), undefined);
        } finally {
          await other.close();
        }
        await conflictOf(store.compareAndSwap(HEAD, Buffer.from('v2'), e1));
        expect((await store.get(HEAD))?.body.toString()).toBe('replaced');
      });

      it('racing writers: exactly one compare-and-swap and one create win', async (ctx) => {
        const store = await mk();
        const probe = await probeConditionalWrites(store);
        if (!conditionalWritesEnforced(probe)) {
          ctx.skip(`${mk.backend} does not enforce conditional writes: ${describeConditionalWrites(probe)}`);
        }
        const e1 = await store.compareAndSwap(HEAD, Buffer.from('v0'), undefined);
        const writers = Array.from({ length: 6 }, () => otherWriter(mk, store));
        try {
          const cas = await Promise.allSettled(
            writers.map((w, i) => w.compareAndSwap(HEAD, Buffer.from(`writer ${i}`), e1)),
          );
          expect(cas.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
          for (const r of cas) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(ConflictError);
          const created = await Promise.allSettled(
            writers.map((w, i) => w.putIfAbsent('fleet/log/000000000001.json', Buffer.from(`entry ${i}`))),
          );
          expect(created.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
        } finally {
          await Promise.all(writers.map((w) => w.close()));
        }
      });
    },
    ['fs', 's3', 'rgw'],
  );
});

describe('conditional writes: S3 ETag forms and a server that refuses them', () => {
  forEachBackend(
    (mk) => {
      it('a multipart ETag works as a compare-and-swap token; a stale one is refused', async () => {
        const store = await mk({ s3: { multipartThreshold: 5 * 1024 * 1024, partSize: 5 * 1024 * 1024 } });
        const big = await store.compareAndSwap(HEAD, randomBytes(6 * 1024 * 1024), undefined);
        // s3rver does not make multipart ETags; RGW (like AWS) gives "<md5 of the part md5s>-<parts>".
        expect(big).toMatch(mk.backend === 'rgw' ? /^"[0-9a-f]{32}-2"$/ : /./);
        const next = await store.compareAndSwap(HEAD, Buffer.from('small'), big);
        await conflictOf(store.compareAndSwap(HEAD, Buffer.from('again'), big));
        expect((await store.head(HEAD))?.etag).toBe(next);
      });

      it('a server refusing a compare-and-swap whose precondition holds is reported as broken, not as a race', async () => {
        const s3 = mk.s3;
        const store = await mk();
        if (!(store instanceof S3Store) || !s3) throw new Error('S3 only');
        const proxy = await startFaultProxy(s3.endpoint);
        const isIfMatchPut = (r: { method?: string; headers: Record<string, unknown> }) =>
          r.method === 'PUT' && r.headers['if-match'] !== undefined;
        const broken = new S3Store(store.bucket, store.prefix, {
          env: { ...s3.env, AWS_ENDPOINT_URL_S3: proxy.endpoint },
          enforcesConditionalWrites: true,
        });
        try {
          const e1 = await broken.compareAndSwap(HEAD, Buffer.from('v1'), undefined);
          proxy.fail({ status: 412, times: Infinity, match: isIfMatchPut });
          const err = await broken.compareAndSwap(HEAD, Buffer.from('v2'), e1).catch((e: unknown) => e);
          expect(err).toBeInstanceOf(OperationalError);
          expect(err).not.toBeInstanceOf(ConflictError);
          expect((err as OperationalError).code).toBe('E_CAS_REFUSED');
          expect((err as Error).message).toMatch(/still has the expected ETag/);
          expect((await store.get(HEAD))?.body.toString()).toBe('v1');
          const probe = await broken.probeConditionalWrites();
          expect(probe.compareAndSwap).toBe('broken');
          expect(describeConditionalWrites(probe)).toMatch(
            /compare-and-swap: broken \[.*HTTP 412 \(refused, expected accepted\)/,
          );
        } finally {
          await broken.close();
          await proxy.stop();
        }
      });
    },
    ['s3', 'rgw'],
  );
});
