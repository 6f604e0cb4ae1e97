/**
 * Verifying a published artifact in place (DESIGN: Artifacts): the manifest's signature under the
 * trust root's `artifacts` role (the caller walks the registry's trust chain from the pinned root),
 * the manifest's schema and consistency, every blob's size (a blob larger or smaller than the signed
 * manifest says is refused), every chunk's SHA-256 and every file's SHA-256 and size. Any mismatch
 * is a VerificationError (exit 4) naming the file and chunk. Nothing is written anywhere.
 *
 * Files are streamed front to back with ranged reads prefetched `concurrency` deep; chunk hashes
 * run on a worker thread (hash-pool.ts) while the main thread computes the file hashes, so the two
 * hashes of every byte cost about one on a two-core machine.
 */
import { NotFoundError, OperationalError, VerificationError } from '../cli/errors.js';
import { blobKey } from '../registry/layout.js';
import type { Store } from '../registry/store.js';
import type { TrustRoot } from '../registry/trust.js';
import { mapConcurrent } from './concurrency.js';
import { chunkMismatch, readBlobRange } from './fetch.js';
import { StreamHasher, sha256Range } from './hash-pool.js';
import { resolveRef } from './manifest-store.js';
import type { Manifest } from './manifest.js';
import { createProgress, type Progress } from './progress.js';
import { planOrderedRanges, type RangePiece, type ReadRange } from './ranges.js';
import { parseRef, type ArtifactRef } from './ref.js';
import type { Io } from '../cli/output.js';
import { formatBytes } from '../cli/output.js';

export interface VerifyOptions {
  store: Store;
  ref: ArtifactRef | string;
  /** The registry's trust root, walked from the pinned root (loadRegistryTrust). */
  trust: TrustRoot;
  io: Io;
  /** Ranged reads in flight (default 4). */
  concurrency?: number;
  progress?: Progress;
  /** Range size for streaming reads (default 16 MiB). */
  rangeBytes?: number;
}

export interface VerifyResult {
  ref: string;
  manifestDigest: string;
  signedBy: string[];
  files: number;
  chunks: number;
  blobs: number;
  bytesVerified: number;
  requests: number;
}

interface Tag {
  file: number;
  index: number;
}

/**
 * Refuses blobs larger than the manifest's blobs table says: a one-byte ranged read just past the
 * declared end must find nothing. (A HEAD would do on S3, but the directory backend hashes the whole
 * object to answer one.) Missing blobs are refused too; a truncated blob fails when its chunks are read.
 */
export async function checkBlobSizes(
  store: Store,
  m: Manifest,
  what: string,
  concurrency = 8,
): Promise<void> {
  await mapConcurrent(m.blobs, concurrency, async (b) => {
    let extra: Buffer | undefined;
    try {
      extra = await store.getRange(blobKey(b.digest), b.size, b.size + 1);
    } catch (err) {
      if (err instanceof NotFoundError) {
        throw new VerificationError(`${what}: blob ${b.digest} is missing from the registry`, {
          code: 'E_BLOB_MISSING',
          suggestion: 'the registry lost data the manifest needs; republish the artifact from its source',
          details: { blob: b.digest },
        });
      }
      if (err instanceof OperationalError && err.code === 'E_RANGE') return;
      throw err;
    }
    if (extra.length > 0) {
      throw new VerificationError(
        `${what}: blob ${b.digest} is larger than the ${b.size} bytes the signed manifest says (extra bytes were added)`,
        {
          code: 'E_BLOB_SIZE',
          suggestion: 'the registry copy was modified; republish the artifact from its source',
          details: { blob: b.digest, expected: b.size },
        },
      );
    }
  });
}

/**
 * Starting share of each range's chunk bytes hashed on the main thread. The worker hashes every byte
 * once for the file hashes plus the rest of the chunks; the main thread reads. With reads costing r
 * hash passes the threads balance at 1 - r/2; the share then adapts: up when the main thread had to
 * wait for the worker, down when the worker sat idle.
 */
const INITIAL_MAIN_SHARE = 0.75;
const SHARE_STEP = 0.05;
/** Ranges handed to the worker and not yet answered (bounds memory when the worker lags). */
const MAX_QUEUED_JOBS = 3;

function fileMismatch(what: string, path: string, actual: string, expected: string): VerificationError {
  return new VerificationError(
    `${what}: file ${path} hashes to ${actual}, the signed manifest says ${expected}`,
    {
      code: 'E_FILE_HASH',
      suggestion: 'the manifest does not match its chunks; republish the artifact from its source',
      details: { file: path },
    },
  );
}

/**
 * Streams every file through the hash checks (see the module comment): ranges are read in file
 * order, `concurrency` deep; each chunk digest and each file digest is compared with the manifest.
 * Chunk mismatches are reported before the file mismatch they cause.
 */
export async function verifyManifestContent(
  store: Store,
  m: Manifest,
  what: string,
  opts: { concurrency?: number; rangeBytes?: number; onBytes?: (n: number) => void } = {},
): Promise<number> {
  const emptySha = sha256Range(new Uint8Array(0), 0, 0);
  for (const f of m.files) {
    if (f.chunks.length === 0 && f.sha256 !== emptySha) throw fileMismatch(what, f.path, emptySha, f.sha256);
  }
  const items = m.files.flatMap((f, file) =>
    f.chunks.map((chunk, index) => ({ chunk, tag: { file, index } })),
  );
  const ranges = planOrderedRanges<Tag>(items, {
    maxRangeBytes: opts.rangeBytes ?? 16 * 1024 * 1024,
    maxGapBytes: 0,
  });
  const depth = Math.max(1, opts.concurrency ?? 4);
  const placeOf = (t: Tag) => ({ path: m.files[t.file]?.path ?? '', index: t.index });
  const fetch = (r: ReadRange<Tag>) => {
    const first = r.pieces[0]?.tag;
    return readBlobRange(store, what, r.blob, r.start, r.end, first && placeOf(first));
  };
  const hasher = new StreamHasher();
  const inflight: Promise<Buffer>[] = [];
  const jobs: Promise<void>[] = [];
  let next = 0;
  let verified = 0;
  let share = INITIAL_MAIN_SHARE;
  try {
    for (; next < Math.min(depth, ranges.length); next++)
      inflight.push(fetch(ranges[next] as ReadRange<Tag>));
    for (const r of ranges) {
      const bytes = await (inflight.shift() as Promise<Buffer>);
      if (next < ranges.length) inflight.push(fetch(ranges[next++] as ReadRange<Tag>));
      const rangeBytes = r.pieces.reduce((n, p) => n + p.chunk.size, 0);
      let mainBytes = 0;
      const toWorker: RangePiece<Tag>[] = [];
      const segments: [number, number, number][] = [];
      const close: number[] = [];
      for (const p of r.pieces) {
        if (mainBytes < rangeBytes * share) {
          const actual = sha256Range(bytes, p.at, p.chunk.size);
          if (actual !== p.chunk.digest) {
            // Earlier ranges still on the worker come first in file order.
            for (const j of jobs) await j;
            throw chunkMismatch(what, p.chunk, placeOf(p.tag), actual);
          }
          mainBytes += p.chunk.size;
        } else toWorker.push(p);
        const last = segments.at(-1);
        if (last && last[0] === p.tag.file && last[1] + last[2] === p.at) last[2] += p.chunk.size;
        else segments.push([p.tag.file, p.at, p.chunk.size]);
        if (p.tag.index === (m.files[p.tag.file]?.chunks.length ?? 0) - 1) close.push(p.tag.file);
      }
      if (hasher.queued >= MAX_QUEUED_JOBS) {
        share = Math.min(1, share + SHARE_STEP);
        await jobs[jobs.length - MAX_QUEUED_JOBS];
      } else if (hasher.queued === 0) share = Math.max(0, share - SHARE_STEP);
      const done = hasher.submit(bytes, {
        chunks: toWorker.map((p) => [p.at, p.chunk.size] as const),
        segments,
        close,
      });
      jobs.push(
        done.then(({ chunkDigests, fileDigests }) => {
          chunkDigests.forEach((actual, j) => {
            const p = toWorker[j];
            if (p && actual !== p.chunk.digest) throw chunkMismatch(what, p.chunk, placeOf(p.tag), actual);
          });
          for (const [file, actual] of fileDigests) {
            const f = m.files[file];
            if (f && actual !== f.sha256) throw fileMismatch(what, f.path, actual, f.sha256);
          }
        }),
      );
      // Awaited below in order; this only keeps an early rejection from being reported as unhandled.
      jobs.at(-1)?.catch(() => undefined);
      verified += rangeBytes;
      opts.onBytes?.(verified);
    }
    // In order, so the first failure in file order is the one reported.
    for (const j of jobs) await j;
  } finally {
    await Promise.allSettled(inflight);
    await Promise.allSettled(jobs);
    await hasher.close();
  }
  return verified;
}

export async function verifyArtifact(opts: VerifyOptions): Promise<VerifyResult> {
  const { store } = opts;
  const start = store.stats.requests;
  const progress = opts.progress ?? createProgress(opts.io);
  const ref = typeof opts.ref === 'string' ? parseRef(opts.ref) : opts.ref;
  const loaded = await resolveRef(store, ref, opts.trust);
  const m = loaded.manifest;
  await progress.step(`Checking ${m.blobs.length} blob(s) of ${loaded.ref}`, () =>
    checkBlobSizes(store, m, loaded.ref),
  );
  const bytesVerified = await progress.step(
    `Verifying ${formatBytes(m.size)} in ${m.files.length} file(s)`,
    (report) =>
      verifyManifestContent(store, m, loaded.ref, {
        concurrency: opts.concurrency,
        rangeBytes: opts.rangeBytes,
        onBytes: (n) => report(`${formatBytes(n)} of ${formatBytes(m.size)}`),
      }),
  );
  return {
    ref: loaded.ref,
    manifestDigest: loaded.digest,
    signedBy: loaded.signedBy,
    files: m.files.length,
    chunks: m.files.reduce((n, f) => n + f.chunks.length, 0),
    blobs: m.blobs.length,
    bytesVerified,
    requests: store.stats.requests - start,
  };
}
