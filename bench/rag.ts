/**
 * RAG time-to-first-token benchmark (`npm run bench:rag`, issue #20 "a RAG chat request end to
 * end"): prints one JSON object. A site runtime in this process serves the committed fixture draft
 * with an index of the committed kiosk corpus (`indexes/kb`, its embedder beside it) and is asked,
 * over HTTP with streaming, the labelled kiosk queries (artifacts/corpus/kiosk.queries.jsonl) as
 * chats on the edge route (no verifier: the figure is the site's own work), each once with
 * `edgectl.retrieval: {index: "kb", k}` and once without, interleaved so machine noise hits both
 * alike. TTFT is the time from sending the request to the first content delta; the difference of
 * the two distributions is what retrieval adds (embedding the query, the hybrid search, and the
 * longer prompt the passages make). The engine's own retrieval latency (`edgectl.retrieval.ms`,
 * from the final chunk) is reported beside it.
 *
 * Env: BENCH_RAG_K (3), BENCH_RAG_ROUNDS (3 passes over the 90 queries), BENCH_RAG_MAX_TOKENS (8).
 */
import { mkdirSync, readFileSync, symlinkSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { percentile, round } from '../src/bench/summary.js';
import { loadGeneration } from '../src/runtime/engine/generation.js';
import {
  makeGenerationDir,
  startTestRuntime,
  TEST_CONTEXT,
  TEST_POLICY,
} from '../test/runtime/serve/helpers.js';
import { CORPUS, EMBEDDER, indexDir } from '../test/index-site/fixtures.js';
import { REPO_ROOT } from '../test/helpers/cli.js';

const K = Number(process.env.BENCH_RAG_K ?? 3);
const ROUNDS = Number(process.env.BENCH_RAG_ROUNDS ?? 3);
const MAX_TOKENS = Number(process.env.BENCH_RAG_MAX_TOKENS ?? 8);

interface Sample {
  ttftMs: number;
  retrievalMs: number | undefined;
  citations: number;
}

/** One streamed chat: TTFT and the final chunk's `edgectl.retrieval`. */
async function ask(url: string, query: string, retrieval: boolean): Promise<Sample> {
  const t0 = performance.now();
  const res = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-edgectl-route': 'edge' },
    body: JSON.stringify({
      model: 'draft',
      messages: [{ role: 'user', content: query }],
      max_tokens: MAX_TOKENS,
      temperature: 0,
      stream: true,
      ...(retrieval ? { edgectl: { retrieval: { index: 'kb', k: K } } } : {}),
    }),
  });
  if (res.status !== 200 || res.body === null) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
  let ttftMs: number | undefined;
  let last: { edgectl?: { retrieval?: { ms?: number }; citations?: string[] } } = {};
  let buffered = '';
  const decoder = new TextDecoder();
  for await (const bytes of res.body) {
    buffered += decoder.decode(bytes, { stream: true });
    const events = buffered.split('\n\n');
    buffered = events.pop() ?? '';
    for (const event of events) {
      const data = event.replace(/^data: /, '');
      if (data === '[DONE]') continue;
      const chunk = JSON.parse(data) as typeof last & { choices?: { delta?: { content?: string } }[] };
      if (ttftMs === undefined && (chunk.choices?.[0]?.delta?.content ?? '') !== '')
        ttftMs = performance.now() - t0;
      if (chunk.edgectl) last = chunk;
    }
  }
  return {
    ttftMs: ttftMs ?? performance.now() - t0,
    retrievalMs: last.edgectl?.retrieval?.ms,
    citations: last.edgectl?.citations?.length ?? 0,
  };
}

function summary(samples: Sample[]): Record<string, number> {
  const ttft = samples.map((s) => s.ttftMs);
  return {
    n: samples.length,
    ttftP50Ms: round(percentile(ttft, 50), 2),
    ttftP95Ms: round(percentile(ttft, 95), 2),
  };
}

async function main(): Promise<void> {
  const dir = makeGenerationDir({ policy: TEST_POLICY });
  mkdirSync(join(dir, 'indexes'));
  mkdirSync(join(dir, 'embedders'));
  await indexDir(join(dir, 'indexes'), { out: 'kb', corpus: CORPUS });
  symlinkSync(join(REPO_ROOT, EMBEDDER), join(dir, 'embedders', 'kb'));
  const gen = await loadGeneration(dir, { id: 'r'.repeat(20), context: TEST_CONTEXT });
  const rt = await startTestRuntime(gen, undefined);
  const queries = readFileSync(join(REPO_ROOT, 'artifacts/corpus/kiosk.queries.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => (JSON.parse(l) as { query: string }).query);
  const load0 = loadavg()[0] ?? 0;
  const withRag: Sample[] = [];
  const without: Sample[] = [];
  try {
    for (const q of queries.slice(0, 5)) await ask(rt.server.url, q, true); // warm-up
    for (let r = 0; r < ROUNDS; r++) {
      for (const q of queries) {
        without.push(await ask(rt.server.url, q, false));
        withRag.push(await ask(rt.server.url, q, true));
      }
    }
  } finally {
    await rt.server.close(1000);
    await gen.dispose();
  }
  const a = summary(withRag);
  const b = summary(without);
  const engineMs = withRag.flatMap((s) => (s.retrievalMs === undefined ? [] : [s.retrievalMs]));
  console.log(
    JSON.stringify(
      {
        bench: 'rag',
        date: new Date().toISOString(),
        machine: { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, node: process.version },
        loadAverage: { start: round(load0, 2), end: round(loadavg()[0] ?? 0, 2) },
        k: K,
        maxTokens: MAX_TOKENS,
        withRetrieval: {
          ...a,
          citationsPerAnswer: round(withRag.reduce((s, x) => s + x.citations, 0) / withRag.length, 2),
        },
        withoutRetrieval: b,
        retrievalAddsP50Ms: round((a.ttftP50Ms ?? 0) - (b.ttftP50Ms ?? 0), 2),
        retrievalAddsP95Ms: round((a.ttftP95Ms ?? 0) - (b.ttftP95Ms ?? 0), 2),
        engineRetrievalMs: {
          p50: round(percentile(engineMs, 50), 2),
          p95: round(percentile(engineMs, 95), 2),
        },
      },
      null,
      2,
    ),
  );
}

await main();
