import { existsSync, readFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cpus } from 'node:os';
import { pinProcess } from '../src/bench/cpu-pinning.js';
import { createRng } from '../src/inference/rng.js';
import { buildIndex, openIndex, readCorpus } from '../src/index/index.js';

const ROOT = '/work/main';
const EMBEDDER = join(ROOT, 'artifacts/models/embedder');
const KIOSK = join(ROOT, 'artifacts/corpus/kiosk');
const N = 100_000, FILES = 20;
const dir = '/work/prof';
pinProcess(process.pid, String(cpus().length - 1));
const sentences = readCorpus(KIOSK).flatMap((d) => d.text.split(/(?<=[.?!])\s+|\n+/).filter((s) => s.split(' ').length >= 4));
if (!existsSync(join(dir, 'v1/index.json'))) {
  mkdirSync(join(dir, 'gen'), { recursive: true });
  const per = Math.ceil(N / FILES);
  for (let f = 0; f < FILES; f++) {
    const lines: string[] = [];
    for (let i = f * per; i < Math.min(N, (f + 1) * per); i++) {
      const rng = createRng(1_000_000 + i);
      const pick = () => sentences[Math.floor(rng.next() * sentences.length)] ?? '';
      const ids = `ticket ${100000 + Math.floor(rng.next() * 900000)}, SKU-${Math.floor(rng.next() * 50000)}`;
      lines.push(JSON.stringify({ id: `gen-${i}`, text: `${pick()} ${pick()} ${pick()} Reference ${ids}.`, time: '2026-12-01T00:00:00Z' }));
    }
    writeFileSync(join(dir, 'gen', `part-${String(f).padStart(2, '0')}.jsonl`), `${lines.join('\n')}\n`);
  }
  await buildIndex(join(dir, 'gen'), { embedderDir: EMBEDDER, outDir: join(dir, 'v1') });
}
console.error('sentences', sentences.length);
const r = await openIndex(join(dir, 'v1'), { embedderDir: EMBEDDER });
const rng = createRng(11);
const genTexts = readFileSync(join(dir, 'gen/part-00.jsonl'), 'utf8').trim().split('\n');
const lab = readFileSync(join(ROOT, 'artifacts/corpus/kiosk.queries.jsonl'), 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { query: string }).query);
const queries = [...lab, ...Array.from({ length: 110 }, () => {
  const words = (JSON.parse(genTexts[Math.floor(rng.next() * genTexts.length)] ?? '{}') as { text: string }).text.split(' ');
  const at = Math.floor(rng.next() * Math.max(1, words.length - 3));
  return words.slice(at, at + 3).join(' ');
})];
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))] ?? NaN;
for (const mode of ['hybrid', 'bm25', 'dense'] as const) {
  for (const q of queries.slice(0, 20)) await r.query(q, { k: 10, mode });
  const ms: number[] = [];
  const per: [number, string][] = [];
  for (const q of queries) { const t = performance.now(); await r.query(q, { k: mode === 'hybrid' ? 10 : 50, mode }); const d = performance.now() - t; ms.push(d); per.push([d, q]); }
  console.log(mode, 'p50', pct(ms, 0.5).toFixed(2), 'p95', pct(ms, 0.95).toFixed(2));
  if (mode === 'bm25') console.log(per.sort((a, b) => b[0] - a[0]).slice(0, 12).map(([d, q]) => `${d.toFixed(1)} ${q}`).join('\n'));
}
const ms: number[] = [];
for (const q of queries) { const t = performance.now(); await r.embedQuery(q); ms.push(performance.now() - t); }
console.log('embed p50', pct(ms, 0.5).toFixed(2), 'p95', pct(ms, 0.95).toFixed(2));
await r.close();
