/**
 * What `edgectl index query <target> "text"` queries (docs/cli.md): an index directory (the index
 * engine's own case), a site (the index its current generation serves, with the embedder beside
 * it: `generations/<id>/indexes/<name>` and `embedders/<name>`), or a registry ref
 * (`index/<name>@<version>`: the index is pulled, verified, into a temporary directory through the
 * local chunk cache and removed after the query; the embedder its manifest pins is pulled into the
 * project's `.edgectl/artifacts/` (`projectArtifactDir`), where it stays for the next query or update).
 * A site serving several indexes needs `--index <name>`. Nothing found is a NotFoundError (exit 3)
 * naming what was tried.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NotFoundError, UserError } from '../foundation/errors.js';
import type { Io } from '../foundation/output.js';
import { defaultCacheDir } from '../artifact/chunk-cache.js';
import { resolveRef } from '../artifact/manifest-store.js';
import { projectArtifactDir, pullArtifact } from '../artifact/pull.js';
import { parseRef } from '../artifact/ref.js';
import { openStore } from '../registry/open-store.js';
import { loadTrustInForce } from '../registry/trust-history.js';
import { generationDir, pointerTarget } from './generation.js';
import { siteDataPaths } from './data-dir.js';
import { resolveSiteDataDir } from './service.js';

export interface IndexTarget {
  /** The index directory. */
  dir: string;
  /** Its embedder directory, when the target says (a site or a ref); else the engine's default. */
  embedderDir: string | undefined;
  /** What was queried, for the result (`store-001:kb`, `index/kb@1.0.0`, a path). */
  label: string;
  cleanup(): void;
}

export interface IndexTargetOptions {
  projectRoot: string;
  dataDirFlag: string | undefined;
  /** `--index`: which of a site's indexes. */
  index: string | undefined;
  registryUrl: string;
  trustPath: string;
  io: Io;
}

const none = () => undefined;

function isDir(path: string): boolean {
  return existsSync(path) && statSync(path).isDirectory();
}

async function fromSite(site: string, o: IndexTargetOptions): Promise<IndexTarget | undefined> {
  const dataDir = resolveSiteDataDir(o.projectRoot, site, o.dataDirFlag);
  const paths = siteDataPaths(dataDir);
  if (!existsSync(paths.root)) return undefined;
  const id = await pointerTarget(paths, 'current');
  if (id === undefined) {
    throw new NotFoundError(`site ${site} has no generation installed yet (${paths.root})`, {
      code: 'E_INDEX_NOT_FOUND',
      suggestion: `sync it first: edgectl site sync ${site} --once`,
    });
  }
  const gen = generationDir(paths, id);
  const names = isDir(join(gen, 'indexes')) ? readdirSync(join(gen, 'indexes')).sort() : [];
  const name = o.index ?? (names.length === 1 ? names[0] : undefined);
  if (name === undefined || !names.includes(name)) {
    const what = names.length === 0 ? 'serves no index' : `serves ${names.join(', ')}`;
    const err = names.length > 1 && o.index === undefined ? UserError : NotFoundError;
    throw new err(`site ${site} ${what}${o.index ? `, not "${o.index}"` : ''}`, {
      code: 'E_INDEX_NOT_FOUND',
      suggestion:
        names.length > 1
          ? 'pick one with --index <name>'
          : 'assign one in sites/<site>.yaml assignments.indexes',
    });
  }
  return {
    dir: join(gen, 'indexes', name),
    embedderDir: join(gen, 'embedders', name),
    label: `${site}:${name}`,
    cleanup: none,
  };
}

async function fromRef(text: string, o: IndexTargetOptions): Promise<IndexTarget> {
  const ref = parseRef(text);
  if (ref.kind !== 'index')
    throw new UserError(`${text} is a ${ref.kind}; index query takes index refs`, { code: 'E_REF' });
  const store = await openStore(o.registryUrl);
  const tmp = mkdtempSync(join(tmpdir(), 'edgectl-index-query-'));
  try {
    const trust = await loadTrustInForce(store, o.trustPath, new Date());
    const loaded = await resolveRef(store, ref, trust);
    const embedder = loaded.manifest.meta.embedder;
    if (typeof embedder !== 'string') {
      throw new UserError(`${loaded.ref} pins no embedder model (meta.embedder)`, {
        code: 'E_INDEX_EMBEDDER',
      });
    }
    const common = { store, trust, cacheDir: defaultCacheDir(), io: o.io };
    await pullArtifact({ ...common, ref: loaded.ref, dir: join(tmp, 'index') });
    const pulled = await pullArtifact({
      ...common,
      ref: embedder,
      dir: projectArtifactDir(o.projectRoot, embedder),
    });
    return {
      dir: join(tmp, 'index'),
      embedderDir: pulled.dir,
      label: loaded.ref,
      cleanup: () => rmSync(tmp, { recursive: true, force: true }),
    };
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw err;
  } finally {
    await store.close();
  }
}

/** Resolves `target` (see the module comment). */
export async function resolveIndexTarget(target: string, o: IndexTargetOptions): Promise<IndexTarget> {
  if (isDir(target)) return { dir: target, embedderDir: undefined, label: target, cleanup: none };
  if (target.startsWith('index/') || target.includes('@')) return fromRef(target, o);
  const site = await fromSite(target, o);
  if (site) return site;
  throw new NotFoundError(
    `"${target}" is not an index directory, an index ref or a site with a data directory`,
    {
      code: 'E_INDEX_NOT_FOUND',
      suggestion:
        'give a directory built by `edgectl index build`, a ref such as index/kb@1.0.0, or a site name (--data-dir if it is not in the default place)',
    },
  );
}
