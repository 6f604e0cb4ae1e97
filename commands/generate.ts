import { resolve } from 'node:path';
import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../src/cli/base-command.js';
import { registryFlag, trustFlag } from '../src/cli/flags.js';
import { ExitCode, UserError } from '../src/foundation/errors.js';
import { generateText, type GenerateTextResult } from '../src/generate/generate-text.js';
import { resolveModelSource } from '../src/verifier/server/model-source.js';
import { VERIFIER_TOKEN_ENV } from '../src/verifier/protocol.js';
import { REPETITION_PENALTY_RANGE } from '../src/inference/sampling.js';

export default class Generate extends BaseCommand<typeof Generate> {
  static override summary = 'Generate text edge-only, speculatively against a verifier, or cloud-only.';
  static override description =
    'Without --verifier the draft model generates alone (edge-only). With --verifier <url> the draft proposes k ' +
    'tokens per round and the verifier accepts or corrects them in one pass (speculative; greedy output is ' +
    "token-identical to the verifier alone). --route cloud sends the prompt to the verifier's /v1/completions " +
    'instead. Text streams to stdout at a terminal; --json prints the text with the route and the speculative ' +
    'statistics (verify rounds, drafted, accepted, acceptance, tokens per round, time to first token).';
  static override examples = [
    '<%= config.bin %> generate --model artifacts/models/draft "Ana: my order has not arrived"',
    '<%= config.bin %> generate --model artifacts/models/draft --verifier http://127.0.0.1:8700 --k auto "Hello"',
    '<%= config.bin %> generate --model artifacts/models/draft --adapter artifacts/adapters/support --verifier http://127.0.0.1:8700 --json "Hi"',
    '<%= config.bin %> generate --route cloud --verifier http://127.0.0.1:8700 --max-tokens 32 "Hello"',
  ];
  static override args = {
    prompt: Args.string({ description: 'The prompt text.', required: true }),
  };
  static override flags = {
    registry: registryFlag,
    trust: trustFlag,
    model: Flags.string({
      summary: 'Draft model directory or ref (edge and speculative routes).',
      helpValue: '<dir|ref>',
    }),
    chat: Flags.boolean({
      summary: "Send the prompt as a user message through the model's chat template (tokenizer_config.json).",
    }),
    'model-file': Flags.string({
      summary:
        'Graph file inside the model directory, e.g. onnx/model_q4.onnx (default: artifact.yaml file:/dtype:, else model.onnx, ..., onnx/model.onnx, then fp16, q4, ... variants).',
      helpValue: '<path>',
    }),
    adapter: Flags.string({
      summary: 'LoRA adapter directory or ref applied to the draft.',
      helpValue: '<dir|ref>',
    }),
    verifier: Flags.string({ summary: 'Verifier URL, e.g. http://127.0.0.1:8700.', helpValue: '<url>' }),
    'verifier-token': Flags.string({
      summary: 'Bearer token the verifier requires (its `verifier up --token`).',
      env: VERIFIER_TOKEN_ENV,
      helpValue: '<token>',
    }),
    route: Flags.option({
      options: ['edge', 'speculative', 'cloud'] as const,
      summary: 'Where tokens come from (default: speculative with --verifier, else edge).',
    })(),
    k: Flags.string({
      summary: 'Tokens drafted per verify round, or "auto" (adapts to acceptance and RTT).',
      default: 'auto',
    }),
    'max-tokens': Flags.integer({ summary: 'Most tokens to generate.', default: 64, min: 1 }),
    temperature: Flags.string({ summary: 'Sampling temperature (0 = greedy).', default: '0' }),
    'top-p': Flags.string({ summary: 'Nucleus sampling mass (0 < p <= 1).' }),
    'repetition-penalty': Flags.string({
      summary: `Hugging Face repetition penalty, ${REPETITION_PENALTY_RANGE.min}..${REPETITION_PENALTY_RANGE.max} (1 = off; default: the model's generation_config.json).`,
    }),
    seed: Flags.integer({ summary: 'Seed for reproducible sampling.' }),
    stop: Flags.string({ summary: 'Stop string (repeatable); the text ends before it.', multiple: true }),
    threads: Flags.integer({ summary: 'CPU threads for the draft model.', default: 1, min: 1 }),
  };

  public async run(): Promise<GenerateTextResult> {
    const f = this.flags;
    const base = this.projectConfig(f.registry);
    const cfg = f.trust ? { ...base, trustPath: resolve(f.trust) } : base;
    const model = f.model ? (await resolveModelSource(f.model, cfg, this.io)).dir : undefined;
    const adapter = f.adapter
      ? (await resolveModelSource(f.adapter, cfg, this.io, 'adapter', '--adapter')).dir
      : undefined;
    const stream = this.human && Boolean(process.stdout.isTTY);
    const result = await generateText({
      prompt: this.args.prompt,
      modelDir: model,
      modelFile: f['model-file'],
      chat: f.chat,
      adapterDir: adapter,
      verifierUrl: f.verifier,
      verifierToken: f['verifier-token'],
      route: f.route,
      k: parseK(f.k),
      maxTokens: f['max-tokens'],
      temperature: parseNumber(f.temperature, '--temperature', 0, 100),
      topP: f['top-p'] === undefined ? undefined : parseNumber(f['top-p'], '--top-p', Number.MIN_VALUE, 1),
      repetitionPenalty:
        f['repetition-penalty'] === undefined
          ? undefined
          : parseNumber(
              f['repetition-penalty'],
              '--repetition-penalty',
              REPETITION_PENALTY_RANGE.min,
              REPETITION_PENALTY_RANGE.max,
            ),
      seed: f.seed,
      stop: f.stop ?? [],
      threads: f.threads,
      signal: this.signal,
      ...(stream ? { onText: (t: string) => process.stdout.write(t) } : {}),
    });
    if (stream) process.stdout.write('\n');
    else this.out(result.text);
    const spec =
      result.route === 'speculative'
        ? `, ${result.verifyRounds} verify rounds, acceptance ${((result.acceptance ?? 0) * 100).toFixed(0)}%, ${(result.tokensPerRound ?? 0).toFixed(2)} tokens/round`
        : '';
    this.io.log(
      'info',
      `${result.route}: ${result.tokens} tokens in ${Math.round(result.durationMs)} ms (${result.tokensPerSecond.toFixed(1)} tok/s, first token ${Math.round(result.ttftMs ?? 0)} ms${spec})`,
    );
    return result;
  }

  protected override exitCodeOf(result: GenerateTextResult): number | undefined {
    return result.finishReason === 'aborted' ? ExitCode.Interrupted : undefined;
  }
}

function parseK(text: string): number | 'auto' {
  if (text === 'auto') return 'auto';
  const k = Number(text);
  if (!Number.isInteger(k) || k < 0 || k > 32) {
    throw new UserError(`--k ${text}: expected "auto" or an integer from 0 to 32`);
  }
  return k;
}

function parseNumber(text: string, flag: string, min: number, max: number): number {
  const v = Number(text);
  if (!Number.isFinite(v) || v < min || v > max) {
    throw new UserError(
      `${flag} ${text}: expected a number between ${min === Number.MIN_VALUE ? 0 : min} and ${max}`,
    );
  }
  return v;
}
