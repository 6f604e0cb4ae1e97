/**
 * Fetching an artifact's chunks from a registry into a local chunk cache: the reusable half of
 * `artifact pull` that the site sync agent also uses. Only chunks missing from the cache are read,
 * with few ranged GETs (ranges.ts), each chunk checked against its digest before it is cached. A
 * chunk that does not hash to its digest, or a blob that is missing or not exactly the size the
 * manifest declares (every ranged read checks it, at no extra request), is a VerificationError
 * (exit 4) naming the file and chunk; nothing unverified ever enters the cache.
 */
import { NotFoundError, OperationalError, VerificationError } from '../foundation/errors.js';
import { blobKey } from '../registry/layout.js';
import type { Store } from '../registry/store.js';
import { sha256Digest } from './chunker.js';
import type { ChunkCache } from './chunk-cache.js';
import { mapConcurrent } from './concurrency.js';
import { uniqueChunks, type Manifest, type ManifestChunk } from './manifest.js';
import { DEFAULT_RANGE_OPTIONS, planRanges, type RangeOptions } from './ranges.js';

export interface ChunkPlace {
  path: string;
  /** Index of the chunk in the file's chunk list. */
  index: number;
}

/** Where each chunk digest first appears, for error messages. */
export function chunkPlaces(m: Manifest): Map<string, ChunkPlace> {
  const places = new Map<string, ChunkPlace>();
  for (const f of m.files) {
    f.chunks.forEach((c, index) => {
      if (!places.has(c.digest)) places.set(c.digest, { path: f.path, index });
    });
  }
  return places;
}

export function chunkMismatch(
  what: string,
  chunk: ManifestChunk,
  place: ChunkPlace | undefined,
  actual: string,
): VerificationError {
  const where = place ? `file ${place.path} chunk ${place.index}` : `chunk ${chunk.digest}`;
  return new VerificationError(
    `${what}: ${where} is corrupt: blob ${chunk.blob} at offset ${chunk.offset} hashes to ${actual}, ` +
      `the signed manifest says ${chunk.digest}`,
    {
      code: 'E_CHUNK_HASH',
      suggestion:
        'the registry copy of this chunk was modified or damaged; republish the artifact from its source',
      details: { file: place?.path, chunk: place?.index, digest: chunk.digest, actual, blob: chunk.blob },
    },
  );
}

/** A registry read error as the verification failure of the manifest naming the blob. */
function blobReadError(what: string, blob: string, place: ChunkPlace | undefined, err: unknown): unknown {
  const where = place ? ` (file ${place.path} chunk ${place.index})` : '';
  if (err instanceof NotFoundError) {
    return new VerificationError(`${what}: blob ${blob}${where} is missing from the registry`, {
      code: 'E_BLOB_MISSING',
      suggestion: 'the registry lost data the manifest needs; republish the artifact from its source',
      details: { blob, file: place?.path, chunk: place?.index },
    });
  }
  if (err instanceof OperationalError && err.code === 'E_RANGE') {
    return new VerificationError(`${what}: blob ${blob}${where} is shorter than the signed manifest says`, {
      code: 'E_BLOB_SIZE',
      details: { blob, file: place?.path, chunk: place?.index },
    });
  }
  if (err instanceof OperationalError && err.code === 'E_OBJECT_SIZE') {
    const { expected = 0, actual = 0 } = (err.details ?? {}) as { expected?: number; actual?: number };
    const how =
      actual > expected
        ? `is larger than the ${expected} bytes the signed manifest says (extra bytes were added): it has ${actual}`
        : `is shorter than the ${expected} bytes the signed manifest says (truncated): it has ${actual}`;
    return new VerificationError(`${what}: blob ${blob}${where} ${how}`, {
      code: 'E_BLOB_SIZE',
      suggestion: 'the registry copy was modified; republish the artifact from its source',
      details: { blob, expected, actual, file: place?.path, chunk: place?.index },
    });
  }
  return err;
}

/** Declared size of every blob of a manifest: each ranged read pins the blob to it. */
export function blobSizes(m: Manifest): Map<string, number> {
  return new Map(m.blobs.map((b) => [b.digest, b.size]));
}

function declaredSize(sizes: ReadonlyMap<string, number>, blob: string): number {
  const size = sizes.get(blob);
  // parseManifest guarantees every chunk's blob is listed; this is a caller bug.
  if (size === undefined) throw new Error(`blob ${blob} is not listed in the manifest`);
  return size;
}

function shortRead(
  what: string,
  blob: string,
  place: ChunkPlace | undefined,
  got: number,
  start: number,
  end: number,
): VerificationError {
  const where = place ? ` (file ${place.path} chunk ${place.index})` : '';
  return new VerificationError(
    `${what}: blob ${blob}${where} returned ${got} bytes for a ${end - start}-byte range`,
    {
      code: 'E_BLOB_SIZE',
      details: { blob, start, end },
    },
  );
}

/**
 * Reads a blob range; a missing blob, or one whose size is not `blobSize` (the manifest's), is a
 * verification failure of the manifest naming it, whether or not the range itself is intact.
 */
export async function readBlobRange(
  store: Store,
  what: string,
  blob: string,
  blobSize: number,
  start: number,
  end: number,
  place: ChunkPlace | undefined,
): Promise<Buffer> {
  let bytes: Buffer;
  try {
    bytes = await store.getRange(blobKey(blob), start, end, { objectSize: blobSize });
  } catch (err) {
    throw blobReadError(what, blob, place, err);
  }
  if (bytes.length !== end - start) throw shortRead(what, blob, place, bytes.length, start, end);
  return bytes;
}

/**
 * readBlobRange into the caller's buffer: bytes [start, start + target.length). Stores with
 * `getRangeInto` (the directory backend) read straight into it, others are read with a ranged GET
 * and copied; errors are the same as readBlobRange's.
 */
export async function readBlobRangeInto(
  store: Store,
  what: string,
  blob: string,
  blobSize: number,
  start: number,
  target: Uint8Array,
  place: ChunkPlace | undefined,
): Promise<void> {
  const end = start + target.length;
  if (!store.getRangeInto) {
    target.set(await readBlobRange(store, what, blob, blobSize, start, end, place));
    return;
  }
  try {
    await store.getRangeInto(blobKey(blob), start, target, { objectSize: blobSize });
  } catch (err) {
    throw blobReadError(what, blob, place, err);
  }
}

export interface FetchOptions {
  /** Ranged GETs in flight (default 4). */
  concurrency?: number;
  ranges?: RangeOptions;
  /** Called after each range with the bytes it brought. */
  onProgress?: (bytes: number) => void;
  /** Names the manifest in errors (default `<kind>/<name>@<version>`). */
  what?: string;
}

export interface FetchResult {
  chunksTotal: number;
  /** Chunks that were already in the cache. */
  chunksCached: number;
  chunksFetched: number;
  bytesFetched: number;
  /** Registry requests made. */
  requests: number;
}

/** Chunks of the manifest that the cache lacks. */
export async function missingChunks(m: Manifest, cache: ChunkCache): Promise<ManifestChunk[]> {
  const unique = uniqueChunks(m);
  const present = await mapConcurrent(unique, 32, (c) => cache.has(c.digest, c.size));
  return unique.filter((_, i) => !present[i]);
}

/** Brings every chunk of the manifest into the cache, verified. Idempotent and resumable. */
export async function fetchChunks(
  store: Store,
  m: Manifest,
  cache: ChunkCache,
  opts: FetchOptions = {},
): Promise<FetchResult> {
  const what = opts.what ?? `${m.kind}/${m.name}@${m.version}`;
  const places = chunkPlaces(m);
  const unique = uniqueChunks(m);
  const sizes = blobSizes(m);
  const missing = await missingChunks(m, cache);
  const ranges = planRanges(
    missing.map((chunk) => ({ chunk, tag: undefined })),
    opts.ranges ?? DEFAULT_RANGE_OPTIONS,
  );
  let bytesFetched = 0;
  await mapConcurrent(ranges, opts.concurrency ?? 4, async (r) => {
    const first = r.pieces[0];
    const bytes = await readBlobRange(
      store,
      what,
      r.blob,
      declaredSize(sizes, r.blob),
      r.start,
      r.end,
      first && places.get(first.chunk.digest),
    );
    bytesFetched += bytes.length;
    for (const p of r.pieces) {
      const data = bytes.subarray(p.at, p.at + p.chunk.size);
      const actual = sha256Digest(data);
      if (actual !== p.chunk.digest) throw chunkMismatch(what, p.chunk, places.get(p.chunk.digest), actual);
      await cache.put(p.chunk.digest, data);
    }
    opts.onProgress?.(bytes.length);
  });
  return {
    chunksTotal: unique.length,
    chunksCached: unique.length - missing.length,
    chunksFetched: missing.length,
    bytesFetched,
    requests: ranges.length,
  };
}

/**
 * One small file of a published artifact, read straight from the registry (no cache), every chunk
 * and the whole file verified. Used to read a base model's config.json when validating an adapter.
 */
export async function readManifestFile(
  store: Store,
  m: Manifest,
  path: string,
  maxBytes = 16 * 1024 * 1024,
): Promise<Buffer | undefined> {
  const f = m.files.find((x) => x.path === path);
  if (!f) return undefined;
  const what = `${m.kind}/${m.name}@${m.version}`;
  if (f.size > maxBytes) {
    throw new VerificationError(`${what}: ${path} is ${f.size} bytes, more than the ${maxBytes} expected`, {
      code: 'E_FILE_SIZE',
    });
  }
  const out = Buffer.alloc(f.size);
  const sizes = blobSizes(m);
  let pos = 0;
  for (const [index, chunk] of f.chunks.entries()) {
    const end = chunk.offset + chunk.size;
    const data = await readBlobRange(
      store,
      what,
      chunk.blob,
      declaredSize(sizes, chunk.blob),
      chunk.offset,
      end,
      {
        path,
        index,
      },
    );
    const actual = sha256Digest(data);
    if (actual !== chunk.digest) throw chunkMismatch(what, chunk, { path, index }, actual);
    data.copy(out, pos);
    pos += data.length;
  }
  const actual = sha256Digest(out);
  if (actual !== f.sha256) {
    throw new VerificationError(
      `${what}: file ${path} hashes to ${actual}, the signed manifest says ${f.sha256}`,
      {
        code: 'E_FILE_HASH',
        details: { file: path },
      },
    );
  }
  return out;
}
