/**
 * Every registry read is bounded before it is buffered (limits.ts), on both backends: an object of
 * each kind over its cap is refused (exit 4) without a byte of it being read, a caller's cap is
 * honoured, a ranged read pins the object's exact size and is itself capped. On the directory
 * backend sparse 5 GB files stand in for huge objects under the default caps (they cost no disk);
 * on S3, small configured caps, and a proxy in front of s3rver that streams more than it declares.
 */
import { truncateSync, mkdirSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { expect, it } from 'vitest';
import { ExitCode } from '../../src/foundation/errors.js';
import { FsStore } from '../../src/registry/fs-store.js';
import {
  HEAD_KEY,
  artifactKey,
  blobKey,
  feedbackKey,
  fleetLogKey,
  snapshotKey,
  trustRootKey,
} from '../../src/registry/layout.js';
import { DEFAULT_LIMITS, registryLimits, type LimitKind } from '../../src/registry/limits.js';
import { S3Store } from '../../src/registry/s3-store.js';
import type { Store } from '../../src/registry/store.js';
import { tempDir } from '../artifact/fixtures.js';
import { fakeDigest } from '../fleet/fixtures.js';
import { forEachBackend } from '../helpers/stores.js';

const KEYS: Record<Exclude<LimitKind, 'other'>, string> = {
  head: HEAD_KEY,
  entry: fleetLogKey(1),
  snapshot: snapshotKey(1),
  manifest: artifactKey('model', 'draft', '1.0.0'),
  trustRoot: trustRootKey(1),
  feedback: feedbackKey('store-001', 1),
  blob: blobKey(fakeDigest('blob')),
};

const CAP = 1000;
const smallCaps = Object.fromEntries(Object.keys(KEYS).map((k) => [k, CAP]));

async function rejection(p: Promise<unknown>): Promise<{ code?: string; exitCode?: number }> {
  return p.then(
    () => ({}),
    (e: unknown) => e as { code?: string; exitCode?: number },
  );
}

/** The read was refused as too large, and not a byte of the object was read. */
async function expectRefusedUnread(store: Store, p: Promise<unknown>): Promise<void> {
  const before = store.stats.bytesRead;
  expect(await rejection(p)).toMatchObject({ code: 'E_OBJECT_TOO_LARGE', exitCode: ExitCode.Verification });
  expect(store.stats.bytesRead).toBe(before);
}

forEachBackend((mk) => {
  it('an object of each kind over its cap is refused before it is read; at the cap it is read', async () => {
    const store = await mk({ limits: smallCaps });
    for (const key of Object.values(KEYS)) {
      await store.putIfAbsent(key, Buffer.alloc(CAP + 1, 1));
      await expectRefusedUnread(store, store.get(key));
      await expectRefusedUnread(store, store.getIfChanged(key, undefined));
      await expectRefusedUnread(store, store.getIfChanged(key, '"an-older-etag"'));
      await store.delete(key);
      await store.putIfAbsent(key, Buffer.alloc(CAP, 2));
      expect((await store.get(key))?.body.length).toBe(CAP);
    }
  });

  it("a caller's smaller cap is honoured; a larger one does not lift the kind's cap", async () => {
    const store = await mk({ limits: { head: CAP } });
    await store.putIfAbsent(HEAD_KEY, Buffer.alloc(600, 1));
    await expectRefusedUnread(store, store.get(HEAD_KEY, { maxBytes: 599 }));
    expect((await store.get(HEAD_KEY, { maxBytes: 600 }))?.body.length).toBe(600);
    await store.delete(HEAD_KEY);
    await store.putIfAbsent(HEAD_KEY, Buffer.alloc(CAP + 1, 1));
    await expectRefusedUnread(store, store.get(HEAD_KEY, { maxBytes: 10 * CAP }));
  });

  it('a ranged read pins the exact object size and is refused past the range cap', async () => {
    const store = await mk();
    const key = blobKey(fakeDigest('pack'));
    await store.putIfAbsent(key, Buffer.alloc(100, 7));
    expect((await store.getRange(key, 90, 100, { objectSize: 100 })).length).toBe(10);
    for (const declared of [99, 101, 2 ** 52]) {
      expect(await rejection(store.getRange(key, 0, 10, { objectSize: declared }))).toMatchObject({
        code: 'E_OBJECT_SIZE',
      });
    }
    if (store.getRangeInto) {
      const target = new Uint8Array(10);
      expect(await rejection(store.getRangeInto(key, 0, target, { objectSize: 101 }))).toMatchObject({
        code: 'E_OBJECT_SIZE',
      });
    }
    // 1 TiB: refused before a buffer is allocated or a request is sent.
    const requests = store.stats.requests;
    expect(await rejection(store.getRange(key, 0, 2 ** 40))).toMatchObject({
      code: 'E_RANGE_TOO_LARGE',
      exitCode: ExitCode.Verification,
    });
    expect(store.stats.requests).toBe(requests);
  });
});

it('fs: sparse 5 GB objects of every kind are refused under the default caps, unread', async () => {
  const root = tempDir('edgectl-bounded-');
  const store = new FsStore(root);
  for (const key of Object.values(KEYS)) {
    const path = join(root, key);
    mkdirSync(dirname(path), { recursive: true });
    await store.putIfAbsent(key, Buffer.from('x'));
    truncateSync(path, 5 * 1024 ** 3);
    await expectRefusedUnread(store, store.get(key));
    await expectRefusedUnread(store, store.getIfChanged(key, 'some-etag'));
  }
  await store.close();
});

it('caps come from EDGECTL_MAX_*_BYTES; a bad value is invalid input', () => {
  expect(registryLimits({ EDGECTL_MAX_SNAPSHOT_BYTES: '1073741824' }).snapshot).toBe(1024 ** 3);
  expect(registryLimits({}).head).toBe(DEFAULT_LIMITS.head);
  const store = new S3Store('bucket', 'p', {
    env: { AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:9', EDGECTL_MAX_HEAD_BYTES: '77' },
  });
  expect(store.limits.head).toBe(77);
  for (const bad of ['0', '-1', '12kb', '99999999999999']) {
    expect(() => registryLimits({ EDGECTL_MAX_ENTRY_BYTES: bad })).toThrow(
      expect.objectContaining({ code: 'E_LIMIT_INVALID', exitCode: ExitCode.Usage }),
    );
  }
});

/**
 * A proxy in front of s3rver that answers every GET with no Content-Length (chunked) and `extra`
 * bytes after the real body: a server lying about what it sends.
 */
async function lyingProxy(target: string, extra: number): Promise<{ url: string; server: Server }> {
  const upstream = new URL(target);
  const server = createServer((req, res) => {
    const up = request(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
      },
      (r) => {
        const headers = { ...r.headers };
        delete headers['content-length'];
        res.writeHead(r.statusCode ?? 500, headers);
        r.on('data', (d: Buffer) => res.write(d));
        r.on('end', () => {
          if (req.method !== 'GET' || (r.statusCode ?? 500) >= 300) return void res.end();
          let left = extra;
          const block = Buffer.alloc(64 * 1024, 0x41);
          const pump = () => {
            while (left > 0 && !res.destroyed) {
              left -= block.length;
              if (!res.write(block)) return void res.once('drain', pump);
            }
            res.end();
          };
          pump();
        });
      },
    );
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

forEachBackend(
  (mk) => {
    it('a server streaming more than it declares is cut off at the cap', async () => {
      const direct = await mk();
      const s3 = mk.s3;
      if (!(direct instanceof S3Store) || !s3) throw new Error('s3 only');
      await direct.putIfAbsent(HEAD_KEY, Buffer.from('{"a head":1}'));
      await direct.putIfAbsent(KEYS.blob, Buffer.alloc(100, 3));
      const proxy = await lyingProxy(s3.endpoint, 64 * 1024 * 1024);
      try {
        const lying = new S3Store(s3.bucket, direct.prefix, {
          env: { ...s3.env, AWS_ENDPOINT_URL_S3: proxy.url },
          maxAttempts: 1,
        });
        await expectRefusedUnread(lying, lying.get(HEAD_KEY));
        expect(lying.stats.bytesRead).toBe(0);
        expect(await rejection(lying.getRange(KEYS.blob, 0, 10))).toMatchObject({
          code: 'E_RANGE_OVERRUN',
          exitCode: ExitCode.Verification,
        });
        await lying.close();
      } finally {
        proxy.server.closeAllConnections();
        await new Promise((r) => proxy.server.close(r));
      }
    });
  },
  ['s3'],
);
