/**
 * What `edgectl index build` and `edgectl index update` take besides local directories
 * (docs/cli.md, docs/operations.md "Rolling out an index"): `index build --embedder` names the
 * sentence encoder by directory or by published ref (`model/<name>@<version>`, role embedder),
 * and `index update` starts from an index directory, a site (the index it serves) or a registry
 * ref (`index/<name>@<version>`, see index-target.ts). Refs are resolved against the trust root
 * and pulled through the chunk cache, every file verified; an embedder ref lands in the project's
 * `.edgectl/artifacts/model/<name>/<version>` (`projectArtifactDir`, where `verifier up --model
 * <ref>` puts models too), so the index's embedder hint stays valid after the command. The index engine (src/index/service.ts) then runs on plain directories.
 */
import { existsSync, statSync } from 'node:fs';
import { defaultCacheDir } from '../artifact/chunk-cache.js';
import { resolveRef } from '../artifact/manifest-store.js';
import { modelRole } from '../artifact/model-role.js';
import { projectArtifactDir, pullArtifact } from '../artifact/pull.js';
import { parseRef } from '../artifact/ref.js';
import { UserError } from '../foundation/errors.js';
import type { Io } from '../foundation/output.js';
import type { Chunking } from '../index/index.js';
import { indexBuild, indexUpdate, type IndexWriteSummary } from '../index/service.js';
import { openStore } from '../registry/open-store.js';
import { loadTrustInForce } from '../registry/trust-history.js';
import { resolveIndexTarget, type IndexTargetOptions } from './index-target.js';

export interface RegistryAccess {
  projectRoot: string;
  registryUrl: string;
  trustPath: string;
  io: Io;
}

const isDir = (p: string): boolean => existsSync(p) && statSync(p).isDirectory();

/** `--embedder`: the directory itself, or the model ref pulled (verified) into the artifact cache. */
export async function resolveEmbedderSource(value: string, o: RegistryAccess): Promise<string> {
  if (isDir(value) || !value.includes('@')) return value; // a missing directory is reported by the engine
  const ref = parseRef(value);
  if (ref.kind !== 'model')
    throw new UserError(`--embedder ${value} is ${/^[aeiou]/.test(ref.kind) ? 'an' : 'a'} ${ref.kind} ref`, {
      code: 'E_INDEX_EMBEDDER',
      suggestion: 'give the sentence encoder as a directory or as a model ref, model/<name>@<version>',
      details: { field: 'embedder' },
    });
  const store = await openStore(o.registryUrl);
  try {
    const trust = await loadTrustInForce(store, o.trustPath, new Date());
    const loaded = await resolveRef(store, ref, trust);
    const role = modelRole(loaded.manifest);
    if (role !== 'embedder')
      throw new UserError(
        `--embedder ${loaded.ref} is a model of role ${role ?? '(none)'}, not an embedder`,
        {
          code: 'E_INDEX_EMBEDDER',
          suggestion: 'name the sentence encoder, published with role: embedder in its artifact.yaml',
          details: { field: 'embedder', ref: loaded.ref, role },
        },
      );
    const pulled = await pullArtifact({
      store,
      trust,
      cacheDir: defaultCacheDir(),
      io: o.io,
      ref: loaded.ref,
      dir: projectArtifactDir(o.projectRoot, loaded.ref),
    });
    return pulled.dir;
  } finally {
    await store.close();
  }
}

/** `edgectl index build` with `--embedder` a directory or a model ref. */
export async function indexBuildFromSource(
  corpusDir: string,
  opts: { embedder: string; out: string; chunking?: Partial<Chunking> },
  o: RegistryAccess,
): Promise<IndexWriteSummary> {
  const embedder = await resolveEmbedderSource(opts.embedder, o);
  return indexBuild(corpusDir, { ...opts, embedder }, o.io);
}

/** `edgectl index update` from an index directory, a site or an index ref. */
export async function indexUpdateFromTarget(
  target: string,
  corpusDir: string,
  opts: { embedder?: string | undefined; out: string },
  o: IndexTargetOptions,
): Promise<IndexWriteSummary & { from: string }> {
  const t = await resolveIndexTarget(target, o);
  try {
    const embedder =
      opts.embedder !== undefined ? await resolveEmbedderSource(opts.embedder, o) : t.embedderDir;
    const r = await indexUpdate(t.dir, corpusDir, { embedder, out: opts.out }, o.io);
    return { ...r, from: t.label };
  } finally {
    t.cleanup();
  }
}
