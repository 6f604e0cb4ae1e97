/** S3-only behaviour of S3Store against s3rver (the shared contract is in store-contract.test.ts). */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OperationalError, UserError } from '../../src/foundation/errors.js';
import { openStore } from '../../src/registry/open-store.js';
import { S3Store } from '../../src/registry/s3-store.js';
import { startS3, type S3Fixture } from '../helpers/s3.js';

let s3: S3Fixture;
beforeAll(async () => {
  s3 = await startS3();
});
afterAll(async () => {
  await s3.stop();
});

describe('S3Store', () => {
  it('keeps registries under different prefixes apart', async () => {
    const a = await openStore(`${s3.url}-a`, { s3: { env: s3.env } });
    const b = await openStore(`${s3.url}-b/nested/`, { s3: { env: s3.env } });
    await a.putIfAbsent('fleet/head.json', Buffer.from('a'));
    expect(await b.get('fleet/head.json')).toBeUndefined();
    expect(await b.list('')).toEqual([]);
    expect((await a.list('')).map((o) => o.key)).toEqual(['fleet/head.json']);
    expect(b.url).toBe(`${s3.url}-b/nested`);
    await Promise.all([a.close(), b.close()]);
  });

  it('probes conditional writes: s3rver ignores If-None-Match, and the probe cleans up', async () => {
    const store = new S3Store(s3.bucket, 'probe', { env: s3.env, enforcesConditionalWrites: true });
    expect(await store.probeConditionalWrites()).toMatchObject({
      createOnly: 'not-enforced',
      compareAndSwap: 'not-enforced',
    });
    expect(store.enforcesConditionalWrites).toBe(false);
    expect(await store.list('')).toEqual([]);
    await store.close();
  });

  it('without enforced conditional writes, a stale CAS is still caught by the pre-check', async () => {
    const store = new S3Store(s3.bucket, 'cas', { env: s3.env, enforcesConditionalWrites: false });
    const e1 = await store.compareAndSwap('fleet/head.json', Buffer.from('1'), undefined);
    await store.compareAndSwap('fleet/head.json', Buffer.from('2'), e1);
    await expect(store.compareAndSwap('fleet/head.json', Buffer.from('3'), e1)).rejects.toThrow(
      /changed by another writer/,
    );
    await store.close();
  });

  it('names a missing bucket', async () => {
    const store = new S3Store('no-such-bucket', 'x', { env: s3.env });
    const err = await store.get('fleet/head.json').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OperationalError);
    expect((err as Error).message).toMatch(/bucket no-such-bucket does not exist/);
    await store.close();
  });

  it('fails fast and clearly when nothing listens, counting each attempt', async () => {
    const dead = await startS3();
    await dead.stop();
    const store = new S3Store(dead.bucket, 'x', { env: dead.env, maxAttempts: 2 });
    const started = Date.now();
    const err = await store.head('fleet/head.json').catch((e: unknown) => e);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(err).toBeInstanceOf(OperationalError);
    expect((err as OperationalError).code).toBe('E_REGISTRY_UNREACHABLE');
    expect(store.stats.requests).toBe(2);
    await store.close();
  });

  it('refuses other URL schemes', async () => {
    await expect(openStore('http://example.com/registry')).rejects.toBeInstanceOf(UserError);
    await expect(openStore('file:relative/path')).rejects.toThrow(/absolute directory/);
  });
});
