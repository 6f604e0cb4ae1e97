import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_CHUNKER,
  chunkBuffer,
  chunkFile,
  cutPoints,
  sha256Digest,
} from '../../src/artifact/chunker.js';
import { seededBytes, tempDir } from './fixtures.js';

const data = seededBytes(8 * 1024 * 1024, 42);

function sizes(cuts: number[]): number[] {
  return cuts.map((c, i) => c - (i === 0 ? 0 : (cuts[i - 1] as number)));
}

describe('FastCDC chunker', () => {
  it('is deterministic and pinned: same bytes, same boundaries (the format depends on it)', () => {
    const a = cutPoints(data);
    expect(cutPoints(Buffer.from(data))).toEqual(a);
    // Pinned: a change to the Gear table, masks or unrolling would move these and break dedup
    // against every published artifact.
    expect(a.slice(0, 6)).toMatchInlineSnapshot(`
      [
        89070,
        106498,
        186617,
        273897,
        339855,
        405592,
      ]
    `);
    expect(a.at(-1)).toBe(data.length);
  });

  it('respects min and max; only the last chunk may be shorter than min', () => {
    const s = sizes(cutPoints(data));
    for (const size of s.slice(0, -1)) {
      expect(size).toBeGreaterThanOrEqual(DEFAULT_CHUNKER.min);
      expect(size).toBeLessThanOrEqual(DEFAULT_CHUNKER.max);
    }
    const avg = data.length / s.length;
    expect(avg).toBeGreaterThan(48 * 1024);
    expect(avg).toBeLessThan(96 * 1024);
  });

  it('cuts data with no content-defined boundary (zeros) at max', () => {
    const zeros = Buffer.alloc(1024 * 1024 + 5);
    const s = sizes(cutPoints(zeros));
    expect(s.slice(0, -1).every((x) => x === DEFAULT_CHUNKER.max)).toBe(true);
    expect(s.reduce((a, b) => a + b, 0)).toBe(zeros.length);
  });

  it('handles tiny inputs: empty -> no chunk, below min -> one chunk', () => {
    expect(cutPoints(Buffer.alloc(0))).toEqual([]);
    expect(cutPoints(Buffer.alloc(100, 1))).toEqual([100]);
  });

  it('an insertion changes only the chunks around it', () => {
    const edited = Buffer.concat([
      data.subarray(0, 3_000_000),
      Buffer.from('INSERTED'),
      data.subarray(3_000_000),
    ]);
    const before = new Set(chunkBuffer(data).map((c) => c.digest));
    const after = chunkBuffer(edited);
    const fresh = after.filter((c) => !before.has(c.digest));
    expect(fresh.length).toBeGreaterThanOrEqual(1);
    expect(fresh.length).toBeLessThanOrEqual(3);
    const freshBytes = fresh.reduce((n, c) => n + c.size, 0);
    expect(freshBytes).toBeLessThan(3 * DEFAULT_CHUNKER.max);
    // and the new chunks sit next to the edit
    for (const c of fresh) {
      expect(c.offset + c.size).toBeGreaterThan(3_000_000 - DEFAULT_CHUNKER.max * 2);
      expect(c.offset).toBeLessThan(3_000_000 + DEFAULT_CHUNKER.max * 2);
    }
  });

  it('streams a file to exactly the same chunks as the whole buffer, with the file hash', async () => {
    const dir = tempDir();
    const path = join(dir, 'f.bin');
    writeFileSync(path, data);
    let fileDigest = '';
    const streamed = [];
    // A small read size forces many refills across chunk boundaries.
    for await (const c of chunkFile(path, { readSize: 300_000, onFileDigest: (d) => (fileDigest = d) })) {
      expect(sha256Digest(c.data)).toBe(c.digest);
      streamed.push({ offset: c.offset, size: c.size, digest: c.digest });
    }
    expect(streamed).toEqual(chunkBuffer(data));
    expect(fileDigest).toBe(sha256Digest(data));
  });

  it('refuses impossible parameters', () => {
    expect(() => cutPoints(data, { min: 64 * 1024, avg: 64 * 1024, max: 256 * 1024 })).toThrow(
      /min < avg < max/,
    );
  });
});
