/**
 * `edgectl bench speculative`: the same prompts served cloud-only (the verifier's /v1/completions),
 * speculatively (local draft + remote verifier sessions) and edge-only (draft alone), against a real
 * verifier child process behind a delay proxy that adds the round-trip time. Every mode dispatches
 * through the site's own route executor (src/runtime/engine/route-executor.ts: breaker, timeouts
 * and all), so the benchmark measures the product path. Verifier cost is read from the verifier's
 * own counters (/v1/stats: forward calls, positions processed, process CPU seconds) before and
 * after each mode, so each mode is billed exactly what it made the verifier do; latency and
 * throughput are measured at the client. Cloud-only is the baseline of the same run
 * (speculative-report.ts builds the report).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Io } from '../foundation/output.js';
import { startDaemon } from '../supervisor/start.js';
import { stopDaemon } from '../supervisor/stop.js';
import { HttpVerifier } from '../verifier/client/http-verifier.js';
import { loadLoraAdapter } from '../inference/lora.js';
import type { LoraFeeds } from '../inference/lora-slots.js';
import { LmSession } from '../inference/model-session.js';
import { TextTokenizer } from '../inference/tokenizer.js';
import { drainRoute, executeRoute, newRunState } from '../runtime/engine/route-executor.js';
import { clientAccess, type VerifierAccess } from '../runtime/engine/verifier-access.js';
import { bearerHeaders } from '../http/auth.js';
import type { VerifierStats } from '../verifier/server/metrics.js';
import { VERIFIER_TOKEN_ENV } from '../verifier/protocol.js';
import { planCores, pinProcess, type CorePlan } from './cpu-pinning.js';
import { startDelayProxy } from './delay-proxy.js';
import { measureDraftSpeed, measureVerifyCost } from './micro.js';
import { readPromptsFile } from './prompts.js';
import {
  buildReport,
  report,
  type BenchMode,
  type BenchPasses,
  type ModePass,
  type RequestOutcome,
  type SpeculativeBenchOptions,
  type SpeculativeBenchReport,
} from './speculative-report.js';

export {
  BENCH_MODES,
  type BenchMode,
  type ModeReport,
  type SpeculativeBenchOptions,
  type SpeculativeBenchReport,
  type Target,
} from './speculative-report.js';

/** The verifier child, the delay proxy in front of it and the client connected through it. */
interface Rig {
  runDir: string;
  proxy?: Awaited<ReturnType<typeof startDelayProxy>>;
  verifier?: HttpVerifier;
  pinning: CorePlan | null;
  readStats: () => Promise<VerifierStats>;
}

export async function runSpeculativeBench(
  opts: SpeculativeBenchOptions,
  io: Io,
): Promise<SpeculativeBenchReport> {
  const prompts = readPromptsFile(opts.promptsFile).slice(0, opts.limit);
  const tokenizer = TextTokenizer.load(opts.draftDir);
  const promptIds = prompts.map((p) => tokenizer.encode(p));
  const draft = await LmSession.load(opts.draftDir, { intraOpThreads: 1 });
  const lora = opts.adapterDir ? loadLoraAdapter(opts.adapterDir, draft.inputs.lora).feeds : undefined;
  const rig: Rig = {
    runDir: mkdtempSync(join(tmpdir(), 'edgectl-bench-')),
    pinning: null,
    readStats: () => Promise.reject(new Error('the verifier is not started')),
  };
  try {
    const verifier = await startRig(opts, io, rig);
    const ctx: RunContext = { ...opts, draft, access: clientAccess(verifier), lora };
    const run = (mode: BenchMode, ids: readonly number[]) => runOne(mode, ids, ctx);
    // Warm both processes (ONNX Runtime's first passes allocate) before anything is measured.
    for (const mode of opts.modes) for (const ids of promptIds.slice(0, 2)) await run(mode, ids);
    const passes = await runPasses(opts, io, promptIds, run, rig.readStats);
    let micro: SpeculativeBenchReport['micro'];
    if (opts.micro) micro = await measureMicro(opts, io, draft, promptIds, lora);
    return buildReport(opts, promptIds.length, rig.pinning, passes, micro);
  } finally {
    rig.verifier?.close();
    await rig.proxy?.close();
    await stopDaemon({ name: 'verifier', runDir: rig.runDir, graceMs: 5000 }, io).catch(() => undefined);
    rmSync(rig.runDir, { recursive: true, force: true });
    await draft.release();
  }
}

/** Starts the verifier child and the delay proxy, pins them if asked, connects; fills `rig` as it goes. */
async function startRig(opts: SpeculativeBenchOptions, io: Io, rig: Rig): Promise<HttpVerifier> {
  // The child verifier gets a token of its own, so the benchmark measures an authenticated
  // verifier (as deployed) and never depends on an EDGECTL_VERIFIER_TOKEN in the environment.
  const token = randomBytes(16).toString('hex');
  const runDir = rig.runDir;
  io.log('info', `starting verifier (${opts.verifierThreads} thread) on ${opts.verifierDir}`);
  const started = await startDaemon(
    {
      name: 'verifier',
      runDir,
      entry: opts.entry,
      args: [
        'verifier',
        'up',
        '--foreground',
        '--model',
        opts.verifierDir,
        '--port',
        '0',
        '--threads',
        String(opts.verifierThreads),
        '--batch',
        String(opts.verifierBatch),
        '--queue',
        '4096',
        '--max-sessions',
        '4096',
        '--run-dir',
        runDir,
      ],
      readyTimeoutMs: 60_000,
      env: { ...process.env, [VERIFIER_TOKEN_ENV]: token },
    },
    io,
  );
  const directUrl = started.url as string;
  const port = Number(new URL(directUrl).port);
  rig.proxy = await startDelayProxy({ host: '127.0.0.1', port }, opts.rttMs / 2);
  rig.pinning = opts.pin ? pinBenchmark(started.pid, opts.verifierThreads, io) : null;
  rig.readStats = async () =>
    (await (await fetch(`${directUrl}/v1/stats`, { headers: bearerHeaders(token) })).json()) as VerifierStats;
  rig.verifier = await HttpVerifier.connect(rig.proxy.url, {
    token,
    maxSockets: opts.concurrency + 4,
    timeoutMs: 120_000,
    verifyStream: opts.verifyStream,
  });
  return rig.verifier;
}

/**
 * Each repeat runs every mode once, in alternating order (cloud, speculative, edge, then the
 * reverse, ...), so a drift in the machine's speed or the verifier's warm-up over the run falls on
 * every mode alike; a mode's report pools its repeats.
 */
async function runPasses(
  opts: SpeculativeBenchOptions,
  io: Io,
  promptIds: readonly number[][],
  run: (mode: BenchMode, ids: readonly number[]) => Promise<RequestOutcome>,
  readStats: () => Promise<VerifierStats>,
): Promise<BenchPasses> {
  const passes: BenchPasses['passes'] = {};
  const controlPasses: ModePass[] = [];
  /** All prompts through `runOne` with `concurrency` streams, the verifier's counters around them. */
  const measure = async (runOne: (ids: readonly number[]) => Promise<RequestOutcome>): Promise<ModePass> => {
    const before = await readStats();
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const results = await pool(opts.concurrency, promptIds, runOne);
    const wallSeconds = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    return {
      results,
      wallSeconds,
      before,
      after: await readStats(),
      clientCpuSeconds: (cpu.user + cpu.system) / 1e6,
    };
  };
  for (let rep = 0; rep < opts.repeat; rep++) {
    const order = rep % 2 === 0 ? opts.modes : [...opts.modes].reverse();
    for (const mode of order) {
      io.log(
        'info',
        `${mode}${opts.repeat > 1 ? ` (pass ${rep + 1}/${opts.repeat})` : ''}: ${promptIds.length} prompts, ${opts.concurrency} concurrent streams, RTT ${opts.rttMs} ms`,
      );
      const pass = await measure((ids) => run(mode, ids));
      (passes[mode] ??= []).push(pass);
      const done = report(mode, [pass]);
      io.log('info', `${mode}: ${done.outputTokens} tokens, ${done.tokensPerSecond} tok/s`);
      if (mode === 'cloud' && opts.busyClientControl) {
        io.log('info', 'control: cloud-only while the simulated sites draft edge-only in the background');
        let busy = true;
        const background = (async () => {
          while (busy)
            await pool(opts.concurrency, promptIds, async (ids) => {
              if (busy) await run('edge', ids);
            });
        })();
        controlPasses.push(await measure((ids) => run('cloud', ids)));
        busy = false;
        await background;
      }
    }
  }
  return { passes, controlPasses };
}

/** Draft decode speed and verify cost, in this process on one thread. */
async function measureMicro(
  opts: SpeculativeBenchOptions,
  io: Io,
  draft: LmSession,
  promptIds: readonly number[][],
  lora: LoraFeeds | undefined,
): Promise<SpeculativeBenchReport['micro']> {
  io.log('info', 'micro: draft decode speed and verify cost (in-process, one thread)');
  const local = await LmSession.load(opts.verifierDir, { intraOpThreads: 1 });
  try {
    const context = promptIds.reduce((a, b) => (b.length > a.length ? b : a));
    return {
      draft: await measureDraftSpeed(draft, promptIds[0] as number[], 128, lora),
      verifyCost: await measureVerifyCost(local, context, 4),
    };
  } finally {
    await local.release();
  }
}

/** Verifier child on cores 0..threads-1, this process on the rest; null when not possible. */
function pinBenchmark(verifierPid: number, verifierThreads: number, io: Io): CorePlan | null {
  const plan = planCores(verifierThreads);
  if (plan === undefined) {
    io.log('warn', `not pinning: the verifier's ${verifierThreads} core(s) would leave none for the clients`);
    return null;
  }
  if (!pinProcess(verifierPid, plan.server) || !pinProcess(process.pid, plan.client)) {
    io.log('warn', 'not pinning: taskset is unavailable or failed; verifier and clients share all cores');
    return null;
  }
  io.log('info', `pinned the verifier to CPU ${plan.server} and the simulated sites to CPU ${plan.client}`);
  return plan;
}

interface RunContext {
  draft: LmSession;
  access: VerifierAccess;
  lora: LoraFeeds | undefined;
  k: number | 'auto';
  kMax?: number | undefined;
  minDraftConfidence?: number | undefined;
  maxTokens: number;
  ignoreEos: boolean;
}

const NEVER = new AbortController().signal;

/** One request of `mode`, greedy, through the route executor (the product's dispatch). */
async function runOne(mode: BenchMode, ids: readonly number[], ctx: RunContext): Promise<RequestOutcome> {
  const t0 = performance.now();
  let ttftMs = Number.NaN;
  const state = newRunState(mode);
  const exec = executeRoute(
    {
      route: mode,
      prompt: { ids },
      maxTokens: ctx.maxTokens,
      sampling: { temperature: 0 },
      seed: undefined,
      ignoreEos: ctx.ignoreEos,
      lora: ctx.lora,
      cache: undefined,
      drafting: {
        k: ctx.k,
        ...(ctx.kMax === undefined ? {} : { adaptive: { max: ctx.kMax } }),
        ...(ctx.minDraftConfidence === undefined ? {} : { minDraftConfidence: ctx.minDraftConfidence }),
      },
      signal: NEVER,
    },
    { model: ctx.draft, verifier: ctx.access },
    state,
  );
  await drainRoute(exec, {
    token: () => {
      if (Number.isNaN(ttftMs)) ttftMs = performance.now() - t0;
    },
  });
  return {
    tokens: state.emitted,
    ttftMs,
    e2eMs: performance.now() - t0,
    // Cloud-only is billed by the verifier's forward passes (its /v1/stats), not by rounds.
    verifyRounds: mode === 'cloud' ? 0 : state.verifyRounds,
    drafted: state.draftTokens,
    accepted: state.acceptedTokens,
    draftMs: state.draftMs,
    verifyMs: state.verifyMs,
  };
}

/** Runs `fn` over `items` with at most `n` in flight; results in input order. */
async function pool<T, R>(n: number, items: readonly T[], fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
  return results;
}
