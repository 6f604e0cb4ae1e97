/**
 * Crash-safe file operations for the site data directory: whole-file writes that are either the
 * old or the new content after a power cut or kill -9 (temp file in the same directory, fsync,
 * rename, fsync of the directory), and symbolic-link pointers (`current`, `previous`) switched the
 * same way (a link under a temp name renamed over the old one). rename(2) within one directory is
 * atomic on POSIX file systems, so readers never see a half-written file or a missing pointer.
 */
import { randomBytes } from 'node:crypto';
import { open, readlink, rename, rm, symlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

function tempName(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`);
}

/** fsync of a directory, so a rename inside it survives a power cut. */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Replaces `path` with `data` atomically and durably. */
export async function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o644): Promise<void> {
  const tmp = tempName(path);
  const fh = await open(tmp, 'wx', mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } catch (err) {
    await fh.close();
    await rm(tmp, { force: true });
    throw err;
  }
  await fh.close();
  try {
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  await fsyncDir(dirname(path));
}

/** JSON with a trailing newline, written atomically. */
export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  await writeFileAtomic(path, `${JSON.stringify(value, null, 2)}\n`);
}

/** Points the symbolic link `path` at `target` (relative to the link's directory) atomically. */
export async function switchLink(path: string, target: string): Promise<void> {
  const tmp = tempName(path);
  await symlink(target, tmp);
  try {
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  await fsyncDir(dirname(path));
}

/** Target of a symbolic link, or undefined when it does not exist (or is not a link). */
export async function readLinkOrUndefined(path: string): Promise<string | undefined> {
  try {
    return await readlink(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'EINVAL') return undefined;
    throw err;
  }
}
