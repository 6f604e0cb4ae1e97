/**
 * `edgectl bench speculative`: the same prompts served cloud-only (the verifier's /v1/completions),
 * speculatively (local draft + remote verifier sessions) and edge-only (draft alone), against a real
 * verifier child process behind a delay proxy that adds the round-trip time. Verifier cost is read
 * from the verifier's own counters (/v1/stats: forward calls, positions processed, process CPU
 * seconds) before and after each mode, so each mode is billed exactly what it made the verifier do;
 * latency and throughput are measured at the client. Cloud-only is the baseline of the same run.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, platform, tmpdir } from 'node:os';
import { join } from 'node:path';
import { OperationalError } from '../cli/errors.js';
import type { Io } from '../cli/output.js';
import { startDaemon } from '../daemon/start.js';
import { stopDaemon } from '../daemon/stop.js';
import { collect, generate, generateSpeculative } from '../inference/generate.js';
import { HttpVerifier } from '../inference/http-verifier.js';
import { loadLoraAdapter } from '../inference/lora.js';
import type { LoraFeeds } from '../inference/lora-slots.js';
import { LmSession } from '../inference/model-session.js';
import { TextTokenizer } from '../inference/tokenizer.js';
import { bearerHeaders } from '../server/auth.js';
import type { VerifierStats } from '../server/verifier/metrics.js';
import { VERIFIER_TOKEN_ENV } from '../server/verifier/protocol.js';
import { planCores, pinProcess, type CorePlan } from './cpu-pinning.js';
import { startDelayProxy } from './delay-proxy.js';
import { measureDraftSpeed, measureVerifyCost, type DraftSpeed, type VerifyCost } from './micro.js';
import { readPromptsFile } from './prompts.js';
import { ratio, round, summarize, type LatencySummary } from './summary.js';

export const BENCH_MODES = ['cloud', 'speculative', 'edge'] as const;
export type BenchMode = (typeof BENCH_MODES)[number];

export interface SpeculativeBenchOptions {
  draftDir: string;
  verifierDir: string;
  adapterDir: string | undefined;
  promptsFile: string;
  /** Use only the first `limit` prompts. */
  limit: number | undefined;
  k: number | 'auto';
  /** Longest draft adaptive k may choose (default adaptive-k.ts K_MAX). */
  kMax?: number;
  /** Adaptive rounds stop drafting below this confidence (default generate.ts's). */
  minDraftConfidence?: number;
  rttMs: number;
  concurrency: number;
  maxTokens: number;
  /** Generate past end-of-sequence so every response has maxTokens tokens (vLLM's --ignore-eos). */
  ignoreEos: boolean;
  modes: BenchMode[];
  /** Threads of the verifier child (the cores given to it). */
  verifierThreads: number;
  /** Sequences per forward pass in the verifier child (1 = no micro-batching). */
  verifierBatch: number;
  /** Run the draft-speed and verify-cost micro-measurements. */
  micro: boolean;
  /** Pin the verifier child to its own cores and this process to the rest (Linux, taskset). */
  pin: boolean;
  /** Times every mode runs (alternating order); reports pool the repeats. */
  repeat: number;
  /** Speculative rounds over kept-alive verify streams (true) or one POST each (false). */
  verifyStream: boolean;
  /**
   * Also run cloud-only while this process drafts edge-only in the background (a control): how
   * much busy simulated sites on the same machine raise the verifier's CPU per token by
   * themselves, as they do during the speculative mode.
   */
  busyClientControl?: boolean;
  /** The CLI entry (bin/run.js) used to start the verifier child. */
  entry: string;
}

interface RequestOutcome {
  tokens: number[];
  ttftMs: number;
  e2eMs: number;
  verifyRounds: number;
  drafted: number;
  accepted: number;
  /** Client-side time spent drafting and waiting for verify calls (speculative). */
  draftMs: number;
  verifyMs: number;
}

export interface ModeReport {
  mode: BenchMode;
  requests: number;
  outputTokens: number;
  wallSeconds: number;
  /** Aggregate output tokens per second over all concurrent streams. */
  tokensPerSecond: number;
  ttftMs: LatencySummary;
  e2eMs: LatencySummary;
  verifier: {
    forwardCalls: number;
    /** ONNX Runtime runs (fewer than forward calls when the verifier micro-batches). */
    modelRuns: number;
    positionsProcessed: number;
    cpuSeconds: number;
    cpuSecondsPer1kTokens: number | null;
    forwardCallsPerToken: number | null;
  };
  /** Output tokens per verifier call: per verify round (speculative), per forward pass (cloud). */
  tokensPerVerifyRound: number | null;
  verifyRounds: number;
  drafted: number;
  accepted: number;
  acceptance: number | null;
  meanK: number | null;
  /**
   * The edge side, measured in this process: CPU seconds of the benchmark process (all streams'
   * drafting and HTTP), and per verify round the time a stream spent drafting (including waits for
   * the shared event loop) and waiting for the verify answer (RTT, queue and service).
   */
  client: { cpuSeconds: number; draftMsPerRound: number | null; verifyMsPerRound: number | null };
  /** Speculative only: prompts whose output equals cloud-only greedy output token for token. */
  identicalToCloud?: { same: number; of: number };
}

export interface Target {
  name: string;
  target: string;
  value: number | null;
  met: boolean | null;
}

export interface SpeculativeBenchReport {
  benchmark: 'speculative';
  date: string;
  machine: { cpu: string; cores: number; platform: string; node: string };
  /** Cores the verifier child and this process (the simulated sites) were pinned to; null: unpinned. */
  pinning: CorePlan | null;
  config: Omit<SpeculativeBenchOptions, 'entry'> & { prompts: number };
  modes: Partial<Record<BenchMode, ModeReport>>;
  ratios: Record<string, number | null>;
  /** With --repeat > 1: the main ratios of each repeat on its own, to show the spread. */
  perRepeat?: Array<Record<string, number | null>>;
  /** With busyClientControl: cloud-only measured while the simulated sites draft in the background. */
  controls?: {
    cloudWithBusyClients: ModeReport;
    speculativeVsCloudWithBusyClientsVerifierCpuPer1k: number | null;
  };
  micro: { draft: DraftSpeed; verifyCost: VerifyCost } | undefined;
  targets: Target[];
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

  const runDir = mkdtempSync(join(tmpdir(), 'edgectl-bench-'));
  // The child verifier gets a token of its own, so the benchmark measures an authenticated
  // verifier (as deployed) and never depends on an EDGECTL_VERIFIER_TOKEN in the environment.
  const token = randomBytes(16).toString('hex');
  let verifier: HttpVerifier | undefined;
  let proxy: Awaited<ReturnType<typeof startDelayProxy>> | undefined;
  try {
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
    proxy = await startDelayProxy({ host: '127.0.0.1', port }, opts.rttMs / 2);
    const pinning = opts.pin ? pinBenchmark(started.pid, opts.verifierThreads, io) : null;
    verifier = await HttpVerifier.connect(proxy.url, {
      token,
      maxSockets: opts.concurrency + 4,
      timeoutMs: 120_000,
      verifyStream: opts.verifyStream,
    });
    const readStats = async (): Promise<VerifierStats> =>
      (await (
        await fetch(`${directUrl}/v1/stats`, { headers: bearerHeaders(token) })
      ).json()) as VerifierStats;

    const run = (mode: BenchMode, ids: readonly number[]): Promise<RequestOutcome> =>
      runOne(mode, ids, {
        draft,
        verifier: verifier as HttpVerifier,
        lora,
        k: opts.k,
        ...(opts.kMax === undefined ? {} : { kMax: opts.kMax }),
        ...(opts.minDraftConfidence === undefined ? {} : { minDraftConfidence: opts.minDraftConfidence }),
        maxTokens: opts.maxTokens,
        ignoreEos: opts.ignoreEos,
      });

    // Warm both processes (ONNX Runtime's first passes allocate) before anything is measured.
    for (const mode of opts.modes) for (const ids of promptIds.slice(0, 2)) await run(mode, ids);

    // Each repeat runs every mode once, in alternating order (cloud, speculative, edge, then the
    // reverse, ...), so a drift in the machine's speed or the verifier's warm-up over the run
    // falls on every mode alike; a mode's report pools its repeats.
    const passes: Partial<Record<BenchMode, ModePass[]>> = {};
    const controlPasses: ModePass[] = [];
    /** All prompts through `runOne` with `concurrency` streams, the verifier's counters around them. */
    const measure = async (
      runOne: (ids: readonly number[]) => Promise<RequestOutcome>,
    ): Promise<ModePass> => {
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
    const modes: Partial<Record<BenchMode, ModeReport>> = {};
    for (const mode of opts.modes) modes[mode] = report(mode, passes[mode] ?? []);
    // Greedy cloud-only output is the same every repeat; each speculative pass is compared with it.
    const cloudOut = passes.cloud?.[0]?.results.map((r) => r.tokens);
    const specOut = (passes.speculative ?? []).flatMap((p) => p.results.map((r) => r.tokens));
    if (cloudOut && specOut.length > 0 && modes.speculative) {
      const same = specOut.filter((t, i) => sameTokens(t, cloudOut[i % cloudOut.length] ?? [])).length;
      modes.speculative.identicalToCloud = { same, of: specOut.length };
    }
    const perRepeat = opts.repeat > 1 ? repeatRatios(passes) : undefined;
    const cloudWithBusyClients = controlPasses.length > 0 ? report('cloud', controlPasses) : undefined;
    const controls = cloudWithBusyClients
      ? {
          cloudWithBusyClients,
          speculativeVsCloudWithBusyClientsVerifierCpuPer1k: ratio(
            modes.speculative?.verifier.cpuSecondsPer1kTokens ?? Number.NaN,
            cloudWithBusyClients.verifier.cpuSecondsPer1kTokens ?? 0,
          ),
        }
      : undefined;

    let micro: SpeculativeBenchReport['micro'];
    if (opts.micro) {
      io.log('info', 'micro: draft decode speed and verify cost (in-process, one thread)');
      const local = await LmSession.load(opts.verifierDir, { intraOpThreads: 1 });
      try {
        const context = promptIds.reduce((a, b) => (b.length > a.length ? b : a));
        micro = {
          draft: await measureDraftSpeed(draft, promptIds[0] as number[], 128, lora),
          verifyCost: await measureVerifyCost(local, context, 4),
        };
      } finally {
        await local.release();
      }
    }

    const { entry: _entry, ...config } = opts;
    return {
      benchmark: 'speculative',
      date: new Date().toISOString(),
      machine: {
        cpu: cpus()[0]?.model ?? 'unknown',
        cores: cpus().length,
        platform: platform(),
        node: process.version,
      },
      pinning,
      config: { ...config, prompts: promptIds.length },
      modes,
      ratios: ratios(modes),
      ...(perRepeat ? { perRepeat } : {}),
      ...(controls ? { controls } : {}),
      micro,
      targets: targets(modes, micro, opts),
    };
  } finally {
    verifier?.close();
    await proxy?.close();
    await stopDaemon({ name: 'verifier', runDir, graceMs: 5000 }, io).catch(() => undefined);
    rmSync(runDir, { recursive: true, force: true });
    await draft.release();
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
  verifier: HttpVerifier;
  lora: LoraFeeds | undefined;
  k: number | 'auto';
  kMax?: number;
  minDraftConfidence?: number;
  maxTokens: number;
  ignoreEos: boolean;
}

async function runOne(mode: BenchMode, ids: readonly number[], ctx: RunContext): Promise<RequestOutcome> {
  const t0 = performance.now();
  if (mode === 'cloud') {
    const tokens: number[] = [];
    let ttft = Number.NaN;
    const request = {
      prompt: [...ids],
      max_tokens: ctx.maxTokens,
      temperature: 0,
      ignore_eos: ctx.ignoreEos,
    };
    for await (const chunk of ctx.verifier.complete(request)) {
      const got = chunk.choices[0]?.token_ids ?? [];
      if (got.length > 0 && tokens.length === 0) ttft = performance.now() - t0;
      tokens.push(...got);
    }
    const e2eMs = performance.now() - t0;
    return { tokens, ttftMs: ttft, e2eMs, verifyRounds: 0, drafted: 0, accepted: 0, draftMs: 0, verifyMs: 0 };
  }
  const common = {
    maxTokens: ctx.maxTokens,
    ...(ctx.lora ? { lora: ctx.lora } : {}),
    ...(ctx.ignoreEos ? { eosTokenIds: [] } : {}),
  };
  const events =
    mode === 'speculative'
      ? generateSpeculative(ctx.draft, ctx.verifier, ids, {
          ...common,
          k: ctx.k,
          ...(ctx.kMax === undefined ? {} : { adaptive: { max: ctx.kMax } }),
          ...(ctx.minDraftConfidence === undefined ? {} : { minDraftConfidence: ctx.minDraftConfidence }),
          verifierMaxPositions: ctx.verifier.maxContext,
        })
      : generate(ctx.draft, ids, common);
  const { tokens, done } = await collect(events);
  const s = done.stats;
  return {
    tokens,
    ttftMs: s.ttftMs ?? Number.NaN,
    e2eMs: performance.now() - t0,
    verifyRounds: s.verifyRounds,
    drafted: s.drafted,
    accepted: s.accepted,
    draftMs: s.draftMs,
    verifyMs: s.verifyMs,
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

/** One mode's run over all prompts: what the clients saw and the verifier's counters around it. */
interface ModePass {
  results: RequestOutcome[];
  wallSeconds: number;
  before: VerifierStats;
  after: VerifierStats;
  clientCpuSeconds: number;
}

/** A mode's report pooled over its passes: totals over totals, latencies over every request. */
function report(mode: BenchMode, passes: readonly ModePass[]): ModeReport {
  const results = passes.flatMap((p) => p.results);
  const total = (f: (p: ModePass) => number): number => passes.reduce((a, p) => a + f(p), 0);
  const wallSeconds = total((p) => p.wallSeconds);
  const outputTokens = results.reduce((a, r) => a + r.tokens.length, 0);
  const forwardCalls = total((p) => p.after.forwardCalls - p.before.forwardCalls);
  const cpuSeconds = total((p) => p.after.cpuSeconds - p.before.cpuSeconds);
  const verifyRounds = results.reduce((a, r) => a + r.verifyRounds, 0);
  const drafted = results.reduce((a, r) => a + r.drafted, 0);
  const accepted = results.reduce((a, r) => a + r.accepted, 0);
  if (outputTokens === 0)
    throw new OperationalError(`${mode}: no tokens were generated; check the models and prompts`);
  return {
    mode,
    requests: results.length,
    outputTokens,
    wallSeconds: round(wallSeconds),
    tokensPerSecond: round(outputTokens / wallSeconds, 1),
    ttftMs: summarize(results.map((r) => r.ttftMs).filter(Number.isFinite)),
    e2eMs: summarize(results.map((r) => r.e2eMs)),
    verifier: {
      forwardCalls,
      modelRuns: total((p) => p.after.modelRuns - p.before.modelRuns),
      positionsProcessed: total((p) => p.after.positionsProcessed - p.before.positionsProcessed),
      cpuSeconds: round(cpuSeconds),
      cpuSecondsPer1kTokens: mode === 'edge' ? null : round((cpuSeconds * 1000) / outputTokens),
      forwardCallsPerToken: mode === 'edge' ? null : round(forwardCalls / outputTokens),
    },
    tokensPerVerifyRound:
      mode === 'speculative'
        ? ratio(outputTokens, verifyRounds)
        : mode === 'cloud'
          ? ratio(outputTokens, forwardCalls)
          : null,
    verifyRounds,
    drafted,
    accepted,
    acceptance: mode === 'speculative' ? ratio(accepted, drafted) : null,
    meanK: mode === 'speculative' ? ratio(drafted, verifyRounds) : null,
    client: {
      cpuSeconds: round(total((p) => p.clientCpuSeconds)),
      draftMsPerRound: mode === 'speculative' ? ratio(sum(results, 'draftMs'), verifyRounds) : null,
      verifyMsPerRound: mode === 'speculative' ? ratio(sum(results, 'verifyMs'), verifyRounds) : null,
    },
  };
}

/** The main speculative / cloud-only ratios of each repeat taken alone. */
function repeatRatios(passes: Partial<Record<BenchMode, ModePass[]>>): Array<Record<string, number | null>> {
  const cloud = passes.cloud ?? [];
  const spec = passes.speculative ?? [];
  return cloud.flatMap((c, i) => {
    const s = spec[i];
    if (s === undefined) return [];
    const r = ratios({ cloud: report('cloud', [c]), speculative: report('speculative', [s]) });
    return [
      {
        speculativeVsCloudVerifierCpuPer1k: r.speculativeVsCloudVerifierCpuPer1k ?? null,
        speculativeVsCloudTokensPerSecond: r.speculativeVsCloudTokensPerSecond ?? null,
        speculativeVsCloudE2eP95: r.speculativeVsCloudE2eP95 ?? null,
      },
    ];
  });
}

function sum(results: RequestOutcome[], key: 'draftMs' | 'verifyMs'): number {
  return results.reduce((a, r) => a + r[key], 0);
}

function sameTokens(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((t, i) => t === b[i]);
}

function ratios(m: Partial<Record<BenchMode, ModeReport>>): Record<string, number | null> {
  const { cloud, speculative: spec, edge } = m;
  if (!cloud) return {};
  const r: Record<string, number | null> = {};
  if (spec) {
    r.speculativeVsCloudTokensPerSecond = ratio(spec.tokensPerSecond, cloud.tokensPerSecond);
    r.speculativeVsCloudVerifierCpuPer1k = ratio(
      spec.verifier.cpuSecondsPer1kTokens ?? Number.NaN,
      cloud.verifier.cpuSecondsPer1kTokens ?? 0,
    );
    r.speculativeVsCloudForwardCalls = ratio(spec.verifier.forwardCalls, cloud.verifier.forwardCalls);
    r.speculativeVsCloudE2eP95 = ratio(spec.e2eMs.p95, cloud.e2eMs.p95);
    r.speculativeVsCloudTtftP50 = ratio(spec.ttftMs.p50, cloud.ttftMs.p50);
  }
  if (edge) {
    r.edgeVsCloudTokensPerSecond = ratio(edge.tokensPerSecond, cloud.tokensPerSecond);
    r.edgeVsCloudE2eP95 = ratio(edge.e2eMs.p95, cloud.e2eMs.p95);
  }
  return r;
}

function targets(
  m: Partial<Record<BenchMode, ModeReport>>,
  micro: SpeculativeBenchReport['micro'],
  opts: SpeculativeBenchOptions,
): Target[] {
  const t: Target[] = [];
  const add = (name: string, target: string, value: number | null | undefined, met: (v: number) => boolean) =>
    t.push({
      name,
      target,
      value: value ?? null,
      met: value === null || value === undefined ? null : met(value),
    });
  const { cloud, speculative: spec } = m;
  if (spec) add('output tokens per verify round', '>= 2.5', spec.tokensPerVerifyRound, (v) => v >= 2.5);
  if (spec && cloud) {
    add(
      'verifier CPU s/1k tokens, speculative / cloud-only',
      '<= 0.4',
      ratio(spec.verifier.cpuSecondsPer1kTokens ?? Number.NaN, cloud.verifier.cpuSecondsPer1kTokens ?? 0),
      (v) => v <= 0.4,
    );
    const loadTest = `at ${opts.rttMs} ms RTT, ${opts.concurrency} streams`;
    add(
      `aggregate tokens/s, speculative / cloud-only (${loadTest})`,
      '>= 1.5',
      ratio(spec.tokensPerSecond, cloud.tokensPerSecond),
      (v) => v >= 1.5,
    );
    add(
      `end-to-end p95, speculative / cloud-only (${loadTest})`,
      '< 1',
      ratio(spec.e2eMs.p95, cloud.e2eMs.p95),
      (v) => v < 1,
    );
    if (spec.identicalToCloud) {
      add(
        'greedy speculative output identical to cloud-only (share of prompts)',
        '= 1',
        ratio(spec.identicalToCloud.same, spec.identicalToCloud.of),
        (v) => v === 1,
      );
    }
  }
  if (micro) {
    add('draft decode tokens/s, one stream', '>= 1000', micro.draft.tokensPerSecond, (v) => v >= 1000);
    add('verify pass of k=4 / one-token step', '<= 2', micro.verifyCost.ratio, (v) => v <= 2);
  }
  return t;
}
