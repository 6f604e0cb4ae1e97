/**
 * Generations (docs/running-sites.md): the materialized artifacts of one assignment set, in
 * `generations/<id>/{policy,adapters/<name>,indexes/<name>,embedders/<name>,model,shadow/<name>}` plus `generation.json` listing every artifact's
 * ref and manifest digest and every file's size, SHA-256 and mtime (the drift fast path).
 *
 * The id is derived from the pinned manifest digests, so the same assignments always give the same
 * generation and a sync killed after building one finds it complete next time. A generation is
 * built in a staging directory, every file's SHA-256 checked, generation.json written last, and only
 * then renamed to `generations/<id>`: a directory with that name is always complete. Artifacts that
 * an existing generation already holds are hard-linked from it (a 2 MB adapter change does not
 * copy a 256 MiB model), new ones are materialized from the chunk cache; linked files are hashed
 * again before the switch, so nothing unverified is ever pointed at.
 *
 * `current` and `previous` are symbolic links switched atomically (atomic.ts); a switch first moves
 * `previous` to the old current, then `current` to the new generation.
 */
import { createHash } from 'node:crypto';
import { link, lstat, mkdir, readFile, readdir, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import type { ChunkCache } from '../artifact/chunk-cache.js';
import type { Manifest } from '../artifact/manifest.js';
import { materialize, sha256File } from '../artifact/materialize.js';
import { pathProblem } from '../artifact/paths.js';
import { canonicalJson } from '../foundation/canonical-json.js';
import { isDigest } from '../foundation/digest.js';
import { fsyncDir, readLinkOrUndefined, switchLink, writeJsonAtomic } from '../foundation/atomic-file.js';
import type { SiteDataPaths } from './data-dir.js';
import type { AssignedArtifact } from './manifests.js';

export const GENERATION_FILE = 'generation.json';
export const GENERATION_SCHEMA = 'edgectl.generation.v1';
const STAGING_PREFIX = '.staging-';
const ID_RE = /^[0-9a-f]{20}$/;

export interface GenerationFile {
  path: string;
  size: number;
  sha256: string;
  mode?: 0o755 | 0o644;
  /** Whole milliseconds; a file with this size and mtime is taken as unchanged unless --verify-all. */
  mtimeMs: number;
}

export interface GenerationArtifact extends AssignedArtifact {
  files: GenerationFile[];
}

export interface GenerationInfo {
  schema: typeof GENERATION_SCHEMA;
  id: string;
  site: string;
  /** Fleet seq the generation was built for. */
  seq: number;
  created: string;
  artifacts: GenerationArtifact[];
}

const digest = z.string().refine(isDigest);
const generationSchema = z.object({
  schema: z.literal(GENERATION_SCHEMA),
  id: z.string().regex(ID_RE),
  site: z.string(),
  seq: z.number().int().min(0),
  created: z.string(),
  artifacts: z.array(
    z.object({
      slot: z.enum(['policy', 'adapter', 'index', 'model', 'shadow', 'embedder']),
      ref: z.string(),
      manifestDigest: digest,
      dir: z.string().regex(/^(policy|model|(adapters|shadow|indexes|embedders)\/[a-z0-9][a-z0-9_-]*)$/),
      files: z.array(
        z.object({
          // generation.json is local and could be edited: its paths get the manifest path rules.
          path: z.string().refine((p) => pathProblem(p) === undefined),
          size: z.number().int().min(0),
          sha256: digest,
          mode: z.union([z.literal(0o755), z.literal(0o644)]).optional(),
          mtimeMs: z.number(),
        }),
      ),
    }),
  ),
});

/** The generation id of an assignment set: 20 hex digits of the SHA-256 of its pinned digests. */
export function generationId(arts: readonly AssignedArtifact[]): string {
  const key = arts.map((a) => ({ slot: a.slot, ref: a.ref, manifestDigest: a.manifestDigest }));
  return createHash('sha256').update(canonicalJson(key)).digest('hex').slice(0, 20);
}

export function isGenerationId(value: string): boolean {
  return ID_RE.test(value);
}

export function generationDir(paths: SiteDataPaths, id: string): string {
  if (!isGenerationId(id)) throw new TypeError(`invalid generation id ${JSON.stringify(id)}`);
  return join(paths.generations, id);
}

/** generation.json of a generation directory, or undefined when missing or invalid. */
export async function readGeneration(dir: string): Promise<GenerationInfo | undefined> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(join(dir, GENERATION_FILE), 'utf8'));
  } catch {
    return undefined;
  }
  const parsed = generationSchema.safeParse(raw);
  return parsed.success ? (parsed.data as GenerationInfo) : undefined;
}

export async function writeGeneration(dir: string, info: GenerationInfo): Promise<void> {
  await writeJsonAtomic(join(dir, GENERATION_FILE), info);
}

/** The generation id a pointer (`current` or `previous`) names, or undefined. */
export async function pointerTarget(
  paths: SiteDataPaths,
  which: 'current' | 'previous',
): Promise<string | undefined> {
  const target = await readLinkOrUndefined(which === 'current' ? paths.current : paths.previous);
  if (target === undefined) return undefined;
  const m = /^generations\/([0-9a-f]{20})$/.exec(target);
  return m?.[1];
}

/** Files of an artifact as the manifest lists them (mtime unknown until written). */
function expectedFiles(m: Manifest): Omit<GenerationFile, 'mtimeMs'>[] {
  return m.files.map((f) => ({
    path: f.path,
    size: f.size,
    sha256: f.sha256,
    ...(f.mode ? { mode: f.mode } : {}),
  }));
}

/** Whether the recorded file is on disk with its recorded size and mtime (no hashing). */
async function quickMatch(path: string, f: GenerationFile): Promise<boolean> {
  const st = await lstat(path).catch(() => undefined);
  return st !== undefined && st.isFile() && st.size === f.size && Math.trunc(st.mtimeMs) === f.mtimeMs;
}

/** An artifact with the same manifest in an existing generation whose files look intact. */
export async function findReusable(
  paths: SiteDataPaths,
  reuse: readonly GenerationInfo[],
  manifestDigest: string,
): Promise<{ dir: string; art: GenerationArtifact } | undefined> {
  for (const g of reuse) {
    const art = g.artifacts.find((a) => a.manifestDigest === manifestDigest);
    if (!art) continue;
    const dir = join(generationDir(paths, g.id), art.dir);
    let ok = true;
    for (const f of art.files) if (!(await quickMatch(join(dir, f.path), f))) ok = false;
    if (ok) return { dir, art };
  }
  return undefined;
}

/**
 * Hard-links an artifact's files from an existing generation and hashes them again (they were
 * written by an earlier sync and could have changed since). Returns the files linked, or -1 when
 * one does not hash right.
 */
async function linkVerified(source: { dir: string; art: GenerationArtifact }, dir: string): Promise<number> {
  for (const f of source.art.files) {
    const target = join(dir, f.path);
    await mkdir(dirname(target), { recursive: true });
    await link(join(source.dir, f.path), target);
    if ((await sha256File(target)) !== f.sha256) return -1;
  }
  return source.art.files.length;
}

export interface BuildGenerationOptions {
  paths: SiteDataPaths;
  id: string;
  site: string;
  seq: number;
  now: Date;
  artifacts: { art: AssignedArtifact; manifest: Manifest }[];
  cache: ChunkCache;
  /** Generations whose files may be hard-linked (current, previous). */
  reuse: readonly GenerationInfo[];
  /** Brings an artifact's chunks into the cache before it is materialized from it. */
  ensureChunks: (art: AssignedArtifact, manifest: Manifest) => Promise<void>;
}

export interface BuildResult {
  info: GenerationInfo;
  filesLinked: number;
  filesWritten: number;
}

/** Removes staging directories of builds that were interrupted (the caller holds the sync lock). */
export async function cleanStaging(paths: SiteDataPaths): Promise<void> {
  const names = await readdir(paths.generations).catch(() => [] as string[]);
  for (const n of names)
    if (n.startsWith(STAGING_PREFIX)) await rm(join(paths.generations, n), { recursive: true, force: true });
}

/** Builds `generations/<id>` (see the module comment). */
export async function buildGeneration(opts: BuildGenerationOptions): Promise<BuildResult> {
  const { paths, id } = opts;
  const finalDir = generationDir(paths, id);
  const staging = join(paths.generations, `${STAGING_PREFIX}${id}-${process.pid}`);
  await rm(staging, { recursive: true, force: true });
  await mkdir(staging, { recursive: true });
  let filesLinked = 0;
  let filesWritten = 0;
  try {
    const artifacts: GenerationArtifact[] = [];
    for (const { art, manifest } of opts.artifacts) {
      const dir = join(staging, art.dir);
      const source = await findReusable(paths, opts.reuse, art.manifestDigest);
      const linked = source ? await linkVerified(source, dir) : 0;
      if (linked >= 0) filesLinked += linked;
      if (!source || linked < 0) {
        // New, or an older copy whose bytes changed behind an intact size and mtime.
        await rm(dir, { recursive: true, force: true });
        await opts.ensureChunks(art, manifest);
        const r = await materialize(manifest, opts.cache, dir, { what: art.ref });
        filesWritten += r.filesWritten;
        await mkdir(dir, { recursive: true });
      }
      const files: GenerationFile[] = [];
      for (const f of expectedFiles(manifest)) {
        const st = await lstat(join(dir, f.path));
        files.push({ ...f, mtimeMs: Math.trunc(st.mtimeMs) });
      }
      artifacts.push({ ...art, files });
    }
    const info: GenerationInfo = {
      schema: GENERATION_SCHEMA,
      id,
      site: opts.site,
      seq: opts.seq,
      created: opts.now.toISOString(),
      artifacts,
    };
    await writeGeneration(staging, info);
    await rm(finalDir, { recursive: true, force: true });
    await rename(staging, finalDir);
    await fsyncDir(paths.generations);
    return { info, filesLinked, filesWritten };
  } catch (err) {
    await rm(staging, { recursive: true, force: true });
    throw err;
  }
}

/**
 * Points `current` at generation `id`, keeping the old current as `previous` (unless
 * `keepPrevious`: the old current was never committed, and previous holds the committed one).
 * No-op when current already names it. Returns the generation current named before.
 */
export async function switchCurrent(
  paths: SiteDataPaths,
  id: string,
  opts: { keepPrevious?: boolean } = {},
): Promise<string | undefined> {
  const before = await pointerTarget(paths, 'current');
  if (before === id) return before;
  if (before !== undefined && !opts.keepPrevious) await switchLink(paths.previous, `generations/${before}`);
  await switchLink(paths.current, `generations/${id}`);
  return before;
}

/** Removes generation directories other than `keep` (and any staging leftovers). */
export async function pruneGenerations(paths: SiteDataPaths, keep: ReadonlySet<string>): Promise<string[]> {
  const removed: string[] = [];
  const names = await readdir(paths.generations).catch(() => [] as string[]);
  for (const n of names) {
    if (keep.has(n)) continue;
    if (!isGenerationId(n) && !n.startsWith(STAGING_PREFIX)) continue;
    await rm(join(paths.generations, n), { recursive: true, force: true });
    if (isGenerationId(n)) removed.push(n);
  }
  return removed;
}

/**
 * Swaps `current` and `previous` (rollback). `current` moves first: a crash between the two renames
 * leaves both naming the rolled-back-to generation, never a missing current.
 */
export async function swapCurrentAndPrevious(
  paths: SiteDataPaths,
): Promise<{ current: string; previous: string }> {
  const cur = await pointerTarget(paths, 'current');
  const prev = await pointerTarget(paths, 'previous');
  if (cur === undefined || prev === undefined)
    throw new TypeError('swapCurrentAndPrevious needs both pointers');
  await switchLink(paths.current, `generations/${prev}`);
  await switchLink(paths.previous, `generations/${cur}`);
  return { current: prev, previous: cur };
}
