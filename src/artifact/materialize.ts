/**
 * Materializing an artifact's files from the chunk cache into a directory: the other reusable half
 * of `artifact pull` (and of a site switching generations). Every file is assembled in a staging
 * directory inside the target (same file system), its SHA-256 and size checked against the manifest,
 * and only when every file checks out are they renamed into place, one atomic rename per file. A
 * failed check leaves the target untouched. Files already present with the right hash are kept.
 *
 * The target path of every file is checked again here (paths.ts) and no existing symbolic link on
 * the way is followed, so a manifest or a prepared directory can never make us write outside it.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chmod, lstat, mkdir, open, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError, VerificationError } from '../foundation/errors.js';
import { sha256Digest } from './chunker.js';
import type { ChunkCache } from './chunk-cache.js';
import type { Manifest, ManifestFile } from './manifest.js';
import { pathProblem } from './paths.js';

const STAGING_PREFIX = '.edgectl-staging-';

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * 1024 * 1024 }))
    hash.update(chunk as Buffer);
  return `sha256:${hash.digest('hex')}`;
}

async function lstatOrUndefined(path: string) {
  try {
    return await lstat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Refuses a target path whose existing parts include a symlink or a non-directory parent. */
async function checkTarget(dir: string, path: string): Promise<'missing' | 'file'> {
  const problem = pathProblem(path);
  if (problem) throw new UserError(`refusing to write ${path}: ${problem}`, { code: 'E_UNSAFE_PATH' });
  const parts = path.split('/');
  let cur = dir;
  for (const [i, part] of parts.entries()) {
    cur = join(cur, part);
    const st = await lstatOrUndefined(cur);
    if (!st) return 'missing';
    const last = i === parts.length - 1;
    if (st.isSymbolicLink()) {
      throw new UserError(`refusing to write ${join(dir, path)}: ${cur} is a symbolic link`, {
        code: 'E_UNSAFE_PATH',
        suggestion: 'remove the link (pulls never follow links) and run the command again',
      });
    }
    if (!last && !st.isDirectory()) {
      throw new UserError(`cannot write ${join(dir, path)}: ${cur} is not a directory`, {
        code: 'E_UNSAFE_PATH',
      });
    }
    if (last && !st.isFile()) {
      throw new UserError(`cannot write ${join(dir, path)}: it exists and is not a regular file`, {
        code: 'E_UNSAFE_PATH',
      });
    }
  }
  return 'file';
}

/** Whether `dir/path` already holds exactly this file. */
async function alreadyThere(dir: string, f: ManifestFile): Promise<boolean> {
  if ((await checkTarget(dir, f.path)) === 'missing') return false;
  const st = await lstat(join(dir, f.path));
  if (st.size !== f.size) return false;
  return (await sha256File(join(dir, f.path))) === f.sha256;
}

/** Removes staging directories left by earlier runs that were killed. */
async function cleanStaleStaging(dir: string): Promise<void> {
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch {
    return;
  }
  for (const e of entries) {
    if (!e.startsWith(STAGING_PREFIX)) continue;
    const pid = Number(e.slice(STAGING_PREFIX.length).split('-')[0]);
    let alive = true;
    try {
      process.kill(pid, 0);
    } catch (err) {
      alive = (err as NodeJS.ErrnoException).code === 'EPERM';
    }
    if (!Number.isInteger(pid) || pid <= 0 || !alive)
      await rm(join(dir, e), { recursive: true, force: true });
  }
}

/**
 * Writes one file from cached chunks to `dest`, hashing as it goes. Returns the digest written.
 * A missing cache entry throws (fetch first).
 */
async function assemble(f: ManifestFile, cache: ChunkCache, dest: string): Promise<string> {
  const hash = createHash('sha256');
  const fh = await open(dest, 'wx', f.mode ?? 0o644);
  try {
    for (const c of f.chunks) {
      const data = await cache.read(c.digest);
      hash.update(data);
      await fh.write(data);
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
  return `sha256:${hash.digest('hex')}`;
}

/** Tells a corrupt cache entry (evicted, so a rerun refetches it) from an inconsistent manifest. */
async function diagnose(
  what: string,
  f: ManifestFile,
  cache: ChunkCache,
  actual: string,
): Promise<VerificationError> {
  const bad: number[] = [];
  for (const [i, c] of f.chunks.entries()) {
    const data = await cache.read(c.digest).catch(() => undefined);
    if (!data || sha256Digest(data) !== c.digest) {
      bad.push(i);
      await cache.evict(c.digest);
    }
  }
  if (bad.length > 0) {
    return new VerificationError(
      `${what}: file ${f.path}: cached chunk(s) ${bad.join(', ')} were corrupt and have been removed from the cache`,
      {
        code: 'E_CACHE_CORRUPT',
        suggestion: 'run the command again to fetch them anew',
        details: { file: f.path, chunks: bad },
      },
    );
  }
  return new VerificationError(
    `${what}: file ${f.path}: every chunk verifies but the file hashes to ${actual}, the signed manifest says ${f.sha256}`,
    {
      code: 'E_FILE_HASH',
      suggestion: 'the manifest is inconsistent; republish the artifact',
      details: { file: f.path },
    },
  );
}

export interface MaterializeResult {
  filesWritten: number;
  filesUnchanged: number;
  bytesWritten: number;
}

/**
 * Writes every file of the manifest into `dir` from the cache (all chunks must be cached). All or
 * nothing: on any failure the directory is left as it was.
 */
export async function materialize(
  m: Manifest,
  cache: ChunkCache,
  dir: string,
  opts: { what?: string } = {},
): Promise<MaterializeResult> {
  const what = opts.what ?? `${m.kind}/${m.name}@${m.version}`;
  await mkdir(dir, { recursive: true });
  await cleanStaleStaging(dir);
  const toWrite: ManifestFile[] = [];
  let filesUnchanged = 0;
  for (const f of m.files) {
    if (await alreadyThere(dir, f)) filesUnchanged++;
    else toWrite.push(f);
  }
  if (toWrite.length === 0) return { filesWritten: 0, filesUnchanged, bytesWritten: 0 };

  const staging = join(dir, `${STAGING_PREFIX}${process.pid}-${Date.now().toString(36)}`);
  await mkdir(staging);
  let bytesWritten = 0;
  try {
    const staged: { f: ManifestFile; tmp: string }[] = [];
    for (const [i, f] of toWrite.entries()) {
      const tmp = join(staging, String(i));
      const actual = await assemble(f, cache, tmp);
      if (actual !== f.sha256) throw await diagnose(what, f, cache, actual);
      staged.push({ f, tmp });
      bytesWritten += f.size;
    }
    for (const { f, tmp } of staged) {
      await checkTarget(dir, f.path);
      const target = join(dir, f.path);
      await mkdir(join(target, '..'), { recursive: true });
      await chmod(tmp, f.mode ?? 0o644);
      await rename(tmp, target);
    }
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
  return { filesWritten: toWrite.length, filesUnchanged, bytesWritten };
}
