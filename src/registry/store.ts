/**
 * The Store interface: the registry's only view of storage (docs/formats.md, docs/operations.md "The registry on S3, MinIO or R2"). Two backends
 * implement it, a directory (fs-store.ts) and S3 (s3-store.ts), and every registry test runs on
 * both. Keys are slash-separated relative paths such as `blobs/sha256/<hex>`.
 *
 * Immutable objects are written with `putIfAbsent` (create-only); the one mutable object
 * (`fleet/head.json`) is written with `compareAndSwap`. Every operation counts its requests so
 * commands can report `requests` and benchmarks can measure requests per GiB.
 *
 * Every read is bounded before it is buffered (limits.ts): a whole-object read checks the object's
 * size against the cap of its kind (or the caller's smaller `maxBytes`) before reading, and counts
 * while reading; a ranged read is at most MAX_RANGE_BYTES and may pin the object's exact size.
 */
import type { RegistryLimits } from './limits.js';

export interface ObjectInfo {
  key: string;
  size: number;
  /** Opaque version tag: S3 ETag, or a content hash on fs. Used for conditional get and CAS. */
  etag: string;
  /** Last modification time when the backend reports it (fs mtime, S3 LastModified); gc's grace period uses it. */
  modified?: Date;
}

export interface GetResult extends ObjectInfo {
  body: Buffer;
}

export interface ListOptions {
  /** Only keys that sort after this one (code-unit order); it need not exist. */
  startAfter?: string;
}

export interface GetOptions {
  /**
   * Refuse (VerificationError E_OBJECT_TOO_LARGE, exit 4) an object larger than this, before
   * buffering it. Default: the cap of the key's kind in `limits` (limits.ts); a larger value is
   * clamped to that cap.
   */
  maxBytes?: number;
}

export interface RangeOptions {
  /**
   * The object must be exactly this many bytes (a blob checked against its manifest): checked with
   * the same request (fstat, Content-Range); otherwise OperationalError E_OBJECT_SIZE.
   */
  objectSize?: number;
}

export type PutIfAbsentResult =
  /** The object did not exist and was written. */
  | { status: 'created'; etag: string }
  /** An object with exactly these bytes was already there: success, nothing written. */
  | { status: 'exists'; etag: string };

export interface StoreStats {
  /** Requests sent (S3) or operations performed (fs), by kind. */
  requests: number;
  gets: number;
  puts: number;
  heads: number;
  lists: number;
  deletes: number;
  bytesRead: number;
  bytesWritten: number;
}

export interface Store {
  /** The URL the store was opened with (`file:/abs/path` or `s3://bucket/prefix`). */
  readonly url: string;
  /** Whether the backend enforces create-only and compare-and-swap against concurrent writers. */
  readonly enforcesConditionalWrites: boolean;
  /** Size caps for whole-object reads, per kind (limits.ts). */
  readonly limits: RegistryLimits;
  /** Running request counters; `resetStats()` zeroes them. */
  readonly stats: StoreStats;
  resetStats(): void;

  /** Whole object, or undefined when missing. Bounded: see GetOptions.maxBytes. */
  get(key: string, opts?: GetOptions): Promise<GetResult | undefined>;
  /**
   * Conditional get: undefined body with `notModified: true` when the current etag equals `etag`
   * (one request, no body on S3: If-None-Match → 304).
   */
  getIfChanged(
    key: string,
    etag: string | undefined,
    opts?: GetOptions,
  ): Promise<{ notModified: true; etag: string } | { notModified: false; object: GetResult } | undefined>;
  /**
   * Bytes [start, end) of an object (ranged GET), at most MAX_RANGE_BYTES. Throws NotFoundError if
   * missing, OperationalError E_RANGE if the object ends before `end`.
   */
  getRange(key: string, start: number, end: number, opts?: RangeOptions): Promise<Buffer>;
  /**
   * Optional: bytes [start, start + target.length) read into `target` (no allocation; verify streams
   * a GiB through a few reused buffers). Same errors and counting as getRange; callers fall back to
   * getRange on backends without it.
   */
  getRangeInto?(key: string, start: number, target: Uint8Array, opts?: RangeOptions): Promise<void>;
  /** Metadata only, or undefined when missing. */
  head(key: string): Promise<ObjectInfo | undefined>;
  /**
   * Every object whose key starts with `prefix`, sorted by key; with `startAfter`, only those whose
   * key sorts after it (S3 ListObjectsV2 StartAfter), so an incremental reader pays for what is new.
   */
  list(prefix: string, opts?: ListOptions): Promise<ObjectInfo[]>;
  /**
   * Create-only write (`If-None-Match: *` on S3, O_EXCL on fs). Same bytes already there:
   * `exists`. Different bytes: throws ConflictError. Writes are atomic (no partial object visible).
   */
  putIfAbsent(key: string, body: Buffer): Promise<PutIfAbsentResult>;
  /**
   * Replace the object only if its current etag is `expectedEtag` (`undefined` = must not exist).
   * Throws ConflictError when another writer moved it first. Returns the new etag.
   */
  compareAndSwap(key: string, body: Buffer, expectedEtag: string | undefined): Promise<string>;
  /** Deletes an object (gc only). Missing is not an error. */
  delete(key: string): Promise<void>;
  /** Releases sockets and handles. */
  close(): Promise<void>;
}

export function emptyStats(): StoreStats {
  return { requests: 0, gets: 0, puts: 0, heads: 0, lists: 0, deletes: 0, bytesRead: 0, bytesWritten: 0 };
}
