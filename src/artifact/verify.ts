/**
 * Verifying a published artifact in place (docs/formats.md "Artifacts"): the manifest's signature under the
 * trust root's `artifacts` role (the caller walks the registry's trust chain from the pinned root),
 * the manifest's schema and consistency, every blob's size (a blob larger or smaller than the signed
 * manifest says is refused), every chunk's SHA-256 and every file's SHA-256 and size. Any mismatch
 * is a VerificationError (exit 4) naming the file and chunk. Nothing is written anywhere.
 *
 * Files are streamed front to back with ranged reads prefetched `concurrency` deep into a few reused
 * shared buffers; the main thread hashes the chunks while a worker thread (hash-pool.ts) hashes the
 * same memory into the file hashes, so the two hashes of every byte cost about one on a two-core
 * machine, and no range is copied or freshly allocated.
 */
import { VerificationError } from '../foundation/errors.js';
import type { Store } from '../registry/store.js';
import type { TrustRoot } from '../registry/trust.js';
import { mapConcurrent } from './concurrency.js';
import { blobSizes, chunkMismatch, readBlobRange, readBlobRangeInto } from './fetch.js';
import { SharedSlots, StreamHasher, sha256Range, type StreamResult } from './hash-pool.js';
import { resolveRef } from './manifest-store.js';
import type { Manifest } from './manifest.js';
import type { Progress } from './progress.js';
import { planOrderedRanges, type ReadRange } from './ranges.js';
import { parseRef, type ArtifactRef } from './ref.js';
import type { Io } from '../foundation/output.js';
import { formatBytes } from '../foundation/output.js';

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
 * Refuses blobs missing or of another size than the manifest's blobs table says (shorter or
 * longer), before any content is streamed: one ranged read of each blob's last byte, with the
 * blob's exact size checked by the same request (fstat, Content-Range). The directory backend's
 * HEAD would hash the whole object, so a HEAD is not used.
 */
export async function checkBlobSizes(
  store: Store,
  m: Manifest,
  what: string,
  concurrency = 8,
): Promise<void> {
  await mapConcurrent(m.blobs, concurrency, async (b) => {
    const start = Math.max(0, b.size - 1);
    await readBlobRange(store, what, b.digest, b.size, start, b.size, undefined);
  });
}

/** Ranges read into shared buffers and not yet hashed by both threads, beyond the reads in flight. */
const EXTRA_SLOTS = 2;

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

/** A range handed to the file-hash worker: settles when the worker is done with its bytes. */
interface FileJob {
  range: number;
  done: Promise<StreamResult>;
}

function placeOf(m: Manifest, t: Tag): { path: string; index: number } {
  return { path: m.files[t.file]?.path ?? '', index: t.index };
}

/** An empty file has no chunks to hash, so its digest is checked here, before any read. */
function checkEmptyFiles(m: Manifest, what: string): void {
  const emptySha = sha256Range(new Uint8Array(0), 0, 0);
  for (const f of m.files) {
    if (f.chunks.length === 0 && f.sha256 !== emptySha) throw fileMismatch(what, f.path, emptySha, f.sha256);
  }
}

/** Throws the first file mismatch (in file order) among files before `beforeFile`. */
function checkFiles(m: Manifest, what: string, res: StreamResult, beforeFile = Infinity): void {
  for (const [file, actual] of res.fileDigests) {
    const f = m.files[file];
    if (f && file < beforeFile && actual !== f.sha256) throw fileMismatch(what, f.path, actual, f.sha256);
  }
}

/** Ranges read ahead in file order into reused shared slots, and the slots given back. */
interface RangePrefetcher {
  /** Reads in flight, oldest first. */
  reads: Promise<Uint8Array>[];
  /** Reads up to `depth` ranges ahead, as far as free slots allow. */
  prefetch: () => void;
  release: (slot: Uint8Array) => void;
}

function rangePrefetcher(
  store: Store,
  m: Manifest,
  what: string,
  ranges: readonly ReadRange<Tag>[],
  limits: { depth: number; rangeBytes: number },
): RangePrefetcher {
  const { depth, rangeBytes } = limits;
  const sizes = blobSizes(m);
  // Slots as large as the largest range within the limit; a range past it (one oversize chunk) gets
  // a buffer of its own.
  const slotBytes = ranges.reduce((n, r) => Math.max(n, Math.min(rangeBytes, r.end - r.start)), 0);
  const slots = new SharedSlots(slotBytes, depth + EXTRA_SLOTS);
  /** A free slot (undefined when all are in use), or an oversize range's own buffer. */
  const bufferFor = (r: ReadRange<Tag>): Uint8Array | undefined =>
    r.end - r.start > slotBytes ? new Uint8Array(new SharedArrayBuffer(r.end - r.start)) : slots.take();
  const release = (slot: Uint8Array) => {
    if (slot.byteLength === slotBytes) slots.give(slot);
  };
  const reads: Promise<Uint8Array>[] = [];
  let next = 0;
  const prefetch = () => {
    while (next < ranges.length && reads.length < depth) {
      const r = ranges[next] as ReadRange<Tag>;
      const slot = bufferFor(r);
      if (!slot) return;
      next++;
      const view = slot.subarray(0, r.end - r.start);
      const first = r.pieces[0]?.tag;
      const blobSize = sizes.get(r.blob) ?? 0;
      const read = readBlobRangeInto(
        store,
        what,
        r.blob,
        blobSize,
        r.start,
        view,
        first && placeOf(m, first),
      ).then(
        () => view,
        (err: unknown) => {
          release(slot);
          throw err;
        },
      );
      // Awaited in order below; this only keeps an early rejection from being reported as unhandled.
      read.catch(() => undefined);
      reads.push(read);
    }
  };
  return { reads, prefetch, release };
}

/** What the file-hash worker does with one range: contiguous per-file segments, and files it ends. */
function fileSegments(
  m: Manifest,
  r: ReadRange<Tag>,
): { segments: [number, number, number][]; close: number[] } {
  const segments: [number, number, number][] = [];
  const close: number[] = [];
  for (const p of r.pieces) {
    const last = segments.at(-1);
    if (last && last[0] === p.tag.file && last[1] + last[2] === p.at) last[2] += p.chunk.size;
    else segments.push([p.tag.file, p.at, p.chunk.size]);
    if (p.tag.index === (m.files[p.tag.file]?.chunks.length ?? 0) - 1) close.push(p.tag.file);
  }
  return { segments, close };
}

/**
 * Checks the chunk digests of range `i`. On a mismatch, the file mismatches of files that ended
 * earlier, in file order, are thrown first.
 */
async function checkChunks(
  m: Manifest,
  what: string,
  r: ReadRange<Tag>,
  i: number,
  bytes: Uint8Array,
  jobs: readonly FileJob[],
): Promise<void> {
  for (const p of r.pieces) {
    const actual = sha256Range(bytes, p.at, p.chunk.size);
    if (actual !== p.chunk.digest) {
      for (const j of jobs) checkFiles(m, what, await j.done, j.range < i ? Infinity : p.tag.file);
      throw chunkMismatch(what, p.chunk, placeOf(m, p.tag), actual);
    }
  }
}

/**
 * Streams every file through the hash checks (see the module comment): ranges are read in file
 * order, `concurrency` deep, into a few reused shared buffers; the main thread checks each chunk
 * digest while the worker feeds the same bytes to the file digests. Every chunk digest and every
 * file digest is compared with the manifest. The first failure in file order is reported, and
 * chunk mismatches before the file mismatch they cause.
 */
export async function verifyManifestContent(
  store: Store,
  m: Manifest,
  what: string,
  opts: {
    concurrency?: number;
    rangeBytes?: number;
    onBytes?: (n: number) => void;
    /**
     * A hash worker started earlier, for this one manifest (it keeps running file hashes), which
     * the caller closes: its start-up then overlaps other work.
     */
    hasher?: StreamHasher;
  } = {},
): Promise<number> {
  checkEmptyFiles(m, what);
  const items = m.files.flatMap((f, file) =>
    f.chunks.map((chunk, index) => ({ chunk, tag: { file, index } })),
  );
  const rangeBytes = opts.rangeBytes ?? 16 * 1024 * 1024;
  const ranges = planOrderedRanges<Tag>(items, { maxRangeBytes: rangeBytes, maxGapBytes: 0 });
  const depth = Math.max(1, opts.concurrency ?? 4);
  const { reads, prefetch, release } = rangePrefetcher(store, m, what, ranges, { depth, rangeBytes });
  const hasher = opts.hasher ?? new StreamHasher();
  const jobs: FileJob[] = [];
  let verified = 0;
  try {
    for (let i = 0; i < ranges.length; i++) {
      const r = ranges[i] as ReadRange<Tag>;
      prefetch();
      // Every slot is still being hashed by the worker: wait for the oldest.
      while (reads.length === 0) {
        const oldest = jobs.shift() as FileJob;
        checkFiles(m, what, await oldest.done);
        prefetch();
      }
      const bytes = await (reads.shift() as Promise<Uint8Array>);
      // The worker starts on the file hashes before this thread hashes the chunks of the same bytes.
      const done = hasher.submit(bytes, { chunks: [], ...fileSegments(m, r) });
      const slot = new Uint8Array(bytes.buffer);
      jobs.push({
        range: i,
        done: done.finally(() => release(slot)),
      });
      jobs.at(-1)?.done.catch(() => undefined);
      // Refill the freed read depth before hashing for a while.
      prefetch();
      await checkChunks(m, what, r, i, bytes, jobs);
      verified += r.pieces.reduce((n, p) => n + p.chunk.size, 0);
      opts.onBytes?.(verified);
    }
    // In order, so the first failure in file order is the one reported.
    while (jobs.length > 0) checkFiles(m, what, await (jobs.shift() as FileJob).done);
  } finally {
    await Promise.allSettled(reads);
    await Promise.allSettled(jobs.map((j) => j.done));
    if (!opts.hasher) await hasher.close();
  }
  return verified;
}

export async function verifyArtifact(opts: VerifyOptions): Promise<VerifyResult> {
  const { store } = opts;
  const start = store.stats.requests;
  const progress = opts.progress ?? opts.io;
  const ref = typeof opts.ref === 'string' ? parseRef(opts.ref) : opts.ref;
  // The worker boots (tens of ms) while the manifest and blob sizes are checked.
  const hasher = new StreamHasher();
  let loaded: Awaited<ReturnType<typeof resolveRef>>;
  let bytesVerified: number;
  try {
    loaded = await resolveRef(store, ref, opts.trust);
    const { manifest: m, ref: what } = loaded;
    await progress.step(`Checking ${m.blobs.length} blob(s) of ${what}`, () =>
      checkBlobSizes(store, m, what),
    );
    bytesVerified = await progress.step(
      `Verifying ${formatBytes(m.size)} in ${m.files.length} file(s)`,
      (report) =>
        verifyManifestContent(store, m, what, {
          concurrency: opts.concurrency,
          rangeBytes: opts.rangeBytes,
          onBytes: (n) => report(`${formatBytes(n)} of ${formatBytes(m.size)}`),
          hasher,
        }),
    );
  } finally {
    await hasher.close();
  }
  const m = loaded.manifest;
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
