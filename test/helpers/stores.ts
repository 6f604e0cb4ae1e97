/**
 * Runs the same tests on several Store backends: a temp directory (FsStore), s3rver (S3Store) and,
 * when asked for (`['fs', 's3', 'rgw']`), the run's Ceph RGW (test/helpers/rgw.ts). Where RGW is not
 * available its block is skipped with the reason in its name (never silently).
 *
 *   forEachBackend((mk) => {
 *     it('round-trips', async () => {
 *       const store = await mk();          // a fresh, empty store for this test
 *       await store.putIfAbsent('a/b', Buffer.from('x'));
 *     });
 *   });
 *
 * Each backend gets its own `describe` block named `fs`, `s3` or `rgw`. `mk()` returns a new empty store
 * (a new directory, or a new prefix in the shared bucket); stores and the server are closed after
 * the block. `mk.backend` says which backend runs and `mk.s3` holds the S3 fixture on s3 and rgw.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe } from 'vitest';
import { FsStore } from '../../src/registry/fs-store.js';
import { S3Store, type S3StoreOptions } from '../../src/registry/s3-store.js';
import type { RegistryLimits } from '../../src/registry/limits.js';
import type { Store } from '../../src/registry/store.js';
import { rgwSkipReason, startRgw } from './rgw.js';
import { startS3, type S3Fixture } from './s3.js';

export type Backend = 'fs' | 's3' | 'rgw';

export interface MakeStore {
  /** `limits` sets read caps on either backend (limits.ts), e.g. small ones to test refusals. */
  (opts?: { s3?: Omit<S3StoreOptions, 'env'>; limits?: Partial<RegistryLimits> }): Promise<Store>;
  backend: Backend;
  /** The S3 fixture (s3rver or RGW; only on those backends, after beforeAll ran). */
  s3: S3Fixture | undefined;
}

export function forEachBackend(body: (mk: MakeStore) => void, backends: Backend[] = ['fs', 's3']): void {
  for (const backend of backends) {
    const skip = backend === 'rgw' ? rgwSkipReason() : undefined;
    if (skip) {
      describe.skip(`rgw (SKIPPED: ${skip})`, () =>
        body(Object.assign(async () => undefined as never, { backend, s3: undefined })));
      continue;
    }
    describe(backend, () => {
      const open: Store[] = [];
      const dirs: string[] = [];
      let counter = 0;
      const mk = (async (opts = {}) => {
        let store: Store;
        if (backend === 'fs') {
          const dir = mkdtempSync(join(tmpdir(), 'edgectl-store-'));
          dirs.push(dir);
          store = new FsStore(join(dir, 'registry'), opts.limits ? { limits: opts.limits } : {});
        } else {
          if (!mk.s3) throw new Error(`${backend} is not running (call mk() inside a test)`);
          store = new S3Store(mk.s3.bucket, `t${++counter}-${process.pid}`, {
            ...opts.s3,
            ...(opts.limits ? { limits: opts.limits } : {}),
            env: mk.s3.env,
          });
        }
        open.push(store);
        return store;
      }) as MakeStore;
      mk.backend = backend;
      mk.s3 = undefined;
      if (backend !== 'fs') {
        beforeAll(async () => {
          mk.s3 = backend === 'rgw' ? await startRgw() : await startS3();
        }, 200_000);
        afterAll(async () => {
          await mk.s3?.stop();
        });
      }
      afterEach(async () => {
        await Promise.all(open.splice(0).map((s) => s.close()));
        for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
      });
      body(mk);
    });
  }
}

/** forEachBackend on all three backends: fs, s3rver and Ceph RGW. */
export function forAllBackends(body: (mk: MakeStore) => void): void {
  forEachBackend(body, ['fs', 's3', 'rgw']);
}
