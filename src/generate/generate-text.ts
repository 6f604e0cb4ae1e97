/**
 * One text generation the way `edgectl generate` runs it, on one of three routes: edge-only (the
 * local draft model alone), speculative (the draft proposes, a remote verifier decides) or cloud
 * (the verifier's OpenAI /v1/completions alone, on the prompt text: no local model needed). The
 * dispatch is the site's own route executor (src/runtime/engine/route-executor.ts) with the one
 * verifier client connected here and no fallback (a verifier failure is the command's error). It
 * loads what the route needs, streams text deltas to a callback, and returns the text with the
 * speculative statistics in one shape for every route.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../foundation/errors.js';
import { loadChatPrompt } from '../inference/chat-template.js';
import { HttpVerifier } from '../verifier/client/http-verifier.js';
import { loadLoraAdapter } from '../inference/lora.js';
import { LmSession } from '../inference/model-session.js';
import type { SamplingParams } from '../inference/sampling.js';
import { TextTokenizer, TOKENIZER_FILE } from '../inference/tokenizer.js';
import {
  drainRoute,
  executeRoute,
  newRunState,
  type RoutePrompt,
  type RunState,
} from '../runtime/engine/route-executor.js';
import { clientAccess, noVerifierAccess } from '../runtime/engine/verifier-access.js';
import { OutputText } from '../runtime/engine/output.js';

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
  if (opts.chat && !opts.modelDir) {
    throw new UserError('--chat needs --model: the chat template comes from the model directory', {
      code: 'E_USAGE',
      suggestion: 'Pass --model <dir|ref> with --chat.',
    });
  }
  const chat = opts.chat ? chatPromptOf(opts.modelDir as string, opts.prompt) : undefined;
  if (chat) opts = { ...opts, prompt: chat.text, stop: [...opts.stop, ...chat.stops] };
  if (route === 'cloud') return generateCloud(opts);

  const modelDir = opts.modelDir as string;
  const tokenizer = TextTokenizer.load(modelDir);
  const draft = await LmSession.load(modelDir, { intraOpThreads: opts.threads, modelFile: opts.modelFile });
  let verifier: HttpVerifier | undefined;
  try {
    const lora = opts.adapterDir ? loadLoraAdapter(opts.adapterDir, draft.inputs.lora).feeds : undefined;
    const promptIds = chat?.ids ?? tokenizer.encode(opts.prompt);
    if (route === 'speculative') {
      verifier = await HttpVerifier.connect(opts.verifierUrl as string, {
        expectTokenizerSha256: sha256File(join(modelDir, TOKENIZER_FILE)),
        ...(opts.verifierToken ? { token: opts.verifierToken } : {}),
      });
    }
    const out = new OutputText(tokenizer, promptIds, opts.stop, undefined);
    let text = '';
    const emit = (piece: string) => {
      if (piece === '') return;
      text += piece;
      opts.onText?.(piece);
    };
    const run = await runOnRoute(opts, route, { ids: promptIds }, draft, verifier, lora, {
      token: (token) => {
        const r = out.push(token);
        emit(r.text);
        return r.stopped;
      },
    });
    emit(out.end());
    const finishReason = out.stopped ? 'stop' : run.finish;
    return result(opts, route, run, text, finishReason, promptIds.length, modelDir);
  } finally {
    verifier?.close();
    await draft.release();
  }
}

interface RouteRun {
  state: RunState;
  finish: string;
  ttftMs: number | null;
  durationMs: number;
}

/** The route executor over this command's draft and verifier client, timed from its start. */
async function runOnRoute(
  opts: GenerateTextOptions,
  route: GenerateRoute,
  prompt: RoutePrompt,
  draft: LmSession | undefined,
  verifier: HttpVerifier | undefined,
  lora: ReturnType<typeof loadLoraAdapter>['feeds'] | undefined,
  on: { token: (token: number) => boolean; text?: (text: string) => void },
): Promise<RouteRun> {
  const sampling: SamplingParams = { temperature: opts.temperature };
  if (opts.topP !== undefined) sampling.topP = opts.topP;
  const penalty = opts.repetitionPenalty ?? draft?.config.defaults.repetitionPenalty;
  if (penalty !== undefined) sampling.repetitionPenalty = penalty;
  const state = newRunState(route);
  const t0 = performance.now();
  let ttftMs: number | null = null;
  const exec = executeRoute(
    {
      route,
      prompt,
      maxTokens: opts.maxTokens,
      sampling,
      seed: opts.seed,
      ignoreEos: false,
      lora,
      cache: undefined,
      drafting: { k: opts.k },
      signal: opts.signal ?? new AbortController().signal,
    },
    { model: draft, verifier: verifier ? clientAccess(verifier) : noVerifierAccess() },
    state,
  );
  const finish = await drainRoute(exec, {
    token: (token) => {
      ttftMs ??= performance.now() - t0;
      return on.token(token);
    },
    ...(on.text ? { text: on.text } : {}),
  });
  return { state, finish, ttftMs, durationMs: performance.now() - t0 };
}

/** Cloud-only: the prompt text goes to the verifier, which also matches the stop strings. */
async function generateCloud(opts: GenerateTextOptions): Promise<GenerateTextResult> {
  const url = opts.verifierUrl as string;
  const verifier = await HttpVerifier.connect(url, opts.verifierToken ? { token: opts.verifierToken } : {});
  let text = '';
  try {
    const run = await runOnRoute(
      opts,
      'cloud',
      { text: opts.prompt, stop: opts.stop },
      undefined,
      verifier,
      undefined,
      {
        token: () => false,
        text: (piece) => {
          text += piece;
          opts.onText?.(piece);
        },
      },
    );
    const r = result(opts, 'cloud', run, text, run.finish, run.state.promptTokens ?? 0, undefined);
    return { ...r, adapter: undefined };
  } finally {
    verifier.close();
  }
}

/** One shape for every route (the module comment). */
function result(
  opts: GenerateTextOptions,
  route: GenerateRoute,
  run: RouteRun,
  text: string,
  finishReason: string,
  promptTokens: number,
  model: string | undefined,
): GenerateTextResult {
  const s = run.state;
  const tokens = s.emitted.length;
  const spec = route === 'speculative';
  return {
    text,
    route,
    finishReason,
    promptTokens,
    tokens,
    verifyRounds: s.verifyRounds,
    drafted: s.draftTokens,
    accepted: s.acceptedTokens,
    acceptance: spec ? (s.draftTokens > 0 ? s.acceptedTokens / s.draftTokens : 0) : null,
    tokensPerRound: (spec || route === 'cloud') && s.verifyRounds > 0 ? tokens / s.verifyRounds : null,
    ttftMs: run.ttftMs,
    durationMs: run.durationMs,
    tokensPerSecond: run.durationMs > 0 ? (tokens * 1000) / run.durationMs : 0,
    model,
    adapter: opts.adapterDir,
    verifier: opts.verifierUrl,
  };
}

function sha256File(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/** `--chat`: the prompt as one user message through the model's chat template. */
function chatPromptOf(modelDir: string, prompt: string): { text: string; ids: number[]; stops: string[] } {
  const chat = loadChatPrompt(modelDir, TextTokenizer.load(modelDir));
  return { ...chat.template.encode([{ role: 'user', content: prompt }]), stops: chat.stops };
}
