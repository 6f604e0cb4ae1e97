/**
 * Read planning: turns chunk locations (blob, offset, size) into few ranged GETs. Adjacent chunks of
 * one blob are merged into one range (small gaps too, trading a few wasted bytes for a request),
 * capped at `maxRangeBytes` so memory stays bounded. This is what keeps S3 requests per GiB pulled
 * far below one per chunk.
 */
import type { ManifestChunk } from './manifest.js';

export interface RangePiece<T> {
  chunk: ManifestChunk;
  /** Offset of the chunk inside the range's bytes. */
  at: number;
  tag: T;
}

export interface ReadRange<T> {
  blob: string;
  start: number;
  end: number;
  pieces: RangePiece<T>[];
}

export interface RangeOptions {
  maxRangeBytes: number;
  /** Merge two chunks of one blob when at most this many unused bytes lie between them. */
  maxGapBytes: number;
}

export const DEFAULT_RANGE_OPTIONS: RangeOptions = {
  maxRangeBytes: 64 * 1024 * 1024,
  maxGapBytes: 256 * 1024,
};

function extend<T>(r: ReadRange<T>, chunk: ManifestChunk, tag: T): void {
  r.pieces.push({ chunk, at: chunk.offset - r.start, tag });
  r.end = Math.max(r.end, chunk.offset + chunk.size);
}

function fits<T>(r: ReadRange<T> | undefined, c: ManifestChunk, o: RangeOptions): r is ReadRange<T> {
  return (
    r !== undefined &&
    r.blob === c.blob &&
    c.offset >= r.start &&
    c.offset <= r.end + o.maxGapBytes &&
    Math.max(r.end, c.offset + c.size) - r.start <= o.maxRangeBytes
  );
}

/** Ranges for a set of chunks in any order: grouped per blob, sorted by offset (fewest requests). */
export function planRanges<T>(
  items: { chunk: ManifestChunk; tag: T }[],
  o: RangeOptions = DEFAULT_RANGE_OPTIONS,
): ReadRange<T>[] {
  const sorted = [...items].sort((a, b) =>
    a.chunk.blob !== b.chunk.blob ? (a.chunk.blob < b.chunk.blob ? -1 : 1) : a.chunk.offset - b.chunk.offset,
  );
  const out: ReadRange<T>[] = [];
  let cur: ReadRange<T> | undefined;
  for (const { chunk, tag } of sorted) {
    if (fits(cur, chunk, o)) extend(cur, chunk, tag);
    else {
      cur = { blob: chunk.blob, start: chunk.offset, end: chunk.offset + chunk.size, pieces: [] };
      extend(cur, chunk, tag);
      out.push(cur);
    }
  }
  return out;
}

/**
 * Ranges that keep the given order of chunks (for streaming a file front to back): only runs of
 * chunks that follow each other in one blob are merged.
 */
export function planOrderedRanges<T>(
  items: { chunk: ManifestChunk; tag: T }[],
  o: RangeOptions = DEFAULT_RANGE_OPTIONS,
): ReadRange<T>[] {
  const out: ReadRange<T>[] = [];
  let cur: ReadRange<T> | undefined;
  for (const { chunk, tag } of items) {
    if (cur && fits(cur, chunk, o) && chunk.offset >= (cur.pieces.at(-1)?.chunk.offset ?? 0))
      extend(cur, chunk, tag);
    else {
      cur = { blob: chunk.blob, start: chunk.offset, end: chunk.offset + chunk.size, pieces: [] };
      extend(cur, chunk, tag);
      out.push(cur);
    }
  }
  return out;
}
