/**
 * The index layer end to end in process (src/index/): build from the committed corpus with the
 * committed fixture encoder, query in the three modes, update with tombstones (unchanged segments
 * byte-identical, only a new segment and the tombstone file differ), compact, and recall@5 of BM25,
 * dense and hybrid on the labelled query set (hybrid must beat both, issue #20).
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordingHost } from '../../src/foundation/io-host.js';
import {
  buildIndex,
  compactIndex,
  embedderDirFiles,
  embedderFilesDigest,
  openIndex,
  updateIndex,
  type IndexReader,
} from '../../src/index/index.js';

const CORPUS = 'artifacts/corpus/kiosk';
const EMBEDDER = 'artifacts/models/embedder';
const QUERIES = 'artifacts/corpus/kiosk.queries.jsonl';

let tmp: string;
let reader: IndexReader;

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'edgectl-index-'));
  await buildIndex(CORPUS, { embedderDir: EMBEDDER, outDir: join(tmp, 'v1') });
  reader = await openIndex(join(tmp, 'v1'), { embedderDir: EMBEDDER });
});
afterAll(async () => {
  await reader.close();
  rmSync(tmp, { recursive: true, force: true });
});

async function recallAt5(r: IndexReader, mode: 'bm25' | 'dense' | 'hybrid'): Promise<number> {
  const qs = readFileSync(QUERIES, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { query: string; relevant: string[] });
  let sum = 0;
  for (const q of qs) {
    const docs = new Set((await r.query(q.query, { k: 5, mode })).passages.map((p) => p.docId));
    sum += q.relevant.filter((d) => docs.has(d)).length / q.relevant.length;
  }
  return sum / qs.length;
}

describe('build and query', () => {
  it('writes a manifest that pins the embedder and the chunking', () => {
    const m = reader.manifest;
    expect(m.format).toBe('edgectl-index/1');
    expect(m.documents).toBe(120);
    expect(m.passages).toBeGreaterThanOrEqual(120);
    expect(m.tombstones).toBe(0);
    expect(m.embedder).toMatchObject({ name: 'kiosk-lsa-embedder', dim: 64, maxTokens: 256 });
    expect(m.embedder.digest).toBe(embedderFilesDigest(embedderDirFiles(EMBEDDER)));
    expect(m.chunking).toEqual({ maxWords: 96, overlapWords: 16 });
    expect(m.newestDocumentTime).toMatch(/^\d{4}-\d\d-\d\dT/);
  });

  it('answers with fused scores and both ranks', async () => {
    const r = await reader.query('E-104 receipt printer jammed', { k: 5 });
    expect(r.passages).toHaveLength(5);
    expect(r.passages[0]?.docId).toMatch(/printer-jam/);
    expect(r.passages[0]?.bm25Rank).toBeGreaterThan(0);
    expect(r.passages[0]?.denseRank).toBeGreaterThan(0);
    const scores = r.passages.map((p) => p.score);
    expect([...scores].sort((a, b) => b - a)).toEqual(scores);
    const bm = await reader.query('E-104', { k: 3, mode: 'bm25' });
    expect(bm.passages.every((p) => p.denseRank === undefined && p.bm25Rank !== undefined)).toBe(true);
    expect(bm.passages[0]?.text).toContain('E-104');
  });

  it('hybrid recall@5 on the labelled set beats BM25 and dense alone', async () => {
    const [bm25, dense, hybrid] = [
      await recallAt5(reader, 'bm25'),
      await recallAt5(reader, 'dense'),
      await recallAt5(reader, 'hybrid'),
    ];
    expect(hybrid).toBeGreaterThan(bm25);
    expect(hybrid).toBeGreaterThan(dense);
  });

  it('truncates a query longer than the encoder context and says so', async () => {
    const host = recordingHost();
    const r2 = await openIndex(join(tmp, 'v1'), { embedderDir: EMBEDDER, io: host });
    try {
      const long = 'receipt printer jammed '.repeat(200);
      const r = await r2.query(long, { k: 3 });
      expect(r.truncated).toBe(true);
      expect(r.passages.length).toBe(3);
      expect(host.lines.join('\n')).toMatch(/longer than the encoder's context \(256 tokens\)/);
    } finally {
      await r2.close();
    }
  });
});

describe('update and compaction', () => {
  it('moves only a new segment and the tombstones; compaction drops the dead passages', async () => {
    const corpus = join(tmp, 'corpus');
    cpSync(CORPUS, corpus, { recursive: true });
    writeFileSync(
      join(corpus, 'howto/printer-jam.md'),
      '# Printer jam\n\nUse the blue lever XQ-77 to clear it.\n',
    );
    unlinkSync(join(corpus, 'incidents/wifi.txt'));
    writeFileSync(join(corpus, 'howto/new-topic.md'), '# Espresso machine\n\nDescale monthly with ZZ-9.\n');
    const v1 = join(tmp, 'v1');
    const u = await updateIndex(v1, corpus, { embedderDir: EMBEDDER, outDir: join(tmp, 'v2') });
    expect(u).toMatchObject({
      added: 1,
      changed: 1,
      deleted: 1,
      unchanged: 118,
      newSegments: ['seg-000002'],
    });
    expect(u.manifest.documents).toBe(120);
    const first = u.manifest.segments[0];
    expect(first).toEqual(reader.manifest.segments[0]); // same files, same hashes
    for (const f of first?.files ?? [])
      expect(readFileSync(join(tmp, 'v2', f.path))).toEqual(readFileSync(join(v1, f.path)));
    expect(u.manifest.tombstoneFile).toBeDefined();
    expect(u.manifest.tombstones).toBeGreaterThanOrEqual(2);

    const r2 = await openIndex(join(tmp, 'v2'), { embedderDir: EMBEDDER });
    try {
      const hits = (await r2.query('XQ-77 blue lever', { k: 3, mode: 'bm25' })).passages;
      expect(hits[0]?.docId).toBe('howto/printer-jam.md');
      const all = (await r2.query('wifi internet signal dropping', { k: 50, mode: 'bm25' })).passages;
      expect(all.map((p) => p.docId)).not.toContain('incidents/wifi.txt');
      const old = (await r2.query('torn paper shiny side', { k: 50, mode: 'bm25' })).passages;
      expect(old.map((p) => p.docId)).not.toContain('howto/printer-jam.md');
    } finally {
      await r2.close();
    }

    const same = await updateIndex(join(tmp, 'v2'), corpus, {
      embedderDir: EMBEDDER,
      outDir: join(tmp, 'v3'),
    });
    expect(same).toMatchObject({ added: 0, changed: 0, deleted: 0, newSegments: [] });
    expect(readFileSync(join(tmp, 'v3/index.json'))).toEqual(readFileSync(join(tmp, 'v2/index.json')));

    const c = compactIndex(join(tmp, 'v2'), join(tmp, 'v2c'));
    expect(c.manifest).toMatchObject({ passages: u.manifest.passages, documents: 120, tombstones: 0 });
    expect(c.manifest.segments).toHaveLength(1);
    expect(c.manifest.tombstoneFile).toBeUndefined();
    const rc = await openIndex(join(tmp, 'v2c'), { embedderDir: EMBEDDER });
    const r2b = await openIndex(join(tmp, 'v2'), { embedderDir: EMBEDDER });
    try {
      for (const q of ['XQ-77 blue lever', 'card machine declined', 'fridge too warm']) {
        const a = (await rc.query(q, { k: 5, mode: 'bm25' })).passages.map((p) => p.id);
        const b = (await r2b.query(q, { k: 5, mode: 'bm25' })).passages.map((p) => p.id);
        expect(a).toEqual(b);
      }
    } finally {
      await rc.close();
      await r2b.close();
    }
  });
});

describe('IVF dense search', () => {
  it('stores and reloads the IVF; probing every list equals exact search, the default nearly so', async () => {
    const dir = join(tmp, 'ivf');
    const b = await buildIndex(CORPUS, { embedderDir: EMBEDDER, outDir: dir, ivfMinPassages: 16 });
    expect(b.manifest.segments[0]?.ivf).toBe(true);
    const r = await openIndex(dir, { embedderDir: EMBEDDER });
    try {
      const qs = readFileSync(QUERIES, 'utf8')
        .trim()
        .split('\n')
        .map((l) => (JSON.parse(l) as { query: string }).query);
      let overlap = 0;
      for (const q of qs) {
        const { vector } = await r.embedQuery(q);
        const exact = r.denseSearch(vector, 10, { exact: true });
        expect(r.denseSearch(vector, 10, { nprobe: 1000 })).toEqual(exact);
        const approx = new Set(r.denseSearch(vector, 10));
        overlap += exact.filter((id) => approx.has(id)).length / 10;
      }
      expect(overlap / qs.length).toBeGreaterThanOrEqual(0.8);
    } finally {
      await r.close();
    }
  });
});
