/**
 * Site runtime benchmark (`npm run bench:site`): prints one JSON object. Every figure comes with
 * its baseline from the same run, on the committed fixture models (artifacts/models/draft and
 * verifier, adapter artifacts/adapters/support, policy artifacts/policies/default), published to a
 * directory registry and served by real processes started through the CLI.
 *
 * 1. Start-up: `site up` until /readyz answers, for an unsynced site (the first start syncs) and a
 *    synced one (a restart), with the daemon's RSS once ready. Target <= 2 s (synced).
 * 2. Overhead: the same prompts and exactly the same tokens (`ignore_eos`, greedy, edge route,
 *    support adapter, redacted like the daemon does) through the daemon's HTTP API as JSON and as
 *    SSE (one request at a time, from this process) and through the engine alone in its own
 *    process (bench/site-engine.mjs). Interleaved per prompt so machine noise hits all alike; at
 *    N tokens and at 1 token, so per-token (marginal) and fixed per-request costs are told apart;
 *    wall time and CPU time. Target: HTTP + runtime overhead <= 5% per token.
 * 3. Load: BENCH_CLIENTS (64) concurrent streaming chat clients for BENCH_SECONDS (60) with the
 *    router on (mixed prompts); a 429 is answered by waiting Retry-After. Target: no errors other
 *    than 429s; TTFT p50/p95 reported.
 * 4. Routing: the mixed prompt set (artifacts/prompts/general + support) with the router on, then
 *    the same prompts all-cloud: the share answered edge-only, and the verifier's CPU seconds
 *    (its own process counter, /v1/stats) per 1k output tokens for both.
 *
 * Env: BENCH_SECONDS, BENCH_CLIENTS, BENCH_PROMPTS (prompts per routing pass, default 64),
 * BENCH_MAX_TOKENS (default 32), BENCH_OVERHEAD_TOKENS (128), BENCH_OVERHEAD_REPEATS (5),
 * BENCH_PIN_CPU (last CPU, or `none`), BENCH_SECTIONS (overhead,load,routing; start-up always runs).
 */
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { cpus, loadavg, platform } from 'node:os';
import { join } from 'node:path';
import { FsStore } from '../src/registry/fs-store.js';
import type { SiteUpResult } from '../src/runtime/daemon/client.js';
import { readPromptsFile } from '../src/bench/prompts.js';
import { percentile, round } from '../src/bench/summary.js';
import { NODE, REPO_ROOT, runCli, startVerifierDaemon } from '../test/helpers/cli.js';
import { tempDir } from '../test/site/fixtures.js';
import { daemonWorld, REFS } from '../test/runtime/daemon/world.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 60);
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 64);
const PROMPTS = Number(process.env.BENCH_PROMPTS ?? 64);
const MAX_TOKENS = Number(process.env.BENCH_MAX_TOKENS ?? 32);
/** Tokens per request of the overhead section (every request generates exactly this many). */
const OVERHEAD_TOKENS = Number(process.env.BENCH_OVERHEAD_TOKENS ?? 128);
/** Repeats of the overhead section (each a full interleaved pass over its prompts). */
const OVERHEAD_REPEATS = Number(process.env.BENCH_OVERHEAD_REPEATS ?? 5);
/**
 * CPU the overhead section pins the daemon and the engine worker to (both to the same one, so
 * neither runs on a core the other never sees: on a shared machine, which core a process lands on
 * changes its speed more than the overhead being measured). `none` leaves placement to the OS.
 */
const PIN_CPU = process.env.BENCH_PIN_CPU ?? String(cpus().length - 1);
const SECTIONS = new Set(
  (process.env.BENCH_SECTIONS ?? 'overhead,load,routing').split(',').map((x) => x.trim()),
);

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

/** One streamed completion, read to `[DONE]`: its text, token count (usage) and timings. */
async function streamCompletion(
  url: string,
  body: Record<string, unknown>,
  route: string,
): Promise<{ text: string; tokens: number; ms: number; ttftMs: number | null; chunks: number }> {
  const t0 = performance.now();
  const res = await fetch(`${url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-edgectl-route': route },
    body: JSON.stringify({ ...body, stream: true, stream_options: { include_usage: true } }),
  });
  if (res.status !== 200) throw new Error(`streamed completion answered ${res.status}: ${await res.text()}`);
  let text = '';
  let tokens = -1;
  let ttft: number | null = null;
  let chunks = 0;
  let done = false;
  let buf = '';
  const decoder = new TextDecoder();
  for await (const part of res.body as unknown as AsyncIterable<Uint8Array>) {
    buf += decoder.decode(part, { stream: true });
    let i: number;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const data = buf.slice(6, i); // "data: "
      buf = buf.slice(i + 2);
      if (data === '[DONE]') {
        done = true;
        continue;
      }
      const j = JSON.parse(data) as {
        error?: { message: string };
        choices: { text: string }[];
        usage?: { completion_tokens: number };
      };
      if (j.error) throw new Error(`stream error: ${j.error.message}`);
      const piece = j.choices[0]?.text ?? '';
      if (piece !== '') {
        chunks++;
        if (ttft === null) ttft = performance.now() - t0;
      }
      text += piece;
      if (j.usage) tokens = j.usage.completion_tokens;
    }
  }
  if (!done) throw new Error('stream ended without [DONE]');
  return { text, tokens, ms: performance.now() - t0, ttftMs: ttft, chunks };
}

/** The engine-alone baseline in its own process (bench/site-engine.mjs), one request at a time. */
async function engineWorker(dataDir: string, pin: string | null) {
  const args = [join(REPO_ROOT, 'bench/site-engine.mjs'), dataDir, 'support'];
  const child = pin
    ? spawn('taskset', ['-c', pin, NODE, ...args], { stdio: ['pipe', 'pipe', 'inherit'] })
    : spawn(NODE, args, { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async <T>(): Promise<T> => {
    const r = await lines.next();
    if (r.done) throw new Error('the engine worker exited');
    return JSON.parse(r.value as string) as T;
  };
  await next<{ ready: true }>();
  return {
    async run(prompt: string, maxTokens: number) {
      child.stdin.write(`${JSON.stringify({ prompt, maxTokens })}\n`);
      return next<{ ms: number; cpuMs: number; tokens: number; text: string }>();
    },
    close: () => child.stdin.end(),
  };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

/**
 * Section 2: the daemon's HTTP + runtime cost per token against the engine alone. Every request
 * generates exactly OVERHEAD_TOKENS tokens (`ignore_eos`; the engine gets no eos ids), greedy, edge
 * route, adapter `support`, on the same model text: the engine side applies the generation's own
 * redactor first, as the daemon does (most support prompts carry an email address or a phone
 * number, and a placeholder tokenizes differently — the cause of the length mismatches of the
 * first version of this benchmark). Completions, not chat: the chat template ends a turn at the
 * first newline, which would cut fixed-length outputs short. The engine runs in this process (the
 * daemon's code path minus HTTP, routing, policy and text), the daemon is a separate process, and
 * requests go one at a time, interleaved per prompt so machine noise hits all paths alike. Each
 * path also runs at max_tokens 1, which tells the fixed cost per request (HTTP, parse, policy,
 * redaction, tokenize, prefill) from the marginal cost of one more token.
 */
/** CPU time of a process so far (user + system, all threads), ms; clock-tick resolution. */
function processCpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Fields 14 and 15 of proc(5) (utime, stime), counted from after the command name.
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
}
const CLOCK_TICKS = 100;

async function measureOverhead(dataDir: string, url: string, daemonPid: number, prompts: string[]) {
  const N = OVERHEAD_TOKENS;
  let pin: string | null = null;
  if (PIN_CPU !== 'none') {
    try {
      execFileSync('taskset', ['-a', '-p', '-c', PIN_CPU, String(daemonPid)], { stdio: 'ignore' });
      pin = PIN_CPU;
    } catch {
      // No taskset (or not allowed): leave placement to the OS and say so in the output.
    }
  }
  const worker = await engineWorker(dataDir, pin);
  const load0 = loadavg()[0] ?? 0;
  const engine = (prompt: string, maxTokens: number) => worker.run(prompt, maxTokens);
  const body = (prompt: string, maxTokens: number) => ({
    model: 'draft:support',
    prompt,
    max_tokens: maxTokens,
    temperature: 0,
    ignore_eos: true,
  });
  const viaJson = async (prompt: string, maxTokens: number) => {
    const r = await completion(url, body(prompt, maxTokens), 'edge');
    return { ms: r.ms, tokens: r.tokens, text: r.text };
  };
  const viaSse = (prompt: string, maxTokens: number) =>
    streamCompletion(url, body(prompt, maxTokens), 'edge');

  // Warm all paths.
  for (const prompt of prompts.slice(0, 2)) {
    await engine(prompt, 8);
    await viaJson(prompt, 8);
    await viaSse(prompt, 8);
  }
  type Path = 'engine' | 'json' | 'sse';
  const PATHS: Path[] = ['engine', 'json', 'sse'];
  /** One path's times for one prompt: N tokens and 1 token. */
  type Pair = { msN: number; ms1: number };
  /** CPU ms of the engine worker and of the daemon, summed over all requests, at N and 1 tokens. */
  const cpu = Object.fromEntries(PATHS.map((p) => [p, { msN: 0, ms1: 0 }])) as Record<Path, Pair>;
  const run = async (path: Path, prompt: string, maxTokens: number) => {
    if (path === 'engine') return { ttftMs: null, chunks: 0, ...(await engine(prompt, maxTokens)) };
    const c0 = processCpuMs(daemonPid);
    const h = path === 'json' ? await viaJson(prompt, maxTokens) : await viaSse(prompt, maxTokens);
    return { ttftMs: null, chunks: 0, ...h, cpuMs: processCpuMs(daemonPid) - c0 };
  };
  const samples: Record<Path, Pair>[][] = [];
  let mismatchedLength = 0;
  let mismatchedText = 0;
  let sseChunks = 0;
  const ttfts: number[] = [];
  for (let r = 0; r < OVERHEAD_REPEATS; r++) {
    const rep: Record<Path, Pair>[] = [];
    for (const [i, prompt] of prompts.entries()) {
      // Rotate the order per prompt, so no path always runs right after another.
      const order = [...PATHS.slice(i % 3), ...PATHS.slice(0, i % 3)];
      const t = {} as Record<Path, Pair>;
      let expected = '';
      const texts: string[] = [];
      for (const path of order) {
        const x = await run(path, prompt, N);
        if (x.tokens !== N) mismatchedLength++;
        if (path === 'engine') expected = x.text;
        else texts.push(x.text);
        if (path === 'sse') {
          sseChunks += x.chunks;
          if (x.ttftMs !== null) ttfts.push(x.ttftMs);
        }
        t[path] = { msN: x.ms, ms1: 0 };
        cpu[path].msN += x.cpuMs;
      }
      for (const path of order) {
        const x = await run(path, prompt, 1);
        if (x.tokens !== 1) mismatchedLength++;
        t[path].ms1 = x.ms;
        cpu[path].ms1 += x.cpuMs;
      }
      if (r === 0) for (const text of texts) if (text !== expected) mismatchedText++;
      rep.push(t);
    }
    samples.push(rep);
  }
  worker.close();
  const n = prompts.length;
  const perToken = (x: Pair) => x.msN / N;
  const marginal = (x: Pair) => (x.msN - x.ms1) / (N - 1);
  const sum = (rep: Record<Path, Pair>[], p: Path): Pair => ({
    msN: rep.reduce((a, t) => a + t[p].msN, 0) / rep.length,
    ms1: rep.reduce((a, t) => a + t[p].ms1, 0) / rep.length,
  });
  const spread = (xs: number[], digits = 4) => ({
    median: round(median(xs), digits),
    min: round(Math.min(...xs), digits),
    max: round(Math.max(...xs), digits),
  });
  // Per repeat: the means over its prompts, then the median and range over the repeats.
  const reps = samples.map(
    (rep) => Object.fromEntries(PATHS.map((p) => [p, sum(rep, p)])) as Record<Path, Pair>,
  );
  const pathFigs = (p: Path) => ({
    msPerToken: spread(
      reps.map((x) => perToken(x[p])),
      3,
    ),
    marginalMsPerToken: spread(
      reps.map((x) => marginal(x[p])),
      3,
    ),
    fixedMsPerRequest: spread(
      reps.map((x) => x[p].ms1),
      2,
    ),
  });
  const rel = (a: number, b: number) => (a - b) / b;
  const over = (f: (x: Pair) => number, p: Path) => spread(reps.map((x) => rel(f(x[p]), f(x.engine))));
  // Per prompt and repeat (paired, so a burst of load elsewhere hits one pair, not a whole mean).
  const pairs = samples.flat();
  const pairedMedian = (f: (x: Pair) => number, p: Path) =>
    round(median(pairs.map((t) => rel(f(t[p]), f(t.engine)))), 4);
  return {
    tokensPerRequest: N,
    /** The CPU the daemon and the engine worker were pinned to (null: not pinned). */
    pinnedCpu: pin,
    prompts: n,
    repeats: OVERHEAD_REPEATS,
    loadAverageStart: round(load0, 2),
    loadAverageEnd: round(loadavg()[0] ?? 0, 2),
    engine: pathFigs('engine'),
    json: pathFigs('json'),
    sse: pathFigs('sse'),
    /**
     * (daemon − engine) / engine on the marginal cost of one more token ((ms at N − ms at 1) /
     * (N − 1)): the per-token overhead, fixed cost per request excluded. Over repeats, and the
     * median over (prompt, repeat) pairs.
     */
    marginalOverheadPerToken: {
      json: { ...over(marginal, 'json'), pairedMedian: pairedMedian(marginal, 'json') },
      sse: { ...over(marginal, 'sse'), pairedMedian: pairedMedian(marginal, 'sse') },
    },
    /** (daemon − engine) / engine on ms per token at N tokens per request (fixed cost included). */
    overheadPerToken: {
      json: { ...over(perToken, 'json'), pairedMedian: pairedMedian(perToken, 'json') },
      sse: { ...over(perToken, 'sse'), pairedMedian: pairedMedian(perToken, 'sse') },
    },
    /**
     * The same on CPU time over the whole section (the daemon's process counters against the
     * engine process's own), which load on the machine disturbs far less than wall time. `perToken`
     * is marginal CPU ms per token, `fixedMs` CPU ms of a 1-token request.
     */
    cpu: Object.fromEntries(
      PATHS.map((p) => {
        const count = n * OVERHEAD_REPEATS;
        const m = (x: Pair) => (x.msN - x.ms1) / count / (N - 1);
        return [
          p,
          {
            perTokenMs: round(m(cpu[p]), 4),
            fixedMs: round(cpu[p].ms1 / count, 3),
            ...(p === 'engine' ? {} : { marginalOverheadPerToken: round(rel(m(cpu[p]), m(cpu.engine)), 4) }),
          },
        ];
      }),
    ),
    /** Daemon − engine at max_tokens 1, ms per request. */
    fixedExtraMsPerRequest: {
      json: spread(
        reps.map((x) => x.json.ms1 - x.engine.ms1),
        2,
      ),
      sse: spread(
        reps.map((x) => x.sse.ms1 - x.engine.ms1),
        2,
      ),
    },
    /** Time to the first text chunk of the N-token streams (the first event is never held back). */
    sseTtftMsMedian: round(median(ttfts), 2),
    sseTextChunksPerRequest: round(sseChunks / (n * OVERHEAD_REPEATS), 1),
    target: 0.05,
    /** Responses whose token count was not exactly max_tokens (should be 0). */
    lengthMismatches: mismatchedLength,
    /** Daemon texts (JSON and SSE, first repeat) that differ from the engine's tokens decoded (should be 0). */
    textMismatches: mismatchedText,
  };
}

async function main(): Promise<void> {
  const t00 = performance.now();
  const store = new FsStore(join(tempDir('edgectl-bench-site-'), 'registry'));
  const w = await daemonWorld(store, { publishExtra: false });
  const vRun = tempDir('edgectl-bench-verifier-');
  const cli = (...args: string[]) => runCli(args, { cwd: w.project, timeoutMs: 120_000 });
  const verifierUrl = (await startVerifierDaemon(w.project, vRun)).url;
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
    const support = readPromptsFile(join(REPO_ROOT, 'artifacts/prompts/support.jsonl'));
    const general = readPromptsFile(join(REPO_ROOT, 'artifacts/prompts/general.jsonl'));
    const overhead = SECTIONS.has('overhead')
      ? await measureOverhead(w.dataDir, url, pid, support.slice(0, 16))
      : null;

    // 3. Load: CLIENTS streaming clients for SECONDS, router on.
    const mixed: string[] = [];
    for (let i = 0; i < Math.max(support.length, general.length); i++) {
      if (support[i]) mixed.push(support[i] as string);
      if (general[i]) mixed.push(general[i] as string);
    }
    const runLoad = async () => {
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
      const p = (xs: number[], q: number) => (xs.length ? round(percentile(xs, q), 1) : null);
      return {
        seconds: round(loadSeconds, 1),
        clients: CLIENTS,
        completed: ok,
        rejected429,
        errors: errors.length,
        errorSamples: errors.slice(0, 3),
        requestsPerSecond: round(ok / loadSeconds, 2),
        ttftMs: { p50: p(ttfts, 50), p95: p(ttfts, 95), max: p(ttfts, 100) },
      };
    };
    const load = SECTIONS.has('load') ? await runLoad() : null;
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
    const runRouting = async () => {
      const routerOn = await pass(undefined);
      const allCloud = await pass('cloud');
      return {
        routerOn,
        allCloud,
        edgeOnlyShare: round((routerOn.routes.edge ?? 0) / routerOn.requests, 3),
        verifierCpuRatio: round(
          routerOn.verifierCpuSecondsPer1kTokens / Math.max(1e-9, allCloud.verifierCpuSecondsPer1kTokens),
          3,
        ),
      };
    };
    const routing = SECTIONS.has('routing') ? await runRouting() : null;
    const status = (await (await fetch(`${url}/v1/status`)).json()) as Record<string, unknown>;
    await down();

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
          overhead,
          load,
          routing,
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
