/**
 * Publishing an artifact directory to a registry (DESIGN: Artifacts, Registry): resolve its identity
 * (flags over artifact.yaml), list and validate its files, chunk them (FastCDC), look every chunk up
 * in the chunk index (previous versions, an adapter's base), pack the new chunks into pack blobs and
 * upload those the registry lacks (bounded concurrency, create-only), then sign the manifest with an
 * `artifacts` key and write it create-only, LAST. A publish killed at any point therefore leaves no
 * manifest, only unreferenced packs that a rerun finds with HEAD and reuses (or gc removes).
 *
 * Versions are immutable: if the version exists, the source's file hashes are compared with it;
 * the same bytes are a no-op (`bytesUploaded: 0`), different bytes a UserError (exit 2) that leaves
 * the published version untouched. Two publishers racing on one version: the create-only manifest
 * write lets exactly one win; the other gets the same no-op or error as a later republish would.
 */
import { ConflictError, UserError } from '../cli/errors.js';
import type { Io } from '../cli/output.js';
import { formatBytes } from '../cli/output.js';
import { PayloadType, encodeEnvelope, signEnvelope } from '../registry/envelope.js';
import type { KeyPair } from '../registry/keys.js';
import { artifactKey, blobKey } from '../registry/layout.js';
import type { Store } from '../registry/store.js';
import type { TrustRoot } from '../registry/trust.js';
import { readArtifactYaml, type ArtifactYamlFile } from './artifact-yaml.js';
import { ChunkIndex } from './chunk-index.js';
import { CHUNKING_ALGORITHM, DEFAULT_CHUNKER, chunkFile } from './chunker.js';
import { TaskGate, mapConcurrent } from './concurrency.js';
import {
  MANIFEST_SCHEMA,
  fileSetKey,
  manifestDigest,
  parseManifest,
  type Manifest,
  type ManifestFile,
} from './manifest.js';
import { listVersions, readManifest, type LoadedManifest } from './manifest-store.js';
import { sha256File } from './materialize.js';
import { DEFAULT_PACK_TARGET, PackBuilder, type PendingPack, type SealedPack } from './pack.js';
import type { Progress } from './progress.js';
import { checkKind, checkName, checkVersion, formatRef, type ArtifactKind } from './ref.js';
import { listSourceFiles, type SourceFile } from './source.js';
import { validateArtifact } from './validate/index.js';
import { publishedModelFiles } from './validate/model-graph.js';

/** Newest versions of the same artifact whose chunks a publish deduplicates against. */
export const INDEX_VERSIONS = 3;

export interface PublishOptions {
  dir: string;
  kind?: string | undefined;
  name?: string | undefined;
  version?: string | undefined;
  description?: string | undefined;
  store: Store;
  /** An `artifacts` role key of the trust root. */
  signer: KeyPair;
  /**
   * The registry's current trust root (already walked from the pinned root). Used to refuse a
   * signer outside the artifacts role before any upload, and to verify manifests read for
   * deduplication and an adapter's base. Without it those manifests are used unverified.
   */
  trust: TrustRoot | undefined;
  io: Io;
  /** Pack uploads in flight (each holds one pack in memory); default 4. */
  concurrency?: number | undefined;
  now?: () => Date;
  /** Pack size target in bytes (default 64 MiB). */
  packTarget?: number;
  progress?: Progress;
}

export interface PublishResult {
  ref: string;
  manifestDigest: string;
  /** False when this exact version was already published with the same bytes. */
  created: boolean;
  files: number;
  bytesTotal: number;
  /** Pack bytes this publish wrote to the registry. */
  bytesUploaded: number;
  chunksTotal: number;
  /** New chunks this publish wrote (inside uploaded packs). */
  chunksUploaded: number;
  /** Chunks found in the registry already (previous versions, base model, or earlier in this artifact). */
  chunksReused: number;
  packsUploaded: number;
  /** Packs already present from an interrupted earlier run. */
  packsFound: number;
  /** Registry requests this publish made. */
  requests: number;
  /** Manifests whose chunks were looked up. */
  dedupSources: string[];
}

interface Identity {
  kind: ArtifactKind;
  name: string;
  version: string;
  description: string | undefined;
}

function fieldSource(yaml: ArtifactYamlFile, field: string, flag: string, fromFlag: boolean): string {
  if (fromFlag) return flag;
  const line = yaml.lineOf(field);
  return `${yaml.file}${line ? `:${line}` : ''}: ${field}`;
}

function resolveIdentity(opts: PublishOptions, yaml: ArtifactYamlFile): Identity {
  const pick = (field: 'kind' | 'name' | 'version', flag: string | undefined) => {
    const value = flag ?? yaml.value[field];
    if (value === undefined) {
      throw new UserError(`${opts.dir}: no artifact ${field}`, {
        code: 'E_IDENTITY',
        suggestion: `pass --${field}, or set ${field}: in ${opts.dir}/artifact.yaml`,
      });
    }
    return { value, where: fieldSource(yaml, field, `--${field}`, flag !== undefined) };
  };
  const k = pick('kind', opts.kind);
  const n = pick('name', opts.name);
  const v = pick('version', opts.version);
  return {
    kind: checkKind(k.value, k.where),
    name: checkName(n.value, n.where),
    version: checkVersion(v.value, v.where),
    description: opts.description ?? yaml.value.description,
  };
}

function checkSigner(trust: TrustRoot | undefined, signer: KeyPair): void {
  if (!trust) return;
  const role = trust.roles.artifacts;
  if (!role.keyids.includes(signer.keyid)) {
    throw new UserError(
      `key ${signer.keyid} is not an artifacts key of trust root version ${trust.version} ` +
        `(artifacts keys: ${role.keyids.join(', ')})`,
      {
        code: 'E_SIGNER_ROLE',
        suggestion:
          'sign with an artifacts key (keys.artifacts in edgectl.yaml or --key), or rotate the trust root to add this key',
      },
    );
  }
  if (role.threshold > 1) {
    throw new UserError(
      `the artifacts role of trust root version ${trust.version} needs ${role.threshold} signatures; publish signs with one key`,
      { code: 'E_THRESHOLD', suggestion: 'lower the artifacts threshold to 1 with `edgectl trust rotate`' },
    );
  }
}

function sameFiles(
  a: readonly Pick<ManifestFile, 'path' | 'size' | 'sha256' | 'mode'>[],
  b: readonly Pick<ManifestFile, 'path' | 'size' | 'sha256' | 'mode'>[],
): boolean {
  return fileSetKey(a) === fileSetKey(b);
}

function describeDifference(existing: Manifest, files: Pick<ManifestFile, 'path' | 'sha256'>[]): string {
  const before = new Map(existing.files.map((f) => [f.path, f.sha256]));
  const after = new Map(files.map((f) => [f.path, f.sha256]));
  const changed = [...after].filter(([p, d]) => before.has(p) && before.get(p) !== d).map(([p]) => p);
  const added = [...after.keys()].filter((p) => !before.has(p));
  const removed = [...before.keys()].filter((p) => !after.has(p));
  const parts = [
    changed.length ? `changed: ${changed.slice(0, 5).join(', ')}` : '',
    added.length ? `added: ${added.slice(0, 5).join(', ')}` : '',
    removed.length ? `removed: ${removed.slice(0, 5).join(', ')}` : '',
  ].filter(Boolean);
  return parts.length ? parts.join('; ') : 'file modes differ';
}

function alreadyPublished(ref: string, existing: LoadedManifest, requests: number): PublishResult {
  const m = existing.manifest;
  const chunks = m.files.reduce((n, f) => n + f.chunks.length, 0);
  return {
    ref,
    manifestDigest: existing.digest,
    created: false,
    files: m.files.length,
    bytesTotal: m.size,
    bytesUploaded: 0,
    chunksTotal: chunks,
    chunksUploaded: 0,
    chunksReused: chunks,
    packsUploaded: 0,
    packsFound: 0,
    requests,
    dedupSources: [],
  };
}

function refuseRepublish(
  ref: string,
  existing: LoadedManifest,
  files: Pick<ManifestFile, 'path' | 'sha256'>[],
): UserError {
  return new UserError(
    `${ref} is already published with different content (${describeDifference(existing.manifest, files)})`,
    {
      code: 'E_VERSION_EXISTS',
      suggestion: 'versions are immutable: publish the change under a new version',
      details: { ref, manifestDigest: existing.digest },
    },
  );
}

/** Where a chunk of the new manifest lives: an existing blob, or a pack of this publish. */
type Placement =
  { blob: string; blobSize: number; offset: number } | { pending: PendingPack; offset: number };

export async function publishArtifact(opts: PublishOptions): Promise<PublishResult> {
  const { store, io } = opts;
  const startRequests = store.stats.requests;
  const requests = () => store.stats.requests - startRequests;
  const progress = opts.progress ?? io;
  const now = opts.now ?? (() => new Date());

  const yaml = readArtifactYaml(opts.dir);
  const id = resolveIdentity(opts, yaml);
  const ref = formatRef(id);
  const key = artifactKey(id.kind, id.name, id.version);
  checkSigner(opts.trust, opts.signer);
  const listed = listSourceFiles(opts.dir);
  const { skipped } = listed;
  for (const s of skipped) io.log('debug', `not published: ${s}`);
  // A model with `sync: selected` ships only its chosen graph (validate/model-graph.ts).
  const sources = id.kind === 'model' ? publishedModelFiles(opts.dir, yaml, listed.files) : listed.files;
  for (const s of listed.files)
    if (!sources.includes(s)) io.log('info', `not published (sync: selected): ${s.path}`);
  if (sources.length === 0) throw new UserError(`${opts.dir} holds no files to publish`, { code: 'E_EMPTY' });

  const existing = await readManifest(store, id.kind, id.name, id.version, opts.trust);
  if (existing) {
    const files = await progress.step(`Comparing with the published ${ref}`, async () =>
      mapConcurrent(sources, 4, async (s) => ({
        path: s.path,
        size: s.size,
        sha256: await sha256File(s.absPath),
        mode: s.mode,
      })),
    );
    if (!sameFiles(existing.manifest.files, files)) {
      throw refuseRepublish(ref, existing, files);
    }
    io.log('info', `${ref} is already published with the same content (${existing.digest})`);
    return alreadyPublished(ref, existing, requests());
  }

  const validated = await progress.step(`Validating ${id.kind} ${opts.dir}`, () =>
    validateArtifact(id.kind, { dir: opts.dir, files: sources, yaml, store, trust: opts.trust }),
  );

  const index = new ChunkIndex();
  for (const version of (await listVersions(store, id.kind, id.name)).slice(0, INDEX_VERSIONS)) {
    try {
      const prev = await readManifest(store, id.kind, id.name, version, opts.trust);
      if (prev) index.add(prev.manifest);
    } catch (err) {
      io.log('warn', `not deduplicating against ${id.kind}/${id.name}@${version}: ${(err as Error).message}`);
    }
  }
  if (validated.base) index.add(validated.base.manifest);

  const stats = {
    bytesUploaded: 0,
    chunksUploaded: 0,
    packsUploaded: 0,
    packsFound: 0,
    chunksReused: 0,
    chunksTotal: 0,
  };
  const bytesTotal = sources.reduce((n, s) => n + s.size, 0);
  const files = await progress.step(
    `Chunking and uploading ${formatBytes(bytesTotal)} in ${sources.length} file(s)`,
    (report) =>
      chunkAndUpload(opts, sources, index, stats, (done) =>
        report(
          `${formatBytes(done)} of ${formatBytes(bytesTotal)} chunked, ${formatBytes(stats.bytesUploaded)} uploaded`,
        ),
      ),
  );

  const manifest = buildManifest(id, validated.meta, files, now());
  const digest = manifestDigest(manifest);
  const envelope = signEnvelope(PayloadType.artifact, manifest, [opts.signer]);
  const written = await progress.step(`Signing and writing ${key}`, async () => {
    try {
      await store.putIfAbsent(key, encodeEnvelope(envelope));
      return true;
    } catch (err) {
      if (!(err instanceof ConflictError)) throw err;
      return false;
    }
  });
  if (!written) {
    // Another publisher wrote this version while we ran.
    const winner = await readManifest(store, id.kind, id.name, id.version, opts.trust);
    if (winner && sameFiles(winner.manifest.files, manifest.files))
      return alreadyPublished(ref, winner, requests());
    if (winner) {
      const err = refuseRepublish(ref, winner, manifest.files);
      throw new UserError(`${err.message}; it was published by another publisher while this one ran`, {
        code: 'E_VERSION_EXISTS',
        suggestion: err.suggestion ?? '',
        details: err.details ?? {},
      });
    }
    throw new ConflictError(`${key} could not be written and is not readable`, { details: { key } });
  }
  return {
    ref,
    manifestDigest: digest,
    created: true,
    files: files.length,
    bytesTotal,
    ...stats,
    requests: requests(),
    dedupSources: index.sources,
  };
}

interface PlacedFile {
  source: SourceFile;
  sha256: string;
  size: number;
  chunks: { digest: string; size: number; place: Placement }[];
}

async function chunkAndUpload(
  opts: PublishOptions,
  sources: SourceFile[],
  index: ChunkIndex,
  stats: {
    bytesUploaded: number;
    chunksUploaded: number;
    packsUploaded: number;
    packsFound: number;
    chunksReused: number;
    chunksTotal: number;
  },
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

function buildManifest(
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
