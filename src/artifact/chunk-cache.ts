/**
 * The local, content-addressed chunk cache (`~/.cache/edgectl/chunks` for pulls, the site's data
 * directory for the sync agent): `<root>/sha256/<2 hex>/<64 hex>`, one file per chunk. Only chunks
 * whose bytes were checked against their digest are put here, and each is written to a temp file
 * and renamed into place, so an interrupted pull leaves only whole, verified chunks that the next
 * pull reuses. Readers still re-check file hashes when materializing (a disk can rot).
 */
import { randomBytes } from 'node:crypto';
import { homedir } from 'node:os';
import { mkdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { digestHex } from '../foundation/digest.js';

export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const base =
    env.XDG_CACHE_HOME && env.XDG_CACHE_HOME !== '' ? env.XDG_CACHE_HOME : join(homedir(), '.cache');
  return join(base, 'edgectl', 'chunks');
}

export class ChunkCache {
  private readonly madeDirs = new Set<string>();

  constructor(readonly root: string) {}

  pathOf(digest: string): string {
    const hex = digestHex(digest);
    return join(this.root, 'sha256', hex.slice(0, 2), hex);
  }

  /** Whether the chunk is present with the expected size. */
  async has(digest: string, size: number): Promise<boolean> {
    try {
      const st = await stat(this.pathOf(digest));
      return st.isFile() && st.size === size;
    } catch {
      return false;
    }
  }

  async read(digest: string): Promise<Buffer> {
    return readFile(this.pathOf(digest));
  }

  /** Stores verified chunk bytes atomically; an existing copy is left alone. */
  async put(digest: string, data: Uint8Array): Promise<void> {
    const path = this.pathOf(digest);
    const dir = join(path, '..');
    if (!this.madeDirs.has(dir)) {
      await mkdir(dir, { recursive: true });
      this.madeDirs.add(dir);
    }
    const tmp = `${path}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`;
    await writeFile(tmp, data);
    await rename(tmp, path);
  }

  /** Drops a chunk found to be corrupt. */
  async evict(digest: string): Promise<void> {
    await unlink(this.pathOf(digest)).catch(() => undefined);
  }
}
