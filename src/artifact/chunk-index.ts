/**
 * The chunk index a publish deduplicates against: which blob (pack) already holds which chunk, at
 * which offset. It is built from manifests the publisher trusts (the newest versions of the same
 * artifact, and an adapter's base model), not from a separate mutable index object: a manifest is
 * immutable and signed, and every blob it references is protected from gc for as long as the
 * manifest exists, so a chunk found here is known to be in the registry without a request per chunk.
 * Chunks of unrelated artifacts are not looked up (a lesson of the design this project implements: the bandwidth win comes from
 * versions of one artifact and adapters over one base).
 */
import type { Manifest } from './manifest.js';

export interface ChunkLocation {
  blob: string;
  offset: number;
  size: number;
  /** Full size of the blob (recorded in the new manifest's blobs table). */
  blobSize: number;
}

export class ChunkIndex {
  private readonly chunks = new Map<string, ChunkLocation>();
  /** Manifests indexed, by `<kind>/<name>@<version>`. */
  readonly sources: string[] = [];

  add(m: Manifest): void {
    const blobSizes = new Map(m.blobs.map((b) => [b.digest, b.size]));
    for (const f of m.files) {
      for (const c of f.chunks) {
        if (this.chunks.has(c.digest)) continue;
        const blobSize = blobSizes.get(c.blob);
        if (blobSize === undefined) continue;
        this.chunks.set(c.digest, { blob: c.blob, offset: c.offset, size: c.size, blobSize });
      }
    }
    this.sources.push(`${m.kind}/${m.name}@${m.version}`);
  }

  get(digest: string, size: number): ChunkLocation | undefined {
    const loc = this.chunks.get(digest);
    return loc && loc.size === size ? loc : undefined;
  }

  get size(): number {
    return this.chunks.size;
  }
}
