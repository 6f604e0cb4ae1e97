/**
 * The data half of a publish: chunk the source files (FastCDC), look every chunk up in the
 * deduplication index (the newest versions of the artifact and an adapter's base), pack the new
 * chunks into pack blobs and upload those the registry lacks (bounded concurrency, create-only),
 * then build the manifest that points every chunk at its blob and offset. publish.ts decides
 * whether to publish at all and writes the signed manifest last. Chunking, packs, the index and
 * the manifest are specified in docs/formats.md (Artifacts).
 */
import { blobKey } from '../registry/layout.js';
import type { Store } from '../registry/store.js';
import type { TrustRoot } from '../registry/trust.js';
import type { Io } from '../foundation/output.js';
import { ChunkIndex } from './chunk-index.js';
import { CHUNKING_ALGORITHM, DEFAULT_CHUNKER, chunkFile } from './chunker.js';
import { TaskGate } from './concurrency.js';
import { MANIFEST_SCHEMA, parseManifest, type Manifest, type ManifestFile } from './manifest.js';
import { listVersions, readManifest } from './manifest-store.js';
import { DEFAULT_PACK_TARGET, PackBuilder, type PendingPack, type SealedPack } from './pack.js';
import type { ArtifactKind } from './ref.js';
import type { SourceFile } from './source.js';

/** Newest versions of the same artifact whose chunks a publish deduplicates against. */
export const INDEX_VERSIONS = 3;

/** What the manifest records of an artifact besides its files. */
export interface Identity {
  kind: ArtifactKind;
  name: string;
  version: string;
  description: string | undefined;
}

/** Counts of what a publish uploaded and reused (part of `PublishResult`). */
export interface UploadStats {
  bytesUploaded: number;
  chunksUploaded: number;
  packsUploaded: number;
  packsFound: number;
  chunksReused: number;
  chunksTotal: number;
}

export interface UploadOptions {
  store: Store;
  /** Pack uploads in flight (each holds one pack in memory); default 4. */
  concurrency?: number | undefined;
  /** Pack size target in bytes (default 64 MiB). */
  packTarget?: number;
}

/**
 * The chunks of the newest `INDEX_VERSIONS` versions of the artifact and of `base` (an adapter's
 * base model). A version that cannot be read is skipped with a warning: deduplication is an
 * optimization, never a reason to fail a publish.
 */
export async function dedupIndex(
  store: Store,
  id: Identity,
  trust: TrustRoot | undefined,
  base: Manifest | undefined,
  io: Io,
): Promise<ChunkIndex> {
  const index = new ChunkIndex();
  for (const version of (await listVersions(store, id.kind, id.name)).slice(0, INDEX_VERSIONS)) {
    try {
      const prev = await readManifest(store, id.kind, id.name, version, trust);
      if (prev) index.add(prev.manifest);
    } catch (err) {
      io.log('warn', `not deduplicating against ${id.kind}/${id.name}@${version}: ${(err as Error).message}`);
    }
  }
  if (base) index.add(base);
  return index;
}

/** Where a chunk of the new manifest lives: an existing blob, or a pack of this publish. */
type Placement =
  { blob: string; blobSize: number; offset: number } | { pending: PendingPack; offset: number };

export interface PlacedFile {
  source: SourceFile;
  sha256: string;
  size: number;
  chunks: { digest: string; size: number; place: Placement }[];
}

export async function chunkAndUpload(
  opts: UploadOptions,
  sources: SourceFile[],
  index: ChunkIndex,
  stats: UploadStats,
  onBytes: (done: number) => void,
): Promise<PlacedFile[]> {
  const { store } = opts;
  const builder = new PackBuilder(opts.packTarget ?? DEFAULT_PACK_TARGET, DEFAULT_CHUNKER.max);
  const gate = new TaskGate(opts.concurrency ?? 4);
  const placed = new Map<string, Placement>();

  // putIfAbsent answers "exists" for a pack an interrupted earlier run already wrote (the S3 store
  // finds it with a HEAD and sends no body), so a rerun uploads nothing twice.
  const upload = async (pack: SealedPack) => {
    const res = await store.putIfAbsent(blobKey(pack.digest), pack.bytes);
    if (res.status === 'created') {
      stats.bytesUploaded += pack.bytes.length;
      stats.chunksUploaded += pack.chunks;
      stats.packsUploaded++;
    } else stats.packsFound++;
  };
  const flush = async () => {
    const sealed = builder.seal();
    if (sealed) await gate.start(() => upload(sealed));
  };

  const out: PlacedFile[] = [];
  let done = 0;
  try {
    for (const source of sources) {
      let sha256 = '';
      let size = 0;
      const chunks: PlacedFile['chunks'] = [];
      for await (const c of chunkFile(source.absPath, {
        onFileDigest: (d, s) => {
          sha256 = d;
          size = s;
        },
      })) {
        stats.chunksTotal++;
        let place: Placement | undefined = placed.get(c.digest);
        if (!place) {
          const loc = index.get(c.digest, c.size);
          if (loc) place = { blob: loc.blob, blobSize: loc.blobSize, offset: loc.offset };
        }
        if (place) stats.chunksReused++;
        else {
          if (builder.wouldOverflow(c.size)) await flush();
          const { pack, offset } = builder.add(c.data);
          place = { pending: pack, offset };
          placed.set(c.digest, place);
        }
        chunks.push({ digest: c.digest, size: c.size, place });
        done += c.size;
        onBytes(done);
      }
      out.push({ source, sha256, size, chunks });
    }
    await flush();
  } finally {
    // Never leave uploads running behind an error; the first failure wins.
    await gate.drain();
  }
  return out;
}

export function buildManifest(
  id: Identity,
  meta: Record<string, unknown>,
  placedFiles: PlacedFile[],
  created: Date,
): Manifest {
  const blobs = new Map<string, number>();
  const files: ManifestFile[] = placedFiles.map((pf) => ({
    path: pf.source.path,
    size: pf.size,
    sha256: pf.sha256,
    ...(pf.source.mode === 0o755 ? { mode: 0o755 as const } : {}),
    chunks: pf.chunks.map((c) => {
      let blob: string;
      if ('pending' in c.place) {
        if (!c.place.pending.digest) throw new Error('internal: pack not sealed');
        blob = c.place.pending.digest;
        blobs.set(blob, c.place.pending.size);
      } else {
        blob = c.place.blob;
        blobs.set(blob, c.place.blobSize);
      }
      return { digest: c.digest, size: c.size, blob, offset: c.place.offset };
    }),
  }));
  const manifest: Manifest = {
    schema: MANIFEST_SCHEMA,
    kind: id.kind,
    name: id.name,
    version: id.version,
    created: created.toISOString(),
    ...(id.description !== undefined ? { description: id.description } : {}),
    size: files.reduce((n, f) => n + f.size, 0),
    meta,
    chunking: { algorithm: CHUNKING_ALGORITHM, ...DEFAULT_CHUNKER },
    blobs: [...blobs].sort(([a], [b]) => (a < b ? -1 : 1)).map(([digest, size]) => ({ digest, size })),
    files,
  };
  // The same checks every reader applies; a bug here must not reach the registry.
  return parseManifest(manifest, 'new manifest');
}
