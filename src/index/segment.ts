/**
 * One immutable segment of an index (docs/formats.md "Index"): `segments/seg-NNNNNN/` holding
 * `passages.jsonl` (one passage a line: id, docId, text, metadata), `docs.json` (each document's id,
 * content hash, time and passage range), `vectors.f32` (float32 little endian, one row of `dim` per
 * passage), `bm25.json` (postings, bm25.ts) and, for large segments, `ivf.bin` (dense.ts). Written
 * once and never changed; every file is listed in the manifest with its size and SHA-256, which
 * `loadSegment` checks before parsing, so corruption or truncation is refused (exit 4) by name.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { digestOf } from '../foundation/digest.js';
import { VerificationError } from '../foundation/errors.js';
import { buildPostingsJson, parsePostings, type Postings } from './bm25.js';
import { IVF_MIN_PASSAGES, buildIvf, decodeIvf, encodeIvf, type Ivf } from './dense.js';
import type { IndexFile, SegmentEntry } from './manifest.js';

export interface Passage {
  id: string;
  docId: string;
  text: string;
  metadata?: Record<string, unknown>;
}

export interface DocEntry {
  id: string;
  hash: string;
  time: string;
  first: number;
  count: number;
}

export interface SegmentData {
  passages: Passage[];
  docs: DocEntry[];
  /** passages.length × dim floats. */
  vectors: Float32Array;
}

export interface LoadedSegment extends SegmentData {
  entry: SegmentEntry;
  postings: Postings;
  ivf: Ivf | undefined;
}

export const segmentName = (n: number): string => `seg-${String(n).padStart(6, '0')}`;

/** Writes a segment under `<indexDir>/segments/<name>/` and returns its manifest entry. */
export function writeSegment(
  indexDir: string,
  name: string,
  data: SegmentData,
  dim: number,
  ivfMinPassages = IVF_MIN_PASSAGES,
): SegmentEntry {
  const rel = `segments/${name}`;
  mkdirSync(join(indexDir, rel), { recursive: true });
  const n = data.passages.length;
  const vecBytes = new Uint8Array(data.vectors.buffer, data.vectors.byteOffset, n * dim * 4);
  const contents: [string, Uint8Array | string][] = [
    ['passages.jsonl', data.passages.map((p) => `${JSON.stringify(p)}\n`).join('')],
    ['docs.json', `${JSON.stringify(data.docs)}\n`],
    ['vectors.f32', vecBytes],
    ['bm25.json', buildPostingsJson(data.passages.map((p) => p.text))],
  ];
  const ivf = n >= ivfMinPassages;
  if (ivf) contents.push(['ivf.bin', encodeIvf(buildIvf(data.vectors, n, dim), dim)]);
  const files: IndexFile[] = contents.map(([file, body]) => {
    const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
    writeFileSync(join(indexDir, rel, file), bytes);
    return { path: `${rel}/${file}`, size: bytes.length, sha256: digestOf(bytes) };
  });
  return { name, passages: n, documents: data.docs.length, ivf, files };
}

/** Reads a file the manifest lists, refusing (exit 4) a size or hash that differs. */
export function readVerified(indexDir: string, f: IndexFile): Buffer {
  const path = join(indexDir, f.path);
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    throw corrupt(path, `cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  if (bytes.length !== f.size)
    throw corrupt(path, `${bytes.length} bytes, the manifest says ${f.size} (truncated?)`);
  const d = digestOf(bytes);
  if (d !== f.sha256) throw corrupt(path, `sha256 ${d} differs from the manifest's ${f.sha256}`);
  return bytes;
}

function corrupt(path: string, why: string): VerificationError {
  return new VerificationError(`${path}: index segment file is corrupted: ${why}`, {
    code: 'E_INDEX_CORRUPT',
    suggestion: 'Rebuild the index, or sync it again from the registry; the previous index keeps serving.',
    details: { file: path },
  });
}

function parseJsonl(path: string, text: string): Passage[] {
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l, i) => {
      try {
        return JSON.parse(l) as Passage;
      } catch {
        throw corrupt(path, `line ${i + 1} is not JSON`);
      }
    });
}

/** Loads and verifies one segment. */
export function loadSegment(indexDir: string, entry: SegmentEntry, dim: number): LoadedSegment {
  const file = (name: string): { f: IndexFile; path: string } | undefined => {
    const f = entry.files.find((x) => x.path === `segments/${entry.name}/${name}`);
    return f ? { f, path: join(indexDir, f.path) } : undefined;
  };
  const need = (name: string) => {
    const x = file(name);
    if (!x) throw corrupt(join(indexDir, 'index.json'), `segment ${entry.name} lists no ${name}`);
    return { bytes: readVerified(indexDir, x.f), path: x.path };
  };
  const n = entry.passages;
  const p = need('passages.jsonl');
  const passages = parseJsonl(p.path, p.bytes.toString('utf8'));
  if (passages.length !== n) throw corrupt(p.path, `${passages.length} passages, the manifest says ${n}`);
  const d = need('docs.json');
  const docs = JSON.parse(d.bytes.toString('utf8')) as DocEntry[];
  const v = need('vectors.f32');
  if (v.bytes.length !== n * dim * 4) throw corrupt(v.path, `expected ${n} × ${dim} float32`);
  const vectors = new Float32Array(new Uint8Array(v.bytes).buffer, 0, n * dim);
  const b = need('bm25.json');
  const postings = parsePostings(b.bytes.toString('utf8'), n);
  if (typeof postings === 'string') throw corrupt(b.path, postings);
  let ivf: Ivf | undefined;
  if (entry.ivf) {
    const i = need('ivf.bin');
    const parsed = decodeIvf(i.bytes, n, dim);
    if (typeof parsed === 'string') throw corrupt(i.path, parsed);
    ivf = parsed;
  }
  return { entry, passages, docs, vectors, postings, ivf };
}
