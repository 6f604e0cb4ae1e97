import { describe, expect, it } from 'vitest';
import { ExitCode, UserError } from '../../src/foundation/errors.js';
import { CHUNKING_ALGORITHM, DEFAULT_CHUNKER } from '../../src/artifact/chunker.js';
import { MANIFEST_SCHEMA, fileSetKey, parseManifest, type Manifest } from '../../src/artifact/manifest.js';
import { planOrderedRanges, planRanges } from '../../src/artifact/ranges.js';

const d = (c: string) => `sha256:${c.repeat(64)}`;

function manifest(files: Manifest['files']): Manifest {
  return {
    schema: MANIFEST_SCHEMA,
    kind: 'model',
    name: 'draft',
    version: '1.0.0',
    created: '2026-01-01T00:00:00.000Z',
    size: files.reduce((n, f) => n + f.size, 0),
    meta: {},
    chunking: { algorithm: CHUNKING_ALGORITHM, ...DEFAULT_CHUNKER },
    blobs: [{ digest: d('b'), size: 100 }],
    files,
  };
}

const file = (path: string) => ({
  path,
  size: 10,
  sha256: d('f'),
  chunks: [{ digest: d('c'), size: 10, blob: d('b'), offset: 0 }],
});

function invalid(m: unknown, pattern: RegExp): void {
  try {
    parseManifest(m, 'artifacts/model/draft/1.0.0.json');
  } catch (err) {
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).exitCode).toBe(ExitCode.Usage);
    expect((err as Error).message).toMatch(/^artifacts\/model\/draft\/1\.0\.0\.json: invalid manifest: /);
    expect((err as Error).message).toMatch(pattern);
    return;
  }
  throw new Error('expected the manifest to be refused');
}

describe('manifest schema and consistency', () => {
  it('accepts a consistent manifest', () => {
    expect(parseManifest(manifest([file('model.onnx'), file('sub/dir/x.bin')]), 'm').files).toHaveLength(2);
  });

  it('refuses path traversal, absolute paths and unnormalized paths (exit 2, naming the field)', () => {
    invalid(
      manifest([file('../../etc/passwd')]),
      /files\.0\.path: unsafe path "..\/..\/etc\/passwd": escapes the artifact/,
    );
    invalid(manifest([file('/etc/passwd')]), /is absolute/);
    invalid(manifest([file('a/./b')]), /not normalized/);
    invalid(manifest([file('a\\..\\b')]), /backslash/);
    invalid(manifest([file('C:/x')]), /is absolute/);
  });

  it('refuses duplicate paths and a file that is also a directory', () => {
    invalid(manifest([file('a'), file('a')]), /"a" appears twice/);
    invalid(manifest([file('a'), file('a/b')]), /"a" is a file but also the directory of a\/b/);
  });

  it('refuses chunks outside their blob, unknown blobs and sizes that do not add up', () => {
    const outside = manifest([
      { ...file('x'), chunks: [{ digest: d('c'), size: 10, blob: d('b'), offset: 95 }] },
    ]);
    invalid(outside, /lies outside blob of 100 bytes/);
    const unknown = manifest([
      { ...file('x'), chunks: [{ digest: d('c'), size: 10, blob: d('e'), offset: 0 }] },
    ]);
    invalid(unknown, /is not listed in blobs/);
    invalid(manifest([{ ...file('x'), size: 11 }]), /chunks add up to 10, not 11/);
    invalid({ ...manifest([file('x')]), size: 5 }, /files add up to 10, not 5/);
    invalid({ ...manifest([file('x')]), version: '1.0' }, /not a semantic version/);
    invalid({ ...manifest([file('x')]), extra: 1 }, /Unrecognized key/i);
  });

  it('identifies content by files only (paths, sizes, hashes, modes)', () => {
    expect(fileSetKey([file('b'), file('a')])).toBe(fileSetKey([file('a'), file('b')]));
    expect(fileSetKey([file('a')])).not.toBe(fileSetKey([{ ...file('a'), mode: 0o755 }]));
  });
});

describe('read planning', () => {
  const c = (blob: string, offset: number, size = 10) => ({
    chunk: { digest: d('c'), size, blob: d(blob), offset },
    tag: offset,
  });

  it('merges adjacent chunks of one blob into one range, capped in size', () => {
    const r = planRanges([c('a', 20), c('a', 0), c('a', 10), c('b', 0)], {
      maxRangeBytes: 1000,
      maxGapBytes: 0,
    });
    expect(r.map((x) => [x.blob.slice(7, 8), x.start, x.end, x.pieces.length])).toEqual([
      ['a', 0, 30, 3],
      ['b', 0, 10, 1],
    ]);
    expect(
      planRanges([c('a', 0), c('a', 10), c('a', 20)], { maxRangeBytes: 20, maxGapBytes: 0 }),
    ).toHaveLength(2);
    expect(planRanges([c('a', 0), c('a', 50)], { maxRangeBytes: 1000, maxGapBytes: 40 })).toHaveLength(1);
    expect(planRanges([c('a', 0), c('a', 50)], { maxRangeBytes: 1000, maxGapBytes: 39 })).toHaveLength(2);
  });

  it('keeps file order when streaming', () => {
    const r = planOrderedRanges([c('a', 10), c('a', 0)], { maxRangeBytes: 1000, maxGapBytes: 0 });
    expect(r.map((x) => x.start)).toEqual([10, 0]);
  });
});
