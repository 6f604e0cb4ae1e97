/**
 * The generation steps of a site sync (sync.ts runs them in order, under the data directory's
 * lock): the drift check and repair of the current generation (step 1), fetching and verifying a
 * generation's manifests and chunks and building and switching to it (step 5), a changed policy
 * going live first in an interim generation, and pruning chunks nothing points at. The state of
 * one sync in progress (`Run`) is shared with sync.ts. The site data directory and its
 * generations are described in docs/running-sites.md.
 */
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { isEdgectlError } from '../foundation/errors.js';
import { formatBytes, type Io } from '../foundation/output.js';
import { ChunkCache } from '../artifact/chunk-cache.js';
import { fetchChunks } from '../artifact/fetch.js';
import type { Manifest } from '../artifact/manifest.js';
import { refuseSiteModel } from '../artifact/model-role.js';
import type { TrustRoot } from '../registry/trust.js';
import type { SiteDataPaths } from './data-dir.js';
import { checkDrift, driftReport, repairDrift } from './drift.js';
import {
  buildGeneration,
  findReusable,
  generationDir,
  generationId,
  pointerTarget,
  readGeneration,
  switchCurrent,
  type GenerationInfo,
} from './generation.js';
import { LocalManifests, loadAssignedManifest, type AssignedArtifact } from './manifests.js';
import { withEmbedders } from './index-embedders.js';
import type { DriftReport } from './state-file.js';

import type { SyncOptions } from './sync.js';

const OFFLINE_CODES = new Set(['E_REGISTRY_UNREACHABLE', 'E_REGISTRY_IO', 'E_REGISTRY_OFFLINE', 'E_TIMEOUT']);

export function isOfflineError(err: unknown): boolean {
  return isEdgectlError(err) && OFFLINE_CODES.has(err.code);
}

/** One sync in progress: its options, data directory, caches and what it has done so far. */
export interface Run {
  opts: SyncOptions;
  paths: SiteDataPaths;
  io: Io | undefined;
  cache: ChunkCache;
  local: LocalManifests;
  warnings: string[];
  chunksFetched: number;
  drift: DriftReport | null;
  /**
   * `current` holds a generation that state.json does not name (an interim one, or one a killed
   * sync switched to) while `previous` holds the committed one: switching again keeps previous.
   */
  interimKeepsPrevious: boolean;
}

/** Manifests of a generation's artifacts: local copies, or fetched (verified) when reachable. */
export async function manifestsFor(
  run: Run,
  arts: readonly AssignedArtifact[],
  trust: TrustRoot | undefined,
): Promise<Map<string, Manifest>> {
  const out = new Map<string, Manifest>();
  for (const art of arts) {
    const local = await run.local.get(art.manifestDigest);
    if (local) out.set(art.manifestDigest, local);
    else if (trust) {
      try {
        out.set(
          art.manifestDigest,
          (await loadAssignedManifest(run.opts.store, trust, art, run.local)).manifest,
        );
      } catch (err) {
        if (!isOfflineError(err)) throw err;
      }
    }
  }
  return out;
}

/** Step 1: drift check and repair of the current generation; false when it is beyond repair. */
export async function driftPhase(run: Run, trust: TrustRoot): Promise<boolean> {
  const id = await pointerTarget(run.paths, 'current');
  if (id === undefined) return true;
  const dir = generationDir(run.paths, id);
  const info = await readGeneration(dir);
  if (!info || info.id !== id) {
    run.warnings.push(`current generation ${id} has no valid generation.json; it is rebuilt`);
    return false;
  }
  const manifests = await manifestsFor(run, info.artifacts, trust);
  const found = await checkDrift(dir, info, { verifyAll: run.opts.verifyAll ?? false, manifests });
  if (found.problems.length === 0 && found.extra.length === 0 && !found.infoFixed) {
    run.drift = driftReport(found);
    return true;
  }
  const repair = await repairDrift(dir, info, found, { cache: run.cache, manifests, store: run.opts.store });
  run.drift = driftReport(found, repair);
  const n = found.problems.length + found.extra.length;
  run.io?.log(
    'warn',
    `drift in generation ${id}: ${n} file(s) changed, missing or extra; repaired ${repair.repaired.length}`,
  );
  if (repair.unrepaired.length > 0) {
    run.warnings.push(
      `could not repair ${repair.unrepaired.join(', ')} (offline and not in the chunk cache)`,
    );
  }
  return repair.unrepaired.length === 0;
}

/** Whether a generation directory exists, is complete and matches its files (full hash). */
export async function intactGeneration(run: Run, id: string): Promise<GenerationInfo | undefined> {
  const dir = generationDir(run.paths, id);
  const info = await readGeneration(dir);
  if (!info || info.id !== id) return undefined;
  const manifests = await manifestsFor(run, info.artifacts, undefined);
  const found = await checkDrift(dir, info, { verifyAll: true, manifests });
  return found.problems.length === 0 && found.extra.length === 0 && !found.infoFixed ? info : undefined;
}

export async function reusableGenerations(run: Run): Promise<GenerationInfo[]> {
  const out: GenerationInfo[] = [];
  for (const which of ['current', 'previous'] as const) {
    const id = await pointerTarget(run.paths, which);
    const info = id === undefined ? undefined : await readGeneration(generationDir(run.paths, id));
    if (info) out.push(info);
  }
  return out;
}

/**
 * Step 5: makes generation `id` of `arts` exist and intact, fetching what is missing in priority
 * order. When the policy changed and a larger artifact still has to be downloaded, the new policy
 * goes live first in an interim generation (new policy + the current model and adapters, which
 * do not depend on it), so a missing large model does not hold back a small policy (docs/running-sites.md).
 */
export async function installGeneration(
  run: Run,
  trust: TrustRoot,
  id: string,
  arts: readonly AssignedArtifact[],
  seq: number,
  now: Date,
): Promise<void> {
  if (await intactGeneration(run, id)) return;
  const { store, site } = run.opts;
  const assigned: { art: AssignedArtifact; manifest: Manifest }[] = [];
  for (const art of arts) {
    const { manifest } = await loadAssignedManifest(store, trust, art, run.local);
    // Before any chunk moves: an embedder in the model slot could never serve (model-role.ts).
    if (art.slot === 'model') refuseSiteModel(manifest, art.ref);
    assigned.push({ art, manifest });
  }
  // Indexes bring the embedder model they pin (index-embedders.ts); it ships with them.
  const loaded = await withEmbedders(store, trust, assigned, run.local);
  const reuse = await reusableGenerations(run);
  const ensureChunks = async (art: AssignedArtifact, manifest: Manifest) => {
    const r = await fetchChunks(store, manifest, run.cache, {
      concurrency: run.opts.concurrency ?? 4,
      what: art.ref,
    });
    run.chunksFetched += r.chunksFetched;
    if (r.chunksFetched > 0) {
      run.io?.log(
        'info',
        `fetched ${art.ref}: ${r.chunksFetched} of ${r.chunksTotal} chunks (${formatBytes(r.bytesFetched)})`,
      );
    }
  };
  const build = (gid: string, artifacts: typeof loaded) =>
    buildGeneration({
      paths: run.paths,
      id: gid,
      site,
      seq,
      now,
      artifacts,
      cache: run.cache,
      reuse,
      ensureChunks,
    });

  // Artifacts an installed generation already holds are linked from it, not fetched.
  const missing: typeof loaded = [];
  for (const l of loaded) if (!(await findReusable(run.paths, reuse, l.art.manifestDigest))) missing.push(l);
  const policy = missing.find((l) => l.art.slot === 'policy');
  if (policy && missing.some((l) => l.art.slot !== 'policy')) await policyFirst(run, policy, build, id);

  // Priority order (policies, adapters, models): a small policy is cached before a large model.
  for (const l of missing) await ensureChunks(l.art, l.manifest);
  const built = await build(id, loaded);
  run.io?.log(
    'info',
    `built generation ${id} (${built.filesWritten} file(s) written, ${built.filesLinked} linked)`,
  );
}

/** The interim generation of installGeneration: the new policy with the current model and adapters. */
export async function policyFirst(
  run: Run,
  policy: { art: AssignedArtifact; manifest: Manifest },
  build: (id: string, artifacts: { art: AssignedArtifact; manifest: Manifest }[]) => Promise<unknown>,
  target: string,
): Promise<void> {
  const currentId = await pointerTarget(run.paths, 'current');
  const current =
    currentId === undefined ? undefined : await readGeneration(generationDir(run.paths, currentId));
  if (!current) return;
  const artifacts = [policy];
  for (const a of current.artifacts) {
    if (a.slot === 'policy') continue;
    const manifest = await run.local.get(a.manifestDigest);
    if (!manifest) return;
    artifacts.push({
      art: { slot: a.slot, ref: a.ref, manifestDigest: a.manifestDigest, dir: a.dir },
      manifest,
    });
  }
  const interim = generationId(artifacts.map((x) => x.art));
  if (interim === target || interim === currentId) return;
  await build(interim, artifacts);
  await switchCurrent(run.paths, interim, { keepPrevious: run.interimKeepsPrevious });
  run.interimKeepsPrevious = true;
  run.io?.log('info', `${policy.art.ref} is live (interim generation ${interim}) while the rest downloads`);
}

/** Chunks referenced by the manifests of the generations kept; everything else is removed. */
export async function pruneChunks(run: Run, keepGenerations: readonly string[]): Promise<void> {
  const keep = new Set<string>();
  const manifestDigests = new Set<string>();
  for (const id of keepGenerations) {
    const info = await readGeneration(generationDir(run.paths, id));
    if (!info) return; // Unsure what is needed: keep everything.
    for (const art of info.artifacts) {
      manifestDigests.add(art.manifestDigest);
      const m = await run.local.get(art.manifestDigest);
      if (!m) return;
      for (const f of m.files) for (const c of f.chunks) keep.add(c.digest.slice('sha256:'.length));
    }
  }
  await run.local.prune(manifestDigests);
  const base = join(run.paths.chunks, 'sha256');
  for (const sub of await readdir(base).catch(() => [] as string[])) {
    for (const name of await readdir(join(base, sub)).catch(() => [] as string[])) {
      if (!keep.has(name)) await rm(join(base, sub, name), { force: true });
    }
  }
}
