/**
 * File-system primitives of the directory registry backend (fs-store.ts): errno tests, directory
 * fsync (so a link or rename survives a crash), streaming file hashes and the per-process etag
 * cache (so heads and lists of large immutable blobs are not rehashed), and the mapping of
 * a failed file operation to the typed registry error with a fix. Registry layout and failure
 * behaviour are described in docs/operations.md and docs/formats.md.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { OperationalError } from '../foundation/errors.js';

export function errCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | null)?.code;
}

export function isMissing(err: unknown): boolean {
  const code = errCode(err);
  return code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR';
}

export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export async function hashFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** A file-system failure as the typed registry error (access denied is not "unreachable"). */
export function registryIoError(url: string, op: string, path: string, err: unknown): OperationalError {
  const code = errCode(err);
  if (code === 'EACCES' || code === 'EPERM') {
    // Not "unreachable": the registry is there and refuses us, which retrying will not fix.
    return new OperationalError(`registry ${url}: access denied to ${op} ${path}`, {
      code: 'E_ACCESS_DENIED',
      suggestion: `check the permissions of ${path} for the user running edgectl`,
      cause: err,
    });
  }
  return new OperationalError(`registry ${url}: cannot ${op} ${path}: ${(err as Error).message}`, {
    code: 'E_REGISTRY_IO',
    suggestion: 'check that the registry directory exists, is writable and the disk is not full',
    cause: err,
  });
}

/** The parts of a bigint `stat` that identify a file's content. */
export interface FileIdentity {
  ino: bigint;
  size: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
}

/** Etags (content SHA-256) cached per path while the file's identity is unchanged. */
export class EtagCache {
  private readonly byPath = new Map<string, FileIdentity & { etag: string }>();

  /** The cached etag, when the file still has the identity it had when hashed. */
  lookup(path: string, st: FileIdentity): string | undefined {
    const c = this.byPath.get(path);
    if (c && c.ino === st.ino && c.size === st.size && c.mtimeNs === st.mtimeNs && c.ctimeNs === st.ctimeNs)
      return c.etag;
    return undefined;
  }

  remember(path: string, st: FileIdentity, etag: string): void {
    this.byPath.set(path, { ino: st.ino, size: st.size, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs, etag });
  }

  clear(): void {
    this.byPath.clear();
  }
}
