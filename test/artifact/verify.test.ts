/**
 * The verify read path (verify.ts, hash-pool.ts) on a real directory registry: ranges streamed
 * through a few reused shared buffers with many more ranges than buffers, ranges larger than a
 * buffer (one oversize chunk), repeated chunks, a store without `getRangeInto` (copy fallback), and
 * which failure is reported first when a chunk and a file hash are both wrong.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ExitCode, type EdgectlError } from '../../src/foundation/errors.js';
import type { Manifest } from '../../src/artifact/manifest.js';
import { readManifest } from '../../src/artifact/manifest-store.js';
import { verifyManifestContent } from '../../src/artifact/verify.js';
import { FsStore } from '../../src/registry/fs-store.js';
import { blobKey } from '../../src/registry/layout.js';
import type { Store } from '../../src/registry/store.js';
import { makeModelDir, overwrite, publish, seededBytes, setupRegistry, tempDir } from './fixtures.js';

const KiB = 1024;

async function published(): Promise<{ store: FsStore; m: Manifest }> {
  const store = new FsStore(tempDir('edgectl-verify-'));
  const fx = await setupRegistry(store);
  const dir = makeModelDir(tempDir(), { weights: seededBytes(3 * 1024 * KiB, 5) });
  // A file of one repeated block: its chunks repeat, so read ranges hold overlapping pieces.
  writeFileSync(join(dir, 'zeros.bin'), Buffer.alloc(1024 * KiB));
  await publish(fx, dir);
  const loaded = await readManifest(store, 'model', 'draft', '1.0.0', fx.trust);
  if (!loaded) throw new Error('manifest missing');
  return { store, m: loaded.manifest };
}

/** The same store seen through getRange only (as a backend without getRangeInto). */
function rangeOnly(store: Store): Store {
  return {
    url: store.url,
    enforcesConditionalWrites: store.enforcesConditionalWrites,
    stats: store.stats,
    limits: store.limits,
    resetStats: () => store.resetStats(),
    get: (k, o) => store.get(k, o),
    getIfChanged: (k, e, o) => store.getIfChanged(k, e, o),
    getRange: (k, s, e, o) => store.getRange(k, s, e, o),
    head: (k) => store.head(k),
    list: (p) => store.list(p),
    putIfAbsent: (k, b) => store.putIfAbsent(k, b),
    compareAndSwap: (k, b, e) => store.compareAndSwap(k, b, e),
    delete: (k) => store.delete(k),
    close: () => store.close(),
  };
}

const contentBytes = (m: Manifest) => m.files.reduce((n, f) => n + f.size, 0);

async function failure(p: Promise<unknown>): Promise<EdgectlError> {
  const err = await p.then(
    () => {
      throw new Error('expected a failure');
    },
    (e: unknown) => e,
  );
  return err as EdgectlError;
}

/** Flips one byte of a chunk in its pack. */
async function corrupt(store: Store, m: Manifest, path: string, index: number): Promise<void> {
  const chunk = m.files.find((f) => f.path === path)?.chunks[index];
  if (!chunk) throw new Error(`fixture: no chunk ${index} in ${path}`);
  const pack = Buffer.from((await store.get(blobKey(chunk.blob)))?.body as Buffer);
  pack[chunk.offset + 1] = (pack[chunk.offset + 1] as number) ^ 0x55;
  await overwrite(store, blobKey(chunk.blob), pack);
}

describe('verifyManifestContent', () => {
  it('streams many more ranges than buffers, oversize ranges and repeated chunks, with and without getRangeInto', async () => {
    const { store, m } = await published();
    const weights = m.files.find((f) => f.path === 'weights.bin');
    const zeros = m.files.find((f) => f.path === 'zeros.bin');
    expect(weights?.chunks.length).toBeGreaterThan(12);
    // The repeated block really deduplicated to chunks read more than once.
    expect(new Set(zeros?.chunks.map((c) => c.digest)).size).toBeLessThan(zeros?.chunks.length ?? 0);
    for (const s of [store, rangeOnly(store)]) {
      // 96 KiB ranges with depth 1: 3 shared buffers for dozens of ranges, and every chunk larger
      // than 96 KiB read into a buffer of its own.
      for (const opts of [
        { rangeBytes: 96 * KiB, concurrency: 1 },
        { rangeBytes: 512 * KiB, concurrency: 3 },
        {},
      ]) {
        let last = 0;
        const n = await verifyManifestContent(s, m, 'model/draft@1.0.0', {
          ...opts,
          onBytes: (b) => {
            expect(b).toBeGreaterThan(last);
            last = b;
          },
        });
        expect(n).toBe(contentBytes(m));
        expect(last).toBe(n);
      }
    }
  });

  it('a corrupt chunk in a late range, read through reused buffers: names the file and chunk', async () => {
    const { store, m } = await published();
    const index = (m.files.find((f) => f.path === 'weights.bin')?.chunks.length ?? 0) - 2;
    await corrupt(store, m, 'weights.bin', index);
    for (const s of [store, rangeOnly(store)]) {
      const err = await failure(
        verifyManifestContent(s, m, 'model/draft@1.0.0', { rangeBytes: 128 * KiB, concurrency: 2 }),
      );
      expect(err.exitCode).toBe(ExitCode.Verification);
      expect(err.code).toBe('E_CHUNK_HASH');
      expect(err.message).toMatch(new RegExp(`file weights\\.bin chunk ${index} is corrupt`));
    }
  });

  it('reports the first failure in file order: an earlier file hash before a later chunk', async () => {
    const { store, m } = await published();
    const files = m.files.map((f) => f.path);
    const first = files.indexOf('weights.bin') < files.indexOf('zeros.bin') ? 'weights.bin' : 'zeros.bin';
    const later = first === 'weights.bin' ? 'zeros.bin' : 'weights.bin';
    const wrong = `sha256:${'0'.repeat(64)}`;
    const forged: Manifest = {
      ...m,
      files: m.files.map((f) => (f.path === first ? { ...f, sha256: wrong } : f)),
    };
    await corrupt(store, m, later, 0);
    for (const rangeBytes of [64 * KiB, 16 * 1024 * KiB]) {
      const err = await failure(verifyManifestContent(store, forged, 'x', { rangeBytes }));
      expect(err.code).toBe('E_FILE_HASH');
      expect(err.message).toContain(`file ${first} hashes to`);
    }
    // Without the earlier file's fault, the later chunk is what fails.
    const err = await failure(verifyManifestContent(store, m, 'x', { rangeBytes: 64 * KiB }));
    expect(err.code).toBe('E_CHUNK_HASH');
    expect(err.message).toContain(`file ${later} chunk 0 is corrupt`);
  });

  it('a chunk and the file hash of the same file both wrong: the chunk is reported', async () => {
    const { store, m } = await published();
    const last = (m.files.find((f) => f.path === 'weights.bin')?.chunks.length ?? 0) - 1;
    await corrupt(store, m, 'weights.bin', last);
    for (const rangeBytes of [64 * KiB, 16 * 1024 * KiB]) {
      const err = await failure(verifyManifestContent(store, m, 'x', { rangeBytes }));
      expect(err.code).toBe('E_CHUNK_HASH');
      expect(err.message).toContain(`file weights.bin chunk ${last} is corrupt`);
    }
  });

  it('a truncated pack: exit 4 naming the blob, buffers released', async () => {
    const { store, m } = await published();
    const chunk = m.files.find((f) => f.path === 'weights.bin')?.chunks.at(-1);
    if (!chunk) throw new Error('fixture');
    const pack = (await store.get(blobKey(chunk.blob)))?.body as Buffer;
    await overwrite(store, blobKey(chunk.blob), pack.subarray(0, chunk.offset + 10));
    const err = await failure(verifyManifestContent(store, m, 'x', { rangeBytes: 64 * KiB }));
    expect(err.exitCode).toBe(ExitCode.Verification);
    expect(err.code).toBe('E_BLOB_SIZE');
    expect(err.message).toContain(chunk.blob);
  });
});
