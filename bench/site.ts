/**
 * Site runtime benchmark (`npm run bench:site`): prints one JSON object. Every figure comes with
 * its baseline from the same run, on the committed fixture models (artifacts/models/draft and
 * verifier, adapter artifacts/adapters/support, policy artifacts/policies/default), published to a
 * directory registry and served by real processes started through the CLI.
 *
 * 1. Start-up: `site up` until /readyz answers, for an unsynced site (the first start syncs) and a
 *    synced one (a restart), with the daemon's RSS once ready. Target <= 2 s (synced).
 * 2. Overhead: the same prompts, edge-only with the support adapter and greedy decoding, through
 *    the daemon's HTTP API (one request at a time) and through the engine alone in this process
 *    (`generate` on the same generation, loaded with the runtime's own loader). Interleaved per
 *    prompt so machine noise hits both alike. Target: HTTP + runtime overhead <= 5% per token.
 * 3. Load: BENCH_CLIENTS (64) concurrent streaming chat clients for BENCH_SECONDS (60) with the
 *    router on (mixed prompts); a 429 is answered by waiting Retry-After. Target: no errors other
 *    than 429s; TTFT p50/p95 reported.
 * 4. Routing: the mixed prompt set (artifacts/prompts/general + support) with the router on, then
 *    the same prompts all-cloud: the share answered edge-only, and the verifier's CPU seconds
 *    (its own process counter, /v1/stats) per 1k output tokens for both.
 *
 * Env: BENCH_SECONDS, BENCH_CLIENTS, BENCH_PROMPTS (prompts per routing pass, default 64),
 * BENCH_MAX_TOKENS (default 32).
 */
import { readFileSync } from 'node:fs';
import { cpus, loadavg, platform } from 'node:os';
import { join } from 'node:path';
import { generate } from '../src/inference/generate.js';
import { FsStore } from '../src/registry/fs-store.js';
import type { SiteUpResult } from '../src/runtime/daemon/client.js';
import { loadGeneration } from '../src/runtime/serve/generation.js';
import { currentGeneration } from '../src/site/agent.js';
import { readPromptsFile } from '../src/bench/prompts.js';
import { percentile, round } from '../src/bench/summary.js';
import { REPO_ROOT, runCli } from '../test/helpers/cli.js';
import { tempDir } from '../test/site/fixtures.js';
import { daemonWorld, REFS, VERIFIER_DIR } from '../test/runtime/daemon/world.js';
import { contextOf } from '../src/runtime/daemon/site-config.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 60);
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 64);
const PROMPTS = Number(process.env.BENCH_PROMPTS ?? 64);
const MAX_TOKENS = Number(process.env.BENCH_MAX_TOKENS ?? 32);

function rssMiB(pid: number): { rss: number; peak: number } {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0);
  return { rss: round(kb('VmRSS') / 1024, 1), peak: round(kb('VmHWM') / 1024, 1) };
}

interface VerifierStats {
  cpuSeconds: number;
  verifyRounds: number;
  completionTokens: number;
}

async function verifierStats(url: string): Promise<VerifierStats> {
  return (await (await fetch(`${url}/v1/stats`)).json()) as VerifierStats;
}

interface Edgectl {
  route: string;
  unverified: boolean;
}

async function completion(
  url: string,
  body: Record<string, unknown>,
  route?: string,
): Promise<{ text: string; tokens: number; ms: number; edgectl: Edgectl }> {
  const t0 = performance.now();
  for (;;) {
    const res = await fetch(`${url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(route ? { 'x-edgectl-route': route } : {}) },
      body: JSON.stringify(body),
    });
    if (res.status === 429) {
      await res.arrayBuffer();
      await new Promise((r) => setTimeout(r, Number(res.headers.get('retry-after') ?? 1) * 1000));
      continue;
    }
    if (!res.ok) throw new Error(`completion answered ${res.status}: ${await res.text()}`);
    const j = (await res.json()) as {
      choices: { text: string }[];
      usage: { completion_tokens: number };
      edgectl: Edgectl;
    };
    return {
      text: j.choices[0]?.text ?? '',
      tokens: j.usage.completion_tokens,
      ms: performance.now() - t0,
      edgectl: j.edgectl,
    };
  }
}

/** One streaming chat request; TTFT is the time to the first chunk carrying text. */
async function streamChat(
  url: string,
  prompt: string,
): Promise<{ status: number; ttftMs: number | null; error: string | null; retryAfter: number }> {
  const t0 = performance.now();
  const res = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      model: 'draft:support',
      messages: [{ role: 'user', content: prompt }],
      max_tokens: MAX_TOKENS,
      stream: true,
    }),
  });
  if (res.status !== 200) {
    const text = await res.text();
    return {
      status: res.status,
      ttftMs: null,
      error: res.status === 429 ? null : text.slice(0, 200),
      retryAfter: Number(res.headers.get('retry-after') ?? 1),
    };
  }
  let ttft: number | null = null;
  let error: string | null = null;
  let done = false;
  let buf = '';
  const decoder = new TextDecoder();
  for await (const part of res.body as unknown as AsyncIterable<Uint8Array>) {
    buf += decoder.decode(part, { stream: true });
    let i: number;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const event = buf.slice(0, i);
      buf = buf.slice(i + 2);
      for (const line of event.split('\n')) {
        if (!line.startsWith('data: ')) continue;
        const data = line.slice(6);
        if (data === '[DONE]') {
          done = true;
          continue;
        }
        const j = JSON.parse(data) as {
          error?: { message: string };
          choices?: { delta?: { content?: string } }[];
        };
        if (j.error) error = j.error.message;
        if (ttft === null && (j.choices?.[0]?.delta?.content ?? '') !== '') ttft = performance.now() - t0;
      }
    }
  }
  if (!done && error === null) error = 'stream ended without [DONE]';
  return { status: 200, ttftMs: ttft, error, retryAfter: 0 };
}

async function main(): Promise<void> {
  const t00 = performance.now();
  const store = new FsStore(join(tempDir('edgectl-bench-site-'), 'registry'));
  const w = await daemonWorld(store, { publishExtra: false });
  const vRun = tempDir('edgectl-bench-verifier-');
  const cli = (...args: string[]) => runCli(args, { cwd: w.project, timeoutMs: 120_000 });
  const v = await cli(
    'verifier',
    'up',
    '--model',
    VERIFIER_DIR,
    '--port',
    '0',
    '--threads',
    '1',
    '--run-dir',
    vRun,
    '--json',
  );
  if (v.code !== 0) throw new Error(`verifier up failed: ${v.stderr}`);
  const verifierUrl = v.json<{ url: string }>().url;
  await w.declare({ adapters: [REFS.support100], verifier: verifierUrl });
  const siteArgs = ['store-001', '--data-dir', w.dataDir];
  const up = async () => {
    const r = await cli(
      'site',
      'up',
      ...siteArgs,
      '--listen',
      '127.0.0.1:0',
      '--max-concurrent',
      '4',
      '--queue',
      '64',
      '--json',
    );
    if (r.code !== 0) throw new Error(`site up failed: ${r.stderr}`);
    return { result: r.json<SiteUpResult>(), wallMs: r.ms };
  };
  const down = async () => {
    const r = await cli('site', 'down', ...siteArgs);
    if (r.code !== 0) throw new Error(`site down failed: ${r.stderr}`);
  };

  try {
    // 1. Start-up.
    const cold = await up();
    await down();
    const warm = await up();
    const url = warm.result.url ?? '';
    const pid = warm.result.pid;
    const rssReady = rssMiB(pid);

    // 2. Overhead against the engine alone, on the same generation directory.
    const cur = await currentGeneration(w.dataDir);
    if (!cur) throw new Error('no generation installed');
    const gen = await loadGeneration(cur.dir, { id: cur.id, context: contextOf(cur.info, 1) });
    const lora = gen.adapters.get('support')?.feeds;
    const support = readPromptsFile(join(REPO_ROOT, 'artifacts/prompts/support.jsonl'));
    const general = readPromptsFile(join(REPO_ROOT, 'artifacts/prompts/general.jsonl'));
    const overheadPrompts = support.slice(0, 16);
    // Per prompt, interleaved: the engine alone (token ids only: the draft compute), the engine
    // with its incremental detokenizer (text out, as a library user would run it), and the daemon's
    // HTTP API; each at max_tokens N and 1, so the fixed per-request cost (parse, policy, redaction,
    // tokenize, prefill, HTTP) and the marginal cost per generated token are told apart.
    type Acc = { ms: number; tokens: number; ms1: number; tokens1: number };
    const acc = (): Acc => ({ ms: 0, tokens: 0, ms1: 0, tokens1: 0 });
    const eng = acc();
    const engText = acc();
    const http = acc();
    let mismatches = 0;
    const engine = async (prompt: string, maxTokens: number, text: boolean): Promise<[number, number]> => {
      const t0 = performance.now();
      const ids = gen.tokenizer.encode(prompt);
      let n = 0;
      for await (const e of generate(gen.model, ids, {
        maxTokens,
        ...(lora ? { lora } : {}),
        ...(text ? { tokenizer: gen.tokenizer } : {}),
      }))
        if (e.type === 'token') n++;
      return [performance.now() - t0, n];
    };
    const viaHttp = async (prompt: string, maxTokens: number): Promise<[number, number]> => {
      const h = await completion(
        url,
        { model: 'draft:support', prompt, max_tokens: maxTokens, temperature: 0 },
        'edge',
      );
      return [h.ms, h.tokens];
    };
    // Warm both paths once.
    await viaHttp(overheadPrompts[0] ?? 'hello', 4);
    await engine(overheadPrompts[0] ?? 'hello', 4, true);
    for (let round_ = 0; round_ < 2; round_++) {
      for (const prompt of overheadPrompts) {
        const [em, et] = await engine(prompt, MAX_TOKENS, false);
        const [xm, xt] = await engine(prompt, MAX_TOKENS, true);
        const [hm, ht] = await viaHttp(prompt, MAX_TOKENS);
        if (ht !== et) mismatches++;
        const [em1, et1] = await engine(prompt, 1, false);
        const [xm1, xt1] = await engine(prompt, 1, true);
        const [hm1, ht1] = await viaHttp(prompt, 1);
        for (const [a, m, t, m1, t1] of [
          [eng, em, et, em1, et1],
          [engText, xm, xt, xm1, xt1],
          [http, hm, ht, hm1, ht1],
        ] as const) {
          a.ms += m;
          a.tokens += t;
          a.ms1 += m1;
          a.tokens1 += t1;
        }
      }
    }
    await gen.dispose();
    const requestsPerPath = overheadPrompts.length * 2;
    const figures = (a: Acc) => ({
      msPerToken: round(a.ms / a.tokens, 3),
      fixedMsPerRequest: round(a.ms1 / requestsPerPath, 3),
      marginalMsPerToken: round((a.ms - a.ms1) / Math.max(1, a.tokens - a.tokens1), 3),
    });
    const engineFig = figures(eng);
    const engineTextFig = figures(engText);
    const httpFig = figures(http);
    const rel = (a: number, b: number) => round((a - b) / b, 4);

    // 3. Load: CLIENTS streaming clients for SECONDS, router on.
    const mixed: string[] = [];
    for (let i = 0; i < Math.max(support.length, general.length); i++) {
      if (support[i]) mixed.push(support[i] as string);
      if (general[i]) mixed.push(general[i] as string);
    }
    const ttfts: number[] = [];
    let ok = 0;
    let rejected429 = 0;
    const errors: string[] = [];
    const loadEnd = performance.now() + SECONDS * 1000;
    let next = 0;
    const client = async () => {
      while (performance.now() < loadEnd) {
        const prompt = mixed[next++ % mixed.length] as string;
        try {
          const r = await streamChat(url, prompt);
          if (r.status === 429) {
            rejected429++;
            await new Promise((res) => setTimeout(res, r.retryAfter * 1000));
          } else if (r.error !== null || r.status !== 200) errors.push(`${r.status}: ${r.error}`);
          else {
            ok++;
            if (r.ttftMs !== null) ttfts.push(r.ttftMs);
          }
        } catch (err) {
          errors.push(String(err));
        }
      }
    };
    const loadT0 = performance.now();
    await Promise.all(Array.from({ length: CLIENTS }, client));
    const loadSeconds = (performance.now() - loadT0) / 1000;
    const rssAfterLoad = rssMiB(pid);

    // 4. Routing: router on vs all-cloud on the same prompts; verifier CPU from its own counter.
    const routingPrompts = mixed.slice(0, PROMPTS);
    const pass = async (route: string | undefined) => {
      const before = await verifierStats(verifierUrl);
      const routes: Record<string, number> = {};
      let tokens = 0;
      let unverified = 0;
      let i = 0;
      await Promise.all(
        Array.from({ length: 4 }, async () => {
          while (i < routingPrompts.length) {
            const prompt = routingPrompts[i++] as string;
            const r = await completion(
              url,
              { model: 'draft:support', prompt, max_tokens: MAX_TOKENS, temperature: 0 },
              route,
            );
            routes[r.edgectl.route] = (routes[r.edgectl.route] ?? 0) + 1;
            if (r.edgectl.unverified) unverified++;
            tokens += r.tokens;
          }
        }),
      );
      const after = await verifierStats(verifierUrl);
      const cpu = after.cpuSeconds - before.cpuSeconds;
      return {
        requests: routingPrompts.length,
        routes,
        unverified,
        outputTokens: tokens,
        verifierCpuSeconds: round(cpu),
        verifierCpuSecondsPer1kTokens: round((cpu * 1000) / Math.max(1, tokens)),
      };
    };
    const routerOn = await pass(undefined);
    const allCloud = await pass('cloud');
    const status = (await (await fetch(`${url}/v1/status`)).json()) as Record<string, unknown>;
    await down();

    const p = (xs: number[], q: number) => (xs.length ? round(percentile(xs, q), 1) : null);
    console.log(
      JSON.stringify(
        {
          benchmark: 'site',
          date: new Date().toISOString(),
          machine: {
            cpu: cpus()[0]?.model ?? 'unknown',
            cores: cpus().length,
            platform: platform(),
            node: process.version,
          },
          loadAverage: loadavg().map((x) => round(x, 2)),
          settings: {
            seconds: SECONDS,
            clients: CLIENTS,
            maxTokens: MAX_TOKENS,
            routingPrompts: routingPrompts.length,
            maxConcurrent: 4,
            queue: 64,
            threads: 1,
          },
          startup: {
            firstUpMs: cold.result.startupMs,
            firstUpWallMs: Math.round(cold.wallMs),
            restartUpMs: warm.result.startupMs,
            restartUpWallMs: Math.round(warm.wallMs),
            targetMs: 2000,
            rssReadyMiB: rssReady.rss,
            rssAfterLoadMiB: rssAfterLoad.rss,
            rssPeakMiB: rssAfterLoad.peak,
          },
          overhead: {
            requestsPerPath,
            maxTokens: MAX_TOKENS,
            engine: engineFig,
            engineWithText: engineTextFig,
            http: httpFig,
            /** (HTTP - engine) / engine, per generated token including the per-request costs. */
            overheadPerToken: rel(httpFig.msPerToken, engineFig.msPerToken),
            /** The same on the marginal cost of one more token (per-request costs excluded). */
            marginalOverheadPerToken: rel(httpFig.marginalMsPerToken, engineFig.marginalMsPerToken),
            /** Against the engine producing text too (its own incremental detokenizer). */
            overheadPerTokenVsEngineWithText: rel(httpFig.msPerToken, engineTextFig.msPerToken),
            target: 0.05,
            tokenCountMismatches: mismatches,
          },
          load: {
            seconds: round(loadSeconds, 1),
            clients: CLIENTS,
            completed: ok,
            rejected429,
            errors: errors.length,
            errorSamples: errors.slice(0, 3),
            requestsPerSecond: round(ok / loadSeconds, 2),
            ttftMs: { p50: p(ttfts, 50), p95: p(ttfts, 95), max: p(ttfts, 100) },
          },
          routing: {
            routerOn,
            allCloud,
            edgeOnlyShare: round((routerOn.routes.edge ?? 0) / routerOn.requests, 3),
            verifierCpuRatio: round(
              routerOn.verifierCpuSecondsPer1kTokens / Math.max(1e-9, allCloud.verifierCpuSecondsPer1kTokens),
              3,
            ),
          },
          daemonStatus: { runtime: status.runtime, feedback: status.feedback },
          totalSeconds: round((performance.now() - t00) / 1000, 1),
        },
        null,
        2,
      ),
    );
  } finally {
    await cli('site', 'down', ...siteArgs);
    await cli('verifier', 'down', '--run-dir', vRun);
    await store.close();
  }
}

await main();
