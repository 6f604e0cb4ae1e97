/**
 * The directory backend of the Store interface (docs/operations.md, docs/formats.md). Keys map to files under the root
 * directory. Create-only writes go temp file + fsync + link(2): link fails with EEXIST atomically,
 * so of several concurrent writers exactly one creates the object and readers never see a partial
 * file. Compare-and-swap takes a per-key lock file (O_EXCL), checks the etag, then temp + fsync +
 * rename(2). The etag is the SHA-256 of the content, cached per (inode, size, mtime, ctime) so that
 * heads and lists of large immutable blobs do not rehash them within a process.
 *
 * Temp files live in `<root>/.tmp/` and locks in `<root>/.locks/` (same file system, so link and
 * rename stay atomic); keys may not start a segment with a dot, so these never collide with objects.
 *
 * The per-key locks (and their limitation after a crash) are in fs-lock.ts; file-system helpers and
 * the typed I/O errors in fs-io.ts.
 */
import { randomBytes } from 'node:crypto';
import {
  link,
  mkdir,
  open,
  readFile,
  readdir,
  rename,
  stat,
  unlink,
  type FileHandle,
} from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { ConflictError, NotFoundError, OperationalError, VerificationError } from '../foundation/errors.js';
import { fill, readBounded } from './bounded-io.js';
import { sha256Hex } from '../foundation/digest.js';
import {
  checkRange,
  effectiveMax,
  objectSizeMismatch,
  objectTooLarge,
  registryLimits,
  type RegistryLimits,
} from './limits.js';
import {
  emptyStats,
  type GetOptions,
  type GetResult,
  type ListOptions,
  type ObjectInfo,
  type PutIfAbsentResult,
  type RangeOptions,
  type Store,
  type StoreStats,
} from './store.js';
import { checkKey, checkPrefix, compareKeys } from './store-keys.js';
import { EtagCache, errCode, fsyncDir, hashFile, isMissing, registryIoError } from './fs-io.js';
import { lockKey } from './fs-lock.js';

export interface FsStoreOptions {
  /** How long compareAndSwap waits for another writer's lock (default 10 s). */
  lockTimeoutMs?: number;
  /** A lock older than this is considered abandoned (default 30 s). */
  staleLockMs?: number;
  /** Read caps over the defaults and the EDGECTL_MAX_*_BYTES environment (limits.ts). */
  limits?: Partial<RegistryLimits>;
}

const TMP_DIR = '.tmp';

export class FsStore implements Store {
  readonly url: string;
  readonly root: string;
  readonly enforcesConditionalWrites = true;
  readonly stats: StoreStats = emptyStats();
  readonly limits: RegistryLimits;
  private readonly lockTimeoutMs: number;
  private readonly staleLockMs: number;
  private readonly etags = new EtagCache();

  constructor(root: string, opts: FsStoreOptions = {}) {
    this.root = resolve(root);
    this.url = `file:${this.root}`;
    this.lockTimeoutMs = opts.lockTimeoutMs ?? 10_000;
    this.staleLockMs = opts.staleLockMs ?? 30_000;
    this.limits = registryLimits(process.env, opts.limits);
  }

  resetStats(): void {
    Object.assign(this.stats, emptyStats());
  }

  private count(kind: 'gets' | 'puts' | 'heads' | 'lists' | 'deletes'): void {
    this.stats.requests++;
    this.stats[kind]++;
  }

  private pathOf(key: string): string {
    return join(this.root, ...checkKey(key).split('/'));
  }

  /** Etag of a file: cached content hash while the file's identity is unchanged. */
  private async etagOf(path: string): Promise<{ size: number; etag: string; modified: Date } | undefined> {
    let st;
    try {
      st = await stat(path, { bigint: true });
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw this.ioError('stat', path, err);
    }
    if (!st.isFile()) return undefined;
    const cached = this.etags.lookup(path, st);
    if (cached !== undefined) {
      return { size: Number(st.size), etag: cached, modified: new Date(Number(st.mtimeNs / 1_000_000n)) };
    }
    let etag: string;
    try {
      etag = await hashFile(path);
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw this.ioError('read', path, err);
    }
    this.etags.remember(path, st, etag);
    return { size: Number(st.size), etag, modified: new Date(Number(st.mtimeNs / 1_000_000n)) };
  }

  private ioError(op: string, path: string, err: unknown): OperationalError {
    return registryIoError(this.url, op, path, err);
  }

  /** Opens an object for reading: undefined when missing (or not a regular file). */
  private async openObject(key: string): Promise<{ fh: FileHandle; path: string } | undefined> {
    const path = this.pathOf(key);
    let fh: FileHandle;
    try {
      fh = await open(path, 'r');
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw this.ioError('open', path, err);
    }
    return { fh, path };
  }

  /**
   * Size-checked body (see readBounded), with the etag cached for the file's identity when `etag`
   * (the caller's) is current: then no byte is read.
   */
  private async readObject(
    key: string,
    max: number,
    etag?: string,
  ): Promise<{ body: Buffer; etag: string } | { notModified: true } | undefined> {
    const opened = await this.openObject(key);
    if (!opened) return undefined;
    const { fh, path } = opened;
    try {
      const st = await fh.stat({ bigint: true });
      if (!st.isFile()) return undefined;
      if (st.size > BigInt(max)) throw objectTooLarge(key, Number(st.size), max);
      if (etag !== undefined && this.etags.lookup(path, st) === etag) return { notModified: true };
      const body = await readBounded(fh, Number(st.size), max, key);
      const bodyEtag = sha256Hex(body);
      if (BigInt(body.length) === st.size) this.etags.remember(path, st, bodyEtag);
      return { body, etag: bodyEtag };
    } catch (err) {
      if (err instanceof VerificationError) throw err;
      if (isMissing(err)) return undefined;
      throw this.ioError('read', path, err);
    } finally {
      await fh.close();
    }
  }

  async get(key: string, opts: GetOptions = {}): Promise<GetResult | undefined> {
    this.count('gets');
    const read = await this.readObject(key, effectiveMax(this.limits, key, opts.maxBytes));
    if (!read || 'notModified' in read) return undefined;
    this.stats.bytesRead += read.body.length;
    return { key, size: read.body.length, etag: read.etag, body: read.body };
  }

  async getIfChanged(
    key: string,
    etag: string | undefined,
    opts: GetOptions = {},
  ): Promise<{ notModified: true; etag: string } | { notModified: false; object: GetResult } | undefined> {
    this.count('gets');
    const read = await this.readObject(key, effectiveMax(this.limits, key, opts.maxBytes), etag);
    if (!read) return undefined;
    // Judged by the bytes read, so a file replaced between the stat and the read is seen as it is.
    if ('notModified' in read || read.etag === etag) return { notModified: true, etag: etag ?? '' };
    // Counted only when returned: an unchanged object costs no body, as a 304 does on S3.
    this.stats.bytesRead += read.body.length;
    return { notModified: false, object: { key, size: read.body.length, etag: read.etag, body: read.body } };
  }

  async getRange(key: string, start: number, end: number, opts: RangeOptions = {}): Promise<Buffer> {
    checkRange(key, start, end);
    const buf = Buffer.alloc(end - start);
    await this.getRangeInto(key, start, buf, opts);
    return buf;
  }

  async getRangeInto(key: string, start: number, target: Uint8Array, opts: RangeOptions = {}): Promise<void> {
    const end = start + target.length;
    checkRange(key, start, end);
    this.count('gets');
    const opened = await this.openObject(key);
    if (!opened) throw new NotFoundError(`registry object ${key} does not exist`, { details: { key } });
    const { fh, path } = opened;
    try {
      if (opts.objectSize !== undefined) {
        const size = (
          await fh.stat().catch((err: unknown) => {
            throw this.ioError('stat', path, err);
          })
        ).size;
        if (size !== opts.objectSize) throw objectSizeMismatch(key, opts.objectSize, size);
      }
      const off = await fill(fh, target, start).catch((err: unknown) => {
        throw this.ioError('read', path, err);
      });
      if (off !== target.length) {
        throw new OperationalError(
          `registry object ${key} is shorter than the requested range [${start}, ${end})`,
          {
            code: 'E_RANGE',
            details: { key, start, end },
          },
        );
      }
      this.stats.bytesRead += off;
    } finally {
      await fh.close();
    }
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    this.count('heads');
    const info = await this.etagOf(this.pathOf(key));
    return info ? { key, size: info.size, etag: info.etag, modified: info.modified } : undefined;
  }

  async list(prefix: string, opts: ListOptions = {}): Promise<ObjectInfo[]> {
    checkPrefix(prefix);
    const after = opts.startAfter;
    this.count('lists');
    const slash = prefix.lastIndexOf('/');
    const baseKey = slash < 0 ? '' : prefix.slice(0, slash);
    const keys: string[] = [];
    const walk = async (dirKey: string): Promise<void> => {
      const dir = dirKey === '' ? this.root : join(this.root, ...dirKey.split('/'));
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (err) {
        if (isMissing(err)) return;
        throw this.ioError('list', dir, err);
      }
      for (const e of entries) {
        if (e.name.startsWith('.')) continue;
        const key = dirKey === '' ? e.name : `${dirKey}/${e.name}`;
        // Skip subtrees that cannot hold a key with the prefix.
        if (!key.startsWith(prefix) && !prefix.startsWith(`${key}/`)) continue;
        if (e.isDirectory()) await walk(key);
        // Keys up to `startAfter` are dropped before they are stat'ed or hashed.
        else if (e.isFile() && key.startsWith(prefix) && (after === undefined || key > after)) keys.push(key);
      }
    };
    await walk(baseKey);
    keys.sort(compareKeys);
    const out: ObjectInfo[] = [];
    for (const key of keys) {
      const info = await this.etagOf(this.pathOf(key));
      if (info) out.push({ key, size: info.size, etag: info.etag, modified: info.modified });
    }
    return out;
  }

  /** Writes bytes to a fresh, fsynced temp file on the registry's file system. */
  private async writeTemp(body: Buffer): Promise<string> {
    const dir = join(this.root, TMP_DIR);
    await mkdir(dir, { recursive: true });
    const tmp = join(dir, `${process.pid}-${randomBytes(8).toString('hex')}`);
    const fh = await open(tmp, 'wx', 0o644);
    try {
      await fh.writeFile(body);
      await fh.sync();
    } finally {
      await fh.close();
    }
    return tmp;
  }

  async putIfAbsent(key: string, body: Buffer): Promise<PutIfAbsentResult> {
    const target = this.pathOf(key);
    this.count('puts');
    const etag = sha256Hex(body);
    let tmp: string | undefined;
    try {
      await mkdir(dirname(target), { recursive: true });
      tmp = await this.writeTemp(body);
      await link(tmp, target);
      await fsyncDir(dirname(target));
      this.stats.bytesWritten += body.length;
      return { status: 'created', etag };
    } catch (err) {
      if (errCode(err) !== 'EEXIST') throw this.ioError('write', target, err);
      // Another size is other content: no need to read (or buffer) what is there.
      const existingSize = (await stat(target).catch(() => undefined))?.size;
      if (existingSize !== undefined && existingSize !== body.length) {
        throw new ConflictError(`registry object ${key} already exists with different content`, {
          code: 'E_EXISTS_DIFFERENT',
          details: { key, existingSize, etag },
        });
      }
      const existing = await readFile(target).catch((e: unknown) => {
        throw this.ioError('read', target, e);
      });
      this.stats.bytesRead += existing.length;
      if (existing.equals(body)) return { status: 'exists', etag };
      throw new ConflictError(`registry object ${key} already exists with different content`, {
        code: 'E_EXISTS_DIFFERENT',
        details: { key, existingEtag: sha256Hex(existing), etag },
      });
    } finally {
      if (tmp) await unlink(tmp).catch(() => undefined);
    }
  }

  async compareAndSwap(key: string, body: Buffer, expectedEtag: string | undefined): Promise<string> {
    const target = this.pathOf(key);
    this.count('puts');
    await mkdir(dirname(target), { recursive: true }).catch((err: unknown) => {
      throw this.ioError('create directory for', target, err);
    });
    const release = await lockKey(this.root, key, {
      url: this.url,
      timeoutMs: this.lockTimeoutMs,
      staleMs: this.staleLockMs,
      ioError: (op, path, err) => this.ioError(op, path, err),
    });
    try {
      let current: string | undefined;
      try {
        current = sha256Hex(await readFile(target));
      } catch (err) {
        if (!isMissing(err)) throw this.ioError('read', target, err);
      }
      if (current !== expectedEtag) {
        throw new ConflictError(
          `registry object ${key} was changed by another writer (expected ${expectedEtag ?? 'no object'}, found ${current ?? 'no object'})`,
          { code: 'E_CAS', details: { key, expected: expectedEtag ?? null, found: current ?? null } },
        );
      }
      const tmp = await this.writeTemp(body);
      try {
        await rename(tmp, target);
      } catch (err) {
        await unlink(tmp).catch(() => undefined);
        throw this.ioError('replace', target, err);
      }
      await fsyncDir(dirname(target));
      this.stats.bytesWritten += body.length;
      return sha256Hex(body);
    } finally {
      await release();
    }
  }

  async delete(key: string): Promise<void> {
    const path = this.pathOf(key);
    this.count('deletes');
    try {
      await unlink(path);
    } catch (err) {
      if (!isMissing(err)) throw this.ioError('delete', path, err);
    }
  }

  async close(): Promise<void> {
    this.etags.clear();
  }
}
