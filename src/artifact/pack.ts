/**
 * Pack blobs: how new chunks are grouped into few, large registry objects (format in docs/formats.md,
 * "Artifacts"). A pack is the plain concatenation of chunk bytes, stored create-only at
 * `blobs/sha256/<sha256 of the pack>`; the manifest addresses each chunk by pack digest, offset and
 * size, and clients read chunks with ranged GETs. One object per 64 KiB chunk would cost ~16k
 * requests per GiB; 64 MiB packs (Xet's xorb limit) cost one PUT and one HEAD per 64 MiB.
 *
 * Packing is deterministic (chunks in file order, a pack is sealed when the next chunk would pass
 * the target), so re-running a publish that was killed midway produces the same packs, finds them
 * with HEAD and uploads nothing twice.
 */
import { sha256Digest } from './chunker.js';

export const DEFAULT_PACK_TARGET = 64 * 1024 * 1024;

/** Where a chunk will live once its pack is sealed (the digest is known only then). */
export interface PendingPack {
  /** Set when sealed. */
  digest: string | undefined;
  size: number;
}

export interface SealedPack {
  digest: string;
  /** The pack bytes; a view into a buffer owned by this pack only. */
  bytes: Buffer;
  pending: PendingPack;
  chunks: number;
}

export class PackBuilder {
  private buf: Buffer | undefined;
  private used = 0;
  private chunks = 0;
  private current: PendingPack | undefined;

  constructor(
    private readonly target = DEFAULT_PACK_TARGET,
    private readonly maxChunk = 256 * 1024,
  ) {}

  /** True when adding `size` more bytes would pass the target: seal first. */
  wouldOverflow(size: number): boolean {
    return this.used > 0 && this.used + size > this.target;
  }

  /** Copies a chunk into the open pack; returns its pack and offset. */
  add(data: Uint8Array): { pack: PendingPack; offset: number } {
    if (!this.buf || !this.current) {
      // Sized for the target plus one oversize chunk so `add` never reallocates.
      this.buf = Buffer.allocUnsafeSlow(this.target + Math.max(this.maxChunk, data.length));
      this.current = { digest: undefined, size: 0 };
    }
    if (this.used + data.length > this.buf.length) {
      const bigger = Buffer.allocUnsafeSlow(this.used + data.length);
      this.buf.copy(bigger, 0, 0, this.used);
      this.buf = bigger;
    }
    const offset = this.used;
    this.buf.set(data, offset);
    this.used += data.length;
    this.chunks++;
    this.current.size = this.used;
    return { pack: this.current, offset };
  }

  /** Closes the open pack (if any) and returns it with its digest. */
  seal(): SealedPack | undefined {
    if (!this.buf || !this.current || this.used === 0) return undefined;
    const bytes = this.buf.subarray(0, this.used);
    const digest = sha256Digest(bytes);
    this.current.digest = digest;
    const sealed = { digest, bytes, pending: this.current, chunks: this.chunks };
    this.buf = undefined;
    this.current = undefined;
    this.used = 0;
    this.chunks = 0;
    return sealed;
  }
}

/**
 * Store options for writing packs: a pack must go up in one PUT. The S3 store switches to multipart
 * above 16 MiB by default, which would cost ~10 requests per 64 MiB pack instead of one (the
 * reference study's guidance is multipart from ~100 MB). Pass this to openStore when publishing.
 */
export const PACK_STORE_OPTIONS = { s3: { multipartThreshold: 2 * DEFAULT_PACK_TARGET } } as const;
