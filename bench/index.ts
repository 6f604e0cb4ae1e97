/**
 * Retrieval index benchmark (`npm run bench:index`, issue #20; results in docs/benchmarks.md). Prints
 * one JSON object. The process pins itself to one core (taskset) so query figures are "one core".
 *
 * 1. Committed corpus (artifacts/corpus/kiosk, 120 documents) and its labelled queries: recall@5 of
 *    BM25, dense and hybrid (share of each query's relevant documents among the top 5 passages'
 *    documents, averaged).
 * 2. A generated corpus of N passages (default 100,000; EDGECTL_BENCH_INDEX_PASSAGES=5000 for a
 *    smoke run): documents recombined from the committed corpus' sentences plus random identifiers,
 *    one passage each. Build throughput (passages/s, embedding included) and bytes per passage.
 * 3. Queries (200: labelled queries and 3-word snippets of generated documents): p50/p95 latency of
 *    hybrid k = 10 with the IVF dense search (default nprobe) and pruned BM25, and with exact brute
 *    force and exhaustive BM25, in the same run; BM25 alone pruned and exhaustive; recall@10 of IVF
 *    dense search against exact for several nprobe values.
 * 4. A 1% update (1% of documents changed): time, and bytes a site would fetch, by file (files whose
 *    SHA-256 is new) and by the registry's content-defined chunks (src/artifact/chunker.ts), against the
 *    new version's size; time to open (verify + load) the new version. Then compaction: time and size.
 */
import { readFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chunkBuffer, sha256Digest } from '../src/artifact/chunker.js';
import { pinProcess } from '../src/bench/cpu-pinning.js';
import { createRng } from '../src/inference/rng.js';
import {
  buildIndex,
  compactIndex,
  defaultNprobe,
  openIndex,
  readCorpus,
  updateIndex,
  type IndexReader,
} from '../src/index/index.js';

const ROOT = join(fileURLToPath(import.meta.url), '../..');
const EMBEDDER = join(ROOT, 'artifacts/models/embedder');
const KIOSK = join(ROOT, 'artifacts/corpus/kiosk');
const N = Number(process.env.EDGECTL_BENCH_INDEX_PASSAGES ?? 100_000);
const FILES = 20;
const round = (v: number, d = 2) => Math.round(v * 10 ** d) / 10 ** d;
const pct = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))] ?? NaN;

function labelled(): { query: string; relevant: string[] }[] {
  return readFileSync(join(ROOT, 'artifacts/corpus/kiosk.queries.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { query: string; relevant: string[] });
}

async function recallAt5(r: IndexReader): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const mode of ['bm25', 'dense', 'hybrid'] as const) {
    let sum = 0;
    const qs = labelled();
    for (const q of qs) {
      const docs = new Set((await r.query(q.query, { k: 5, mode })).passages.map((p) => p.docId));
      sum += q.relevant.filter((d) => docs.has(d)).length / q.relevant.length;
    }
    out[mode] = round(sum / qs.length, 3);
  }
  return out;
}

/** N generated documents in FILES JSONL files; `changed` ids get an extra sentence. */
function writeCorpus(dir: string, sentences: string[], changed: ReadonlySet<number> = new Set()): void {
  mkdirSync(dir, { recursive: true });
  const per = Math.ceil(N / FILES);
  for (let f = 0; f < FILES; f++) {
    const lines: string[] = [];
    for (let i = f * per; i < Math.min(N, (f + 1) * per); i++) {
      // One generator per document, so changing one document leaves every other one as it was.
      const rng = createRng(1_000_000 + i);
      const pick = () => sentences[Math.floor(rng.next() * sentences.length)] ?? '';
      const ids = `ticket ${100000 + Math.floor(rng.next() * 900000)}, SKU-${Math.floor(rng.next() * 50000)}`;
      let text = `${pick()} ${pick()} ${pick()} Reference ${ids}.`;
      if (changed.has(i)) text += ` Updated: ${pick()}`;
      lines.push(JSON.stringify({ id: `gen-${i}`, text, time: '2026-12-01T00:00:00Z' }));
    }
    writeFileSync(join(dir, `part-${String(f).padStart(2, '0')}.jsonl`), `${lines.join('\n')}\n`);
  }
}

function filesOf(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && !e.name.startsWith('.'))
    .map((e) => join(e.parentPath, e.name));
}

const dirBytes = (dir: string) => filesOf(dir).reduce((s, f) => s + statSync(f).size, 0);

/** Bytes of `next` a site holding `prev` must fetch: by whole file (new sha256), and by CDC chunk. */
function moved(prev: string, next: string): { total: number; byFile: number; byChunk: number } {
  const prevFiles = new Set<string>();
  const prevChunks = new Set<string>();
  for (const f of filesOf(prev)) {
    const bytes = readFileSync(f);
    prevFiles.add(sha256Digest(bytes));
    for (const c of chunkBuffer(bytes)) prevChunks.add(c.digest);
  }
  let total = 0;
  let byFile = 0;
  let byChunk = 0;
  for (const f of filesOf(next)) {
    const bytes = readFileSync(f);
    total += bytes.length;
    const whole = sha256Digest(bytes);
    if (!prevFiles.has(whole)) byFile += bytes.length;
    for (const c of chunkBuffer(bytes)) if (!prevChunks.has(c.digest)) byChunk += c.size;
  }
  return { total, byFile, byChunk };
}

async function latency(
  r: IndexReader,
  queries: string[],
  opts: { k: number; exact: boolean; mode?: 'hybrid' | 'bm25' },
): Promise<{ p50: number; p95: number; max: number }> {
  for (const q of queries.slice(0, 20)) await r.query(q, opts);
  const ms: number[] = [];
  for (const q of queries) {
    const t0 = performance.now();
    await r.query(q, opts);
    ms.push(performance.now() - t0);
  }
  return { p50: round(pct(ms, 0.5)), p95: round(pct(ms, 0.95)), max: round(Math.max(...ms)) };
}

const stage = (what: string) =>
  process.stderr.write(`[bench:index] ${new Date().toISOString().slice(11, 19)} ${what}\n`);

async function main(): Promise<void> {
  const pinned = pinProcess(process.pid, String(cpus().length - 1));
  const tmp = mkdtempSync(join(tmpdir(), 'edgectl-bench-index-'));
  const out: Record<string, unknown> = {
    date: new Date().toISOString(),
    cpu: cpus()[0]?.model,
    cores: cpus().length,
    pinnedToOneCore: pinned,
    loadavgAtStart: loadavg().map((x) => round(x)),
    passages: N,
  };
  try {
    stage('committed corpus');
    const small = await buildIndex(KIOSK, { embedderDir: EMBEDDER, outDir: join(tmp, 'kiosk') });
    const kr = await openIndex(join(tmp, 'kiosk'), { embedderDir: EMBEDDER });
    out.committed = {
      documents: small.manifest.documents,
      passages: small.manifest.passages,
      recallAt5: await recallAt5(kr),
    };
    await kr.close();

    const sentences = readCorpus(KIOSK).flatMap((d) =>
      d.text.split(/(?<=[.?!])\s+|\n+/).filter((s) => s.split(' ').length >= 4),
    );
    stage(`generating ${N} passages`);
    writeCorpus(join(tmp, 'gen'), sentences);
    stage('building');
    const t0 = performance.now();
    const built = await buildIndex(join(tmp, 'gen'), { embedderDir: EMBEDDER, outDir: join(tmp, 'v1') });
    const buildS = (performance.now() - t0) / 1000;
    const size = dirBytes(join(tmp, 'v1'));
    out.build = {
      passages: built.manifest.passages,
      seconds: round(buildS, 1),
      passagesPerSecond: Math.round(built.manifest.passages / buildS),
      bytes: size,
      bytesPerPassage: Math.round(size / built.manifest.passages),
      ivf: built.manifest.segments[0]?.ivf,
    };

    stage('opening');
    let t = performance.now();
    const r = await openIndex(join(tmp, 'v1'), { embedderDir: EMBEDDER });
    const openMs = performance.now() - t;
    const rng = createRng(11);
    const genTexts = readFileSync(join(tmp, 'gen/part-00.jsonl'), 'utf8').trim().split('\n');
    const queries = [
      ...labelled().map((q) => q.query),
      ...Array.from({ length: 110 }, () => {
        const words = (
          JSON.parse(genTexts[Math.floor(rng.next() * genTexts.length)] ?? '{}') as { text: string }
        ).text.split(' ');
        const at = Math.floor(rng.next() * Math.max(1, words.length - 3));
        return words.slice(at, at + 3).join(' ');
      }),
    ];
    stage('queries');
    out.query = {
      openMs: Math.round(openMs),
      queries: queries.length,
      hybridK10Ivf: await latency(r, queries, { k: 10, exact: false }),
      hybridK10Exact: await latency(r, queries, { k: 10, exact: true }),
      // BM25 alone at the depth a hybrid k = 10 query reads it (50): pruned against exhaustive.
      bm25K50Pruned: await latency(r, queries, { k: 50, exact: false, mode: 'bm25' }),
      bm25K50Exhaustive: await latency(r, queries, { k: 50, exact: true, mode: 'bm25' }),
    };
    stage('recall vs exact');
    const vecs = await Promise.all(queries.map(async (q) => (await r.embedQuery(q)).vector));
    const recall: Record<string, number> = {};
    for (const nprobe of [8, 16, 32, 64]) {
      let sum = 0;
      for (const v of vecs) {
        const exact = new Set(r.denseSearch(v, 10, { exact: true }));
        sum +=
          r.denseSearch(v, 10, { nprobe }).filter((id) => exact.has(id)).length / Math.max(1, exact.size);
      }
      recall[`nprobe${nprobe}`] = round(sum / vecs.length, 3);
    }
    out.denseRecallAt10VsExact = { ...recall, defaultNprobe: defaultNprobe(Math.round(Math.sqrt(N))) };
    await r.close();

    const changed = new Set<number>();
    while (changed.size < Math.max(1, Math.round(N / 100))) changed.add(Math.floor(rng.next() * N));
    rmSync(join(tmp, 'gen'), { recursive: true });
    writeCorpus(join(tmp, 'gen'), sentences, changed);
    stage('1% update');
    t = performance.now();
    const up = await updateIndex(join(tmp, 'v1'), join(tmp, 'gen'), {
      embedderDir: EMBEDDER,
      outDir: join(tmp, 'v2'),
    });
    const updateS = (performance.now() - t) / 1000;
    stage('bytes moved');
    const mv = moved(join(tmp, 'v1'), join(tmp, 'v2'));
    t = performance.now();
    const r2 = await openIndex(join(tmp, 'v2'), { embedderDir: EMBEDDER });
    const open2 = performance.now() - t;
    await r2.close();
    out.update1pct = {
      changedDocuments: up.changed,
      seconds: round(updateS, 2),
      bytesTotal: mv.total,
      bytesNewFiles: mv.byFile,
      shareNewFiles: round(mv.byFile / mv.total, 4),
      bytesNewChunks: mv.byChunk,
      shareNewChunks: round(mv.byChunk / mv.total, 4),
      newFiles: filesOf(join(tmp, 'v2'))
        .map((f) => relative(join(tmp, 'v2'), f))
        .filter((f) => f.startsWith('segments/seg-000002') || f === 'tombstones.json' || f === 'index.json'),
      openNewVersionMs: Math.round(open2),
    };
    stage('compaction');
    t = performance.now();
    const c = compactIndex(join(tmp, 'v2'), join(tmp, 'v3'));
    out.compaction = {
      seconds: round((performance.now() - t) / 1000, 2),
      tombstonesDropped: up.manifest.tombstones,
      bytes: dirBytes(join(tmp, 'v3')),
      passages: c.manifest.passages,
    };
    out.loadavgAtEnd = loadavg().map((x) => round(x));
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  console.log(JSON.stringify(out, null, 2));
}

await main();
