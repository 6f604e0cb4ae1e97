/**
 * Publishing an artifact directory to a registry: resolve its identity (flags over
 * artifact.yaml), list and validate its files, chunk, deduplicate and upload them
 * (publish-chunks.ts), then sign the manifest with an `artifacts` key and write it create-only,
 * LAST. A publish killed at any point therefore leaves no manifest, only unreferenced packs that a
 * rerun finds with HEAD and reuses (or gc removes). docs/formats.md (Artifacts) specifies the
 * layout; this module owns the decision whether and what to publish.
 *
 * Versions are immutable: if the version exists, the source's file hashes are compared with it;
 * the same bytes are a no-op (`bytesUploaded: 0`), different bytes a UserError (exit 2) that leaves
 * the published version untouched. Two publishers racing on one version: the create-only manifest
 * write lets exactly one win; the other gets the same no-op or error as a later republish would.
 */
import { ConflictError, UserError } from '../foundation/errors.js';
import type { Io } from '../foundation/output.js';
import { formatBytes } from '../foundation/output.js';
import { PayloadType, encodeEnvelope, signEnvelope } from '../registry/envelope.js';
import type { KeyPair } from '../registry/keys.js';
import { artifactKey } from '../registry/layout.js';
import type { Store } from '../registry/store.js';
import type { TrustRoot } from '../registry/trust.js';
import { readArtifactYaml, type ArtifactYamlFile } from '../config/artifact-yaml.js';
import { mapConcurrent } from './concurrency.js';
import { fileSetKey, manifestDigest, type Manifest, type ManifestFile } from './manifest.js';
import { readManifest, type LoadedManifest } from './manifest-store.js';
import { sha256File } from './materialize.js';
import type { Progress } from './progress.js';
import { checkKind, checkName, checkVersion, formatRef } from './ref.js';
import { listSourceFiles, type SourceFile } from './source.js';
import { validateArtifact } from './validate/index.js';
import { publishedModelFiles } from './validate/model-graph.js';
import {
  buildManifest,
  chunkAndUpload,
  dedupIndex,
  type Identity,
  type UploadStats,
} from './publish-chunks.js';

export { INDEX_VERSIONS } from './publish-chunks.js';

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

/** The manifest files of `sources` (hashed, not chunked): what a republish is compared on. */
async function hashSources(
  sources: SourceFile[],
): Promise<Pick<ManifestFile, 'path' | 'size' | 'sha256' | 'mode'>[]> {
  return mapConcurrent(sources, 4, async (s) => ({
    path: s.path,
    size: s.size,
    sha256: await sha256File(s.absPath),
    mode: s.mode,
  }));
}

/**
 * The files a publish ships: everything listed in the directory, except that a model with
 * `sync: selected` ships only its chosen graph (validate/model-graph.ts).
 */
function sourcesToPublish(opts: PublishOptions, id: Identity, yaml: ArtifactYamlFile): SourceFile[] {
  const { io } = opts;
  const listed = listSourceFiles(opts.dir);
  for (const s of listed.skipped) io.log('debug', `not published: ${s}`);
  const sources = id.kind === 'model' ? publishedModelFiles(opts.dir, yaml, listed.files) : listed.files;
  for (const s of listed.files)
    if (!sources.includes(s)) io.log('info', `not published (sync: selected): ${s.path}`);
  if (sources.length === 0) throw new UserError(`${opts.dir} holds no files to publish`, { code: 'E_EMPTY' });
  return sources;
}

/**
 * Writes the signed manifest create-only. Losing the race to another publisher of the same
 * version is the same no-op (same bytes) or refusal (different bytes) as a later republish.
 */
async function writeManifest(
  opts: PublishOptions,
  id: Identity,
  manifest: Manifest,
  progress: Progress,
  requests: () => number,
): Promise<PublishResult | undefined> {
  const { store } = opts;
  const ref = formatRef(id);
  const key = artifactKey(id.kind, id.name, id.version);
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
  if (written) return undefined;
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

export async function publishArtifact(opts: PublishOptions): Promise<PublishResult> {
  const { store, io } = opts;
  const startRequests = store.stats.requests;
  const requests = () => store.stats.requests - startRequests;
  const progress = opts.progress ?? io;
  const now = opts.now ?? (() => new Date());

  const yaml = readArtifactYaml(opts.dir);
  const id = resolveIdentity(opts, yaml);
  const ref = formatRef(id);
  checkSigner(opts.trust, opts.signer);
  const sources = sourcesToPublish(opts, id, yaml);

  const existing = await readManifest(store, id.kind, id.name, id.version, opts.trust);
  if (existing) {
    const files = await progress.step(`Comparing with the published ${ref}`, () => hashSources(sources));
    if (!sameFiles(existing.manifest.files, files)) {
      throw refuseRepublish(ref, existing, files);
    }
    io.log('info', `${ref} is already published with the same content (${existing.digest})`);
    return alreadyPublished(ref, existing, requests());
  }

  const validated = await progress.step(`Validating ${id.kind} ${opts.dir}`, () =>
    validateArtifact(id.kind, { dir: opts.dir, files: sources, yaml, store, trust: opts.trust }),
  );
  const index = await dedupIndex(store, id, opts.trust, validated.base?.manifest, io);

  const stats: UploadStats = {
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
  const raced = await writeManifest(opts, id, manifest, progress, requests);
  if (raced) return raced;
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
