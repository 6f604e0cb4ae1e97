/**
 * The report of `edgectl bench speculative` (src/bench/speculative.ts runs the modes): its shapes,
 * each mode's figures pooled over its repeats (totals over totals, latencies over every request,
 * the verifier's own counters around each pass), the speculative / cloud-only ratios and the
 * targets from docs/benchmarks.md with whether this run met them.
 */
import { cpus, platform } from 'node:os';
import { OperationalError } from '../foundation/errors.js';
import type { VerifierStats } from '../verifier/server/metrics.js';
import type { CorePlan } from './cpu-pinning.js';
import type { DraftSpeed, VerifyCost } from './micro.js';
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

/** What one request of a mode gave the client. */
export interface RequestOutcome {
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

/** One mode's run over all prompts: what the clients saw and the verifier's counters around it. */
export interface ModePass {
  results: RequestOutcome[];
  wallSeconds: number;
  before: VerifierStats;
  after: VerifierStats;
  clientCpuSeconds: number;
}

/** A mode's report pooled over its passes: totals over totals, latencies over every request. */
export function report(mode: BenchMode, passes: readonly ModePass[]): ModeReport {
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
export function repeatRatios(
  passes: Partial<Record<BenchMode, ModePass[]>>,
): Array<Record<string, number | null>> {
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

export function sameTokens(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((t, i) => t === b[i]);
}

export function ratios(m: Partial<Record<BenchMode, ModeReport>>): Record<string, number | null> {
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

export function targets(
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

/** Every pass of the run, as the report is built from them. */
export interface BenchPasses {
  passes: Partial<Record<BenchMode, ModePass[]>>;
  /** Cloud-only measured while the simulated sites drafted in the background (busyClientControl). */
  controlPasses: ModePass[];
}

/** The whole report: modes pooled over repeats, output identity, ratios, controls and targets. */
export function buildReport(
  opts: SpeculativeBenchOptions,
  prompts: number,
  pinning: CorePlan | null,
  { passes, controlPasses }: BenchPasses,
  micro: SpeculativeBenchReport['micro'],
): SpeculativeBenchReport {
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
    config: { ...config, prompts },
    modes,
    ratios: ratios(modes),
    ...(perRepeat ? { perRepeat } : {}),
    ...(controls ? { controls } : {}),
    micro,
    targets: targets(modes, micro, opts),
  };
}
