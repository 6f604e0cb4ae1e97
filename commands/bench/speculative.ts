import { join, resolve } from 'node:path';
import { Flags } from '@oclif/core';
import { BaseCommand } from '../../src/cli/base-command.js';
import { registryFlag, trustFlag } from '../../src/cli/flags.js';
import { UserError } from '../../src/foundation/errors.js';
import { DEFAULT_MIN_DRAFT_CONFIDENCE, K_MAX } from '../../src/inference/adaptive-k.js';
import {
  BENCH_MODES,
  runSpeculativeBench,
  type BenchMode,
  type SpeculativeBenchReport,
} from '../../src/bench/speculative.js';
import { resolveModelSource } from '../../src/verifier/server/model-source.js';

export default class BenchSpeculative extends BaseCommand<typeof BenchSpeculative> {
  static override summary = 'Benchmark speculative decoding against cloud-only and edge-only generation.';
  static override description =
    'Starts a real verifier child process (--verifier-threads cores) behind a delay proxy that adds --rtt-ms of ' +
    'round-trip time, then serves the same prompts cloud-only (the verifier alone), speculatively (the local draft ' +
    'proposes, the verifier verifies) and edge-only (the draft alone) with --concurrency streams. Reports per mode: ' +
    'output tokens, verifier forward calls, positions processed, verifier CPU seconds per 1k output tokens, tokens ' +
    'per verify round, acceptance, TTFT and end-to-end p50/p95, aggregate tokens/s, the ratios to cloud-only (the ' +
    'baseline of the same run), and the targets met or missed.';
  static override examples = [
    '<%= config.bin %> bench speculative --draft artifacts/models/draft --verifier artifacts/models/verifier --json',
    '<%= config.bin %> bench speculative --draft artifacts/models/draft --verifier artifacts/models/verifier --prompts artifacts/prompts/support.jsonl --adapter artifacts/adapters/support --modes speculative --k 4',
  ];
  static override flags = {
    registry: registryFlag,
    trust: trustFlag,
    draft: Flags.string({ summary: 'Draft model directory or ref.', required: true, helpValue: '<dir|ref>' }),
    verifier: Flags.string({
      summary: 'Verifier model directory or ref.',
      required: true,
      helpValue: '<dir|ref>',
    }),
    adapter: Flags.string({ summary: 'LoRA adapter applied to the draft.', helpValue: '<dir|ref>' }),
    prompts: Flags.string({
      summary: 'Prompts, one {"prompt": "..."} per line.',
      default: 'artifacts/prompts/general.jsonl',
      helpValue: '<file.jsonl>',
    }),
    limit: Flags.integer({ summary: 'Use only the first N prompts.', min: 1 }),
    k: Flags.string({ summary: 'Tokens drafted per round, or "auto".', default: 'auto' }),
    'k-max': Flags.integer({
      summary: 'Longest draft adaptive k (--k auto) may choose.',
      default: K_MAX,
      min: 1,
      max: 32,
    }),
    'min-draft-confidence': Flags.string({
      summary:
        'Adaptive rounds stop drafting once the draft gives its whole proposal less than this probability (0 = off).',
      default: String(DEFAULT_MIN_DRAFT_CONFIDENCE),
      helpValue: '<0..1>',
    }),
    'rtt-ms': Flags.integer({
      summary: 'Round-trip time the delay proxy adds to each verifier call.',
      default: 20,
      min: 0,
    }),
    concurrency: Flags.integer({ summary: 'Concurrent streams.', default: 16, min: 1 }),
    'max-tokens': Flags.integer({ summary: 'Most tokens per response.', default: 64, min: 1 }),
    'ignore-eos': Flags.boolean({
      summary: 'Generate past end-of-sequence, so every response has --max-tokens tokens.',
      default: false,
    }),
    modes: Flags.string({
      summary: 'Comma-separated modes to run: cloud, speculative, edge.',
      default: 'cloud,speculative,edge',
    }),
    'verifier-threads': Flags.integer({ summary: 'Cores given to the verifier child.', default: 1, min: 1 }),
    'verifier-batch': Flags.integer({
      summary: 'Sequences per forward pass in the verifier child (1 = no micro-batching).',
      default: 1,
      min: 1,
    }),
    repeat: Flags.integer({
      summary: 'Run every mode this many times, alternating the order; the report pools the repeats.',
      default: 1,
      min: 1,
    }),
    'verify-stream': Flags.boolean({
      summary:
        'Run speculative rounds over kept-alive verify streams (WebSockets); --no-verify-stream: one POST per round.',
      default: true,
      allowNo: true,
    }),
    'busy-client-control': Flags.boolean({
      summary:
        'Also measure cloud-only while the simulated sites draft in the background (how busy clients on the same machine raise the verifier CPU by themselves).',
      default: false,
    }),
    pin: Flags.boolean({
      summary: 'Pin the verifier to its own cores and the simulated sites to the rest (Linux, taskset).',
      default: true,
      allowNo: true,
    }),
    micro: Flags.boolean({
      summary: 'Also measure draft decode speed and verify-pass cost in-process.',
      default: true,
      allowNo: true,
    }),
  };

  public async run(): Promise<SpeculativeBenchReport> {
    const f = this.flags;
    const base = this.projectConfig(f.registry);
    const cfg = f.trust ? { ...base, trustPath: resolve(f.trust) } : base;
    const modes = f.modes.split(',').map((m) => m.trim());
    for (const m of modes) {
      if (!(BENCH_MODES as readonly string[]).includes(m)) {
        throw new UserError(`--modes: unknown mode "${m}"`, {
          suggestion: `use some of: ${BENCH_MODES.join(', ')}`,
        });
      }
    }
    const k = f.k === 'auto' ? 'auto' : Number(f.k);
    if (k !== 'auto' && !(Number.isInteger(k) && k >= 0 && k <= 32)) {
      throw new UserError(`--k ${f.k}: expected "auto" or an integer from 0 to 32`);
    }
    const report = await runSpeculativeBench(
      {
        draftDir: (await resolveModelSource(f.draft, cfg, this.io, 'model', '--draft')).dir,
        verifierDir: (await resolveModelSource(f.verifier, cfg, this.io, 'model', '--verifier')).dir,
        adapterDir: f.adapter
          ? (await resolveModelSource(f.adapter, cfg, this.io, 'adapter', '--adapter')).dir
          : undefined,
        promptsFile: resolve(f.prompts),
        limit: f.limit,
        k,
        kMax: f['k-max'],
        minDraftConfidence: parseConfidence(f['min-draft-confidence']),
        rttMs: f['rtt-ms'],
        concurrency: f.concurrency,
        maxTokens: f['max-tokens'],
        ignoreEos: f['ignore-eos'],
        modes: modes as BenchMode[],
        verifierThreads: f['verifier-threads'],
        verifierBatch: f['verifier-batch'],
        micro: f.micro,
        pin: f.pin,
        repeat: f.repeat,
        verifyStream: f['verify-stream'],
        busyClientControl: f['busy-client-control'],
        entry: join(this.config.root, 'bin', 'run.js'),
      },
      this.io,
    );
    for (const m of Object.values(report.modes)) {
      this.out(
        `${m.mode.padEnd(11)} ${String(m.outputTokens).padStart(6)} tokens  ${String(m.tokensPerSecond).padStart(7)} tok/s  ` +
          `TTFT p50 ${m.ttftMs.p50} ms  e2e p95 ${m.e2eMs.p95} ms  verifier ${m.verifier.forwardCalls} calls, ` +
          `${m.verifier.cpuSecondsPer1kTokens ?? '-'} CPU s/1k tok` +
          (m.mode === 'speculative'
            ? `  ${m.tokensPerVerifyRound} tok/round, acceptance ${m.acceptance}`
            : ''),
      );
    }
    for (const t of report.targets) {
      this.out(
        `${t.met === null ? '?' : t.met ? 'met   ' : 'MISSED'} ${t.name}: ${t.value} (target ${t.target})`,
      );
    }
    return report;
  }
}

function parseConfidence(raw: string): number {
  const v = Number(raw);
  if (!(raw.trim() !== '' && v >= 0 && v < 1)) {
    throw new UserError(`--min-draft-confidence ${raw}: expected a number from 0 up to (not including) 1`, {
      suggestion: 'Use 0 to always draft k tokens, or a small probability such as 0.05.',
    });
  }
  return v;
}
