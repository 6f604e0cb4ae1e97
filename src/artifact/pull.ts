/**
 * `artifact pull`: verified, resumable download of an artifact into a directory. The manifest is
 * verified under the trust root, chunks the local cache lacks are fetched (fetch.ts; each checked
 * against its digest before it is cached), and the files are materialized all-or-nothing with
 * their SHA-256 checked (materialize.ts). An interrupted pull leaves verified chunks in the cache,
 * so the rerun fetches only the rest; files already in the target with the right hash are kept, and
 * chunks of an older copy of a file in the target seed the cache before anything is fetched.
 */
import { lstat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Io } from '../foundation/output.js';
import { formatBytes } from '../foundation/output.js';
import type { Store } from '../registry/store.js';
import type { TrustRoot } from '../registry/trust.js';
import { ChunkCache } from './chunk-cache.js';
import { chunkFile, type ChunkerParams } from './chunker.js';
import { fetchChunks } from './fetch.js';
import { resolveRef } from './manifest-store.js';
import type { Manifest } from './manifest.js';
import { materialize, sha256File } from './materialize.js';
import { pathProblem } from './paths.js';
import type { Progress } from './progress.js';
import { parseRef, type ArtifactRef } from './ref.js';

/**
 * Where a command keeps an artifact it pulled by ref for local use (`verifier up --model <ref>`,
 * `index build --embedder <ref>`, the embedder of `index query <ref>`): the project's
 * `.edgectl/artifacts/<kind>/<name>/<version or digest>`. A later pull into it verifies every file
 * and rewrites only what differs, so reusing it is safe.
 */
export function projectArtifactDir(projectRoot: string, ref: ArtifactRef | string): string {
  const r = typeof ref === 'string' ? parseRef(ref) : ref;
  return join(projectRoot, '.edgectl', 'artifacts', r.kind, r.name, r.version ?? r.digest.replace(':', '-'));
}

export interface PullOptions {
  store: Store;
  ref: ArtifactRef | string;
  trust: TrustRoot;
  dir: string;
  cacheDir: string;
  io: Io;
  concurrency?: number;
  progress?: Progress;
}

export interface PullResult {
  ref: string;
  manifestDigest: string;
  dir: string;
  files: number;
  filesWritten: number;
  filesUnchanged: number;
  bytesTotal: number;
  chunksTotal: number;
  /** Chunks found in the cache (from earlier pulls, or an interrupted one). */
  chunksCached: number;
  /** Chunks recovered from older copies of the files in the target directory. */
  chunksSeeded: number;
  chunksFetched: number;
  bytesFetched: number;
  requests: number;
}

/**
 * Puts into the cache the chunks of existing files in `dir` that the manifest needs and the cache
 * lacks (an older version of the artifact pulled into the same place). Chunk digests are computed
 * from the bytes, so only verified chunks are cached.
 */
export async function seedCacheFromDir(m: Manifest, cache: ChunkCache, dir: string): Promise<number> {
  const wanted = new Map<string, number>();
  for (const f of m.files) for (const c of f.chunks) wanted.set(c.digest, c.size);
  const params: ChunkerParams = { min: m.chunking.min, avg: m.chunking.avg, max: m.chunking.max };
  let seeded = 0;
  for (const f of m.files) {
    if (pathProblem(f.path)) continue;
    const path = join(dir, f.path);
    const st = await lstat(path).catch(() => undefined);
    if (!st?.isFile() || st.size === 0) continue;
    // Already the right file: materialize keeps it, nothing to seed.
    if (st.size === f.size && (await sha256File(path)) === f.sha256) continue;
    for await (const c of chunkFile(path, { params })) {
      if (wanted.get(c.digest) !== c.size || (await cache.has(c.digest, c.size))) continue;
      await cache.put(c.digest, c.data);
      seeded++;
    }
  }
  return seeded;
}

export async function pullArtifact(opts: PullOptions): Promise<PullResult> {
  const { store } = opts;
  const start = store.stats.requests;
  const progress = opts.progress ?? opts.io;
  const ref = typeof opts.ref === 'string' ? parseRef(opts.ref) : opts.ref;
  const loaded = await resolveRef(store, ref, opts.trust);
  const m = loaded.manifest;
  const cache = new ChunkCache(opts.cacheDir);
  const chunksSeeded = await seedCacheFromDir(m, cache, opts.dir);
  const fetched = await progress.step(`Fetching ${loaded.ref} (${formatBytes(m.size)})`, (report) => {
    let bytes = 0;
    return fetchChunks(store, m, cache, {
      concurrency: opts.concurrency,
      what: loaded.ref,
      onProgress: (n) => report(`${formatBytes((bytes += n))} fetched`),
    });
  });
  const written = await progress.step(`Writing ${m.files.length} file(s) to ${opts.dir}`, () =>
    materialize(m, cache, opts.dir, { what: loaded.ref }),
  );
  return {
    ref: loaded.ref,
    manifestDigest: loaded.digest,
    dir: opts.dir,
    files: m.files.length,
    filesWritten: written.filesWritten,
    filesUnchanged: written.filesUnchanged,
    bytesTotal: m.size,
    chunksTotal: fetched.chunksTotal,
    chunksCached: fetched.chunksCached - chunksSeeded,
    chunksSeeded,
    chunksFetched: fetched.chunksFetched,
    bytesFetched: fetched.bytesFetched,
    requests: store.stats.requests - start,
  };
}
