/**
 * Drift (docs/running-sites.md): files of an installed generation that no longer match what was verified
 * at install. `checkDrift` compares each file with generation.json: size and mtime as the fast
 * path, SHA-256 when they differ (or for every file with `verifyAll`); a file whose bytes still
 * hash right but whose mtime moved only gets its mtime back. Files nobody listed (dropped into the
 * generation) are extra. generation.json itself is checked against the verified manifests, so
 * editing it cannot hide a change.
 *
 * `repairDrift` rewrites changed and missing files from the chunk cache, fetching the chunks the
 * cache lacks from the registry (when one is reachable), each file verified by materialize before
 * it is renamed into place; extra files are removed. What cannot be repaired (offline, chunks not
 * cached) is reported, never papered over.
 */
import { lstat, readdir, rm, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import type { ChunkCache } from '../artifact/chunk-cache.js';
import { fetchChunks } from '../artifact/fetch.js';
import type { Manifest } from '../artifact/manifest.js';
import { materialize, sha256File } from '../artifact/materialize.js';
import type { Store } from '../registry/store.js';
import {
  GENERATION_FILE,
  writeGeneration,
  type GenerationArtifact,
  type GenerationFile,
  type GenerationInfo,
} from './generation.js';
import type { DriftReport } from './state-file.js';

export interface DriftProblem {
  artifact: GenerationArtifact;
  file: GenerationFile;
  kind: 'changed' | 'missing';
}

export interface DriftCheck {
  checked: number;
  problems: DriftProblem[];
  /** Paths (relative to the generation) that no artifact lists. */
  extra: string[];
  /** generation.json disagreed with the manifests and was corrected in memory. */
  infoFixed: boolean;
}

export interface CheckOptions {
  verifyAll?: boolean;
  /** Verified manifests by digest; when given, generation.json is checked against them. */
  manifests?: ReadonlyMap<string, Manifest>;
  /** Restore the mtime of files whose bytes are right (default true; status passes false). */
  fixMtimes?: boolean;
}

function sameFiles(a: GenerationArtifact, m: Manifest): boolean {
  if (a.files.length !== m.files.length) return false;
  return a.files.every((f, i) => {
    const g = m.files[i];
    return g !== undefined && g.path === f.path && g.size === f.size && g.sha256 === f.sha256;
  });
}

async function walkFiles(root: string, rel: string, out: string[]): Promise<void> {
  const entries = await readdir(join(root, rel), { withFileTypes: true }).catch(() => []);
  for (const e of entries) {
    const child = rel === '' ? e.name : `${rel}/${e.name}`;
    if (e.isDirectory()) await walkFiles(root, child, out);
    else out.push(child);
  }
}

/** The first component of `rel` under `root` that is not a real directory (a link, a file), if any. */
async function badDirComponent(root: string, rel: string): Promise<string | undefined> {
  let cur = '';
  for (const part of rel.split('/')) {
    cur = cur === '' ? part : `${cur}/${part}`;
    const st = await lstat(join(root, cur)).catch(() => undefined);
    if (!st) return undefined;
    if (!st.isDirectory()) return cur;
  }
  return undefined;
}

/** Compares a generation directory with its generation.json (see the module comment). */
export async function checkDrift(
  genDir: string,
  info: GenerationInfo,
  opts: CheckOptions = {},
): Promise<DriftCheck> {
  let infoFixed = false;
  if (opts.manifests) {
    for (const art of info.artifacts) {
      const m = opts.manifests.get(art.manifestDigest);
      if (m && !sameFiles(art, m)) {
        // mtime -1 never matches: every file of this artifact is hashed below.
        art.files = m.files.map((f) => ({
          path: f.path,
          size: f.size,
          sha256: f.sha256,
          ...(f.mode ? { mode: f.mode } : {}),
          mtimeMs: -1,
        }));
        infoFixed = true;
      }
    }
  }
  const problems: DriftProblem[] = [];
  const listed = new Set<string>([GENERATION_FILE]);
  const replacedDirs: string[] = [];
  const parentCheck = new Map<string, string | undefined>();
  let checked = 0;
  for (const art of info.artifacts) {
    const bad = await badDirComponent(genDir, art.dir);
    if (bad !== undefined) {
      // The artifact directory was replaced (e.g. by a link elsewhere): none of its files count.
      replacedDirs.push(bad);
      for (const f of art.files) {
        listed.add(`${art.dir}/${f.path}`);
        checked++;
        problems.push({ artifact: art, file: f, kind: 'missing' });
      }
      continue;
    }
    for (const f of art.files) {
      listed.add(`${art.dir}/${f.path}`);
      checked++;
      const path = join(genDir, art.dir, f.path);
      const parent = f.path.includes('/') ? f.path.slice(0, f.path.lastIndexOf('/')) : '';
      let badParent = parent === '' ? undefined : parentCheck.get(`${art.dir}/${parent}`);
      if (parent !== '' && !parentCheck.has(`${art.dir}/${parent}`)) {
        badParent = await badDirComponent(join(genDir, art.dir), parent);
        parentCheck.set(`${art.dir}/${parent}`, badParent);
        if (badParent !== undefined) replacedDirs.push(`${art.dir}/${badParent}`);
      }
      const st = badParent === undefined ? await lstat(path).catch(() => undefined) : undefined;
      if (!st) {
        problems.push({ artifact: art, file: f, kind: 'missing' });
        continue;
      }
      if (!st.isFile() || st.size !== f.size) {
        problems.push({ artifact: art, file: f, kind: 'changed' });
        continue;
      }
      const mtimeOk = Math.trunc(st.mtimeMs) === f.mtimeMs;
      if (mtimeOk && !opts.verifyAll) continue;
      if ((await sha256File(path)) !== f.sha256) {
        problems.push({ artifact: art, file: f, kind: 'changed' });
      } else if (!mtimeOk) {
        if (f.mtimeMs < 0) {
          f.mtimeMs = Math.trunc(st.mtimeMs);
        } else if (opts.fixMtimes !== false) {
          await utimes(path, st.atime, new Date(f.mtimeMs));
        }
      }
    }
  }
  const all: string[] = [];
  await walkFiles(genDir, '', all);
  const extra = [...new Set([...replacedDirs, ...all.filter((p) => !listed.has(p))])];
  return { checked, problems, extra, infoFixed };
}

export interface RepairContext {
  cache: ChunkCache;
  manifests: ReadonlyMap<string, Manifest>;
  /** Undefined when offline: only the chunk cache is used. */
  store: Store | undefined;
}

export interface RepairResult {
  repaired: string[];
  unrepaired: string[];
  bytesFetched: number;
}

/** Repairs what checkDrift found and writes back a corrected generation.json. */
export async function repairDrift(
  genDir: string,
  info: GenerationInfo,
  found: DriftCheck,
  ctx: RepairContext,
): Promise<RepairResult> {
  const repaired: string[] = [];
  const unrepaired: string[] = [];
  let bytesFetched = 0;
  for (const p of found.extra) {
    await rm(join(genDir, p), { recursive: true, force: true });
    repaired.push(p);
  }
  for (const prob of found.problems) {
    const rel = `${prob.artifact.dir}/${prob.file.path}`;
    const m = ctx.manifests.get(prob.artifact.manifestDigest);
    const mf = m?.files.find((f) => f.path === prob.file.path);
    if (!m || !mf) {
      unrepaired.push(rel);
      continue;
    }
    const one: Manifest = { ...m, files: [mf] };
    try {
      if (ctx.store)
        bytesFetched += (await fetchChunks(ctx.store, one, ctx.cache, { what: prob.artifact.ref }))
          .bytesFetched;
      const dir = join(genDir, prob.artifact.dir);
      // Whatever sits at the path (a link, a directory, a changed file) is replaced.
      const st = await lstat(join(dir, mf.path)).catch(() => undefined);
      if (st && !st.isFile()) await rm(join(dir, mf.path), { recursive: true, force: true });
      await materialize(one, ctx.cache, dir, { what: prob.artifact.ref });
      const path = join(dir, mf.path);
      if (prob.file.mtimeMs >= 0) await utimes(path, new Date(), new Date(prob.file.mtimeMs));
      else prob.file.mtimeMs = Math.trunc((await lstat(path)).mtimeMs);
      repaired.push(rel);
    } catch {
      // Offline with the chunk not cached, or a cached chunk found corrupt (evicted): next sync.
      unrepaired.push(rel);
    }
  }
  if (found.infoFixed || repaired.length > 0) await writeGeneration(genDir, info);
  return { repaired, unrepaired, bytesFetched };
}

export function driftReport(found: DriftCheck, repair?: RepairResult): DriftReport {
  return {
    checked: found.checked,
    changed: found.problems
      .filter((p) => p.kind === 'changed')
      .map((p) => `${p.artifact.dir}/${p.file.path}`),
    missing: found.problems
      .filter((p) => p.kind === 'missing')
      .map((p) => `${p.artifact.dir}/${p.file.path}`),
    extra: found.extra,
    repaired: repair?.repaired ?? [],
    unrepaired: repair?.unrepaired ?? [],
  };
}
