/**
 * One text generation the way `edgectl generate` runs it, on one of three routes: edge-only (the
 * local draft model alone), speculative (the draft proposes, a remote verifier decides, via the
 * engine's generateSpeculative over HttpVerifier) or cloud (the verifier's OpenAI /v1/completions
 * alone). It loads what the route needs, streams text deltas to a callback, and returns the text
 * with the speculative statistics in one shape for every route.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../cli/errors.js';
import { loadChatPrompt } from '../inference/chat-template.js';
import { collect, generate, generateSpeculative, type GenerateEvent } from '../inference/generate.js';
import { HttpVerifier } from '../inference/http-verifier.js';
import { loadLoraAdapter } from '../inference/lora.js';
import { LmSession } from '../inference/model-session.js';
import { hasRepetitionPenalty, type SamplingParams } from '../inference/sampling.js';
import { TextTokenizer, TOKENIZER_FILE } from '../inference/tokenizer.js';

export type GenerateRoute = 'edge' | 'speculative' | 'cloud';

export interface GenerateTextOptions {
  prompt: string;
  /** Draft model directory (edge and speculative routes). */
  modelDir: string | undefined;
  /** Treat the prompt as a user message rendered with the model's chat template (`--chat`). */
  chat?: boolean | undefined;
  /** Graph file inside modelDir (`--model-file`); default: model-files.ts's order. */
  modelFile?: string | undefined;
  adapterDir: string | undefined;
  verifierUrl: string | undefined;
  /** Bearer token the verifier requires (`verifier up --token`). */
  verifierToken?: string | undefined;
  /** Default: speculative with a verifier, edge without. */
  route: GenerateRoute | undefined;
  k: number | 'auto';
  maxTokens: number;
  temperature: number;
  topP: number | undefined;
  /** Default: the draft model's generation_config.json `repetition_penalty` (cloud: none). */
  repetitionPenalty?: number | undefined;
  seed: number | undefined;
  stop: string[];
  /** ONNX Runtime threads for the draft model. */
  threads: number;
  signal?: AbortSignal;
  /** Receives text as it is generated. */
  onText?: (delta: string) => void;
}

export interface GenerateTextResult {
  text: string;
  route: GenerateRoute;
  finishReason: string;
  promptTokens: number;
  tokens: number;
  /** Verify calls (speculative); verifier passes for cloud (one per token); 0 for edge. */
  verifyRounds: number;
  drafted: number;
  accepted: number;
  /** accepted / drafted (speculative), else null. */
  acceptance: number | null;
  /** Output tokens per verifier call (speculative and cloud), else null. */
  tokensPerRound: number | null;
  ttftMs: number | null;
  durationMs: number;
  tokensPerSecond: number;
  model: string | undefined;
  adapter: string | undefined;
  verifier: string | undefined;
}

export async function generateText(opts: GenerateTextOptions): Promise<GenerateTextResult> {
  const route: GenerateRoute = opts.route ?? (opts.verifierUrl ? 'speculative' : 'edge');
  if (route !== 'edge' && !opts.verifierUrl) {
    throw new UserError(`--route ${route} needs --verifier <url>`, {
      suggestion: 'Start one with `edgectl verifier up --model <dir>` and pass its URL.',
    });
  }
  if (route !== 'cloud' && !opts.modelDir) {
    throw new UserError(`--route ${route} needs --model <draft model dir>`);
  }
  const sampling: SamplingParams = { temperature: opts.temperature };
  if (opts.topP !== undefined) sampling.topP = opts.topP;
  if (opts.repetitionPenalty !== undefined) sampling.repetitionPenalty = opts.repetitionPenalty;
  if (opts.chat && !opts.modelDir) {
    throw new UserError('--chat needs --model: the chat template comes from the model directory', {
      code: 'E_USAGE',
      suggestion: 'Pass --model <dir|ref> with --chat.',
    });
  }
  const chat = opts.chat ? chatPromptOf(opts.modelDir as string, opts.prompt) : undefined;
  if (chat) opts = { ...opts, prompt: chat.text, stop: [...opts.stop, ...chat.stops] };
  if (route === 'cloud') return generateCloud(opts, opts.verifierUrl as string, sampling);

  const modelDir = opts.modelDir as string;
  const tokenizer = TextTokenizer.load(modelDir);
  const draft = await LmSession.load(modelDir, { intraOpThreads: opts.threads, modelFile: opts.modelFile });
  sampling.repetitionPenalty ??= draft.config.defaults.repetitionPenalty;
  let verifier: HttpVerifier | undefined;
  try {
    const lora = opts.adapterDir ? loadLoraAdapter(opts.adapterDir, draft.inputs.lora).feeds : undefined;
    const promptIds = chat?.ids ?? tokenizer.encode(opts.prompt);
    const common = {
      maxTokens: opts.maxTokens,
      sampling,
      stop: opts.stop,
      tokenizer,
      ...(opts.seed === undefined ? {} : { seed: opts.seed }),
      ...(lora ? { lora } : {}),
      ...(opts.signal ? { signal: opts.signal } : {}),
    };
    let events: AsyncGenerator<GenerateEvent, void, undefined>;
    if (route === 'speculative') {
      verifier = await HttpVerifier.connect(opts.verifierUrl as string, {
        expectTokenizerSha256: sha256File(join(modelDir, TOKENIZER_FILE)),
        ...(opts.verifierToken ? { token: opts.verifierToken } : {}),
      });
      events = generateSpeculative(draft, verifier, promptIds, {
        ...common,
        k: opts.k,
        verifierMaxPositions: verifier.maxContext,
      });
    } else {
      events = generate(draft, promptIds, common);
    }
    const { text, done } = await collect(tee(events, opts.onText));
    const s = done.stats;
    return {
      text,
      route,
      finishReason: done.finishReason,
      promptTokens: promptIds.length,
      tokens: s.tokens,
      verifyRounds: s.verifyRounds,
      drafted: s.drafted,
      accepted: s.accepted,
      acceptance: route === 'speculative' ? s.acceptanceRate : null,
      tokensPerRound: route === 'speculative' && s.verifyRounds > 0 ? s.tokens / s.verifyRounds : null,
      ttftMs: s.ttftMs ?? null,
      durationMs: s.durationMs,
      tokensPerSecond: s.tokensPerSecond,
      model: modelDir,
      adapter: opts.adapterDir,
      verifier: opts.verifierUrl,
    };
  } finally {
    verifier?.close();
    await draft.release();
  }
}

async function generateCloud(
  opts: GenerateTextOptions,
  url: string,
  sampling: SamplingParams,
): Promise<GenerateTextResult> {
  const verifier = await HttpVerifier.connect(url, opts.verifierToken ? { token: opts.verifierToken } : {});
  const t0 = performance.now();
  let ttft: number | undefined;
  let text = '';
  let tokens = 0;
  let promptTokens = 0;
  let finishReason = 'length';
  try {
    const chunks = verifier.complete(
      {
        prompt: opts.prompt,
        max_tokens: opts.maxTokens,
        temperature: sampling.temperature,
        ...(sampling.topP === undefined ? {} : { top_p: sampling.topP }),
        ...(hasRepetitionPenalty(sampling)
          ? { repetition_penalty: sampling.repetitionPenalty as number }
          : {}),
        ...(opts.stop.length ? { stop: opts.stop } : {}),
        ...(opts.seed === undefined ? {} : { seed: opts.seed }),
        stream_options: { include_usage: true },
      },
      opts.signal,
    );
    for await (const chunk of chunks) {
      const choice = chunk.choices[0];
      if (choice) {
        if (choice.token_ids.length > 0) {
          ttft ??= performance.now() - t0;
          tokens += choice.token_ids.length;
        }
        if (choice.text) {
          text += choice.text;
          opts.onText?.(choice.text);
        }
        if (choice.finish_reason) finishReason = choice.finish_reason === 'stop' ? 'stop' : 'length';
      }
      if (chunk.usage) promptTokens = chunk.usage.prompt_tokens;
    }
  } finally {
    verifier.close();
  }
  const durationMs = performance.now() - t0;
  return {
    text,
    route: 'cloud',
    finishReason,
    promptTokens,
    tokens,
    verifyRounds: tokens,
    drafted: 0,
    accepted: 0,
    acceptance: null,
    tokensPerRound: tokens > 0 ? 1 : null,
    ttftMs: ttft ?? null,
    durationMs,
    tokensPerSecond: durationMs > 0 ? (tokens * 1000) / durationMs : 0,
    model: undefined,
    adapter: undefined,
    verifier: url,
  };
}

/** Passes events through, sending their text to `onText` as it appears. */
async function* tee(
  events: AsyncGenerator<GenerateEvent, void, undefined>,
  onText: ((delta: string) => void) | undefined,
): AsyncGenerator<GenerateEvent, void, undefined> {
  for await (const e of events) {
    if (e.text && onText) onText(e.text);
    yield e;
  }
}

function sha256File(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/** `--chat`: the prompt as one user message through the model's chat template. */
function chatPromptOf(modelDir: string, prompt: string): { text: string; ids: number[]; stops: string[] } {
  const chat = loadChatPrompt(modelDir, TextTokenizer.load(modelDir));
  return { ...chat.template.encode([{ role: 'user', content: prompt }]), stops: chat.stops };
}
