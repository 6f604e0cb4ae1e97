/**
 * Generation loops as async iterators of token events: `generate` runs one model alone (edge-only
 * on the draft, cloud-only on the verifier's model), `generateSpeculative` runs a draft model
 * against any `Verifier` (in-process or HTTP) with a fixed or adaptive k.
 *
 * Both share the same output rules: end-of-sequence ends generation and is not returned, stop
 * strings end it with the text cut before the stop (held-back text is released only once it can
 * no longer start a stop string), `maxTokens` caps the returned tokens, the model's context length
 * caps the sequence, and an AbortSignal ends it early. A speculative round may yield several
 * tokens; they are returned one event each, and whatever follows a stop is discarded. The last
 * event is always `done` with the statistics.
 */
import {
  AdaptiveK,
  DEFAULT_MIN_DRAFT_CONFIDENCE,
  SEEDED_ROUND_COSTS,
  type AdaptiveKOptions,
} from './adaptive-k.js';
import { DecodeState } from './decode-state.js';
import { StatsRecorder, type GenerationStats } from './generation-stats.js';
import { applyMask } from './grammar/mask.js';
import type { TokenConstraint } from './grammar/types.js';
import type { KvCache } from './kv-cache.js';
import type { LoraFeeds } from './lora-slots.js';
import type { CausalLm } from './model-session.js';
import { createRng } from './rng.js';
import {
  GREEDY,
  isGreedy,
  penalizedRow,
  sampleToken,
  validateSamplingParams,
  type SamplingParams,
} from './sampling.js';
import { tokenLogprob, type TokenLogprob } from './logprobs.js';
import { Drafter, speculativeRound } from './speculative.js';
import { StopMatcher } from './stop.js';
import type { StreamDetokenizer, TextTokenizer } from './tokenizer.js';
import type { Verifier, VerifierSession } from './verifier.js';

export type FinishReason = 'eos' | 'stop' | 'length' | 'aborted';

export interface TokenEvent {
  type: 'token';
  token: number;
  /** With `logprobs` asked: the token's logprob in the distribution that produced it (logprobs.ts). */
  logprob?: TokenLogprob;
  /** Newly complete text (may be empty while a character or a possible stop string is pending). */
  text: string;
}

export interface DoneEvent {
  type: 'done';
  finishReason: FinishReason;
  /** Text released at the end (held back until now); append it to the streamed text. */
  text: string;
  stats: GenerationStats;
}

export type GenerateEvent = TokenEvent | DoneEvent;

export interface GenerateOptions {
  /** Most tokens to return. */
  maxTokens: number;
  /** Greedy when absent. */
  sampling?: SamplingParams;
  seed?: number;
  /** Stop strings (need `tokenizer`). */
  stop?: readonly string[];
  /** Default: the model's eos ids from config.json / generation_config.json. */
  eosTokenIds?: readonly number[];
  /** Decodes text for events and stop strings; without it events carry empty text. */
  tokenizer?: TextTokenizer;
  /** Adapter feeds for the (draft) model. */
  lora?: LoraFeeds;
  /**
   * A cache of the (draft) model covering a prefix of the prompt, computed with the same adapter
   * (e.g. from `analyzePrompt`), so the prompt is not prefilled twice.
   */
  cache?: KvCache;
  signal?: AbortSignal;
  now?: () => number;
  /**
   * Grammar-constrained decoding (issue #18): every token is drawn under the constraint's mask and
   * generation ends (`eos`) once the grammar has accepted an end-of-sequence token. Speculative
   * decoding drafts under the mask and sends the verifier the mask of every drafted position.
   */
  constraint?: TokenConstraint;
  /**
   * Report each token's logprob and this many top alternatives (0..20) on its event: the model's
   * own for single-model generation, the verifier's for speculative (it must support them).
   */
  logprobs?: number;
}

export interface SpeculativeOptions extends GenerateOptions {
  /** Tokens drafted per round, or 'auto' for adaptive k (default 'auto'). */
  k?: number | 'auto';
  adaptive?: AdaptiveKOptions;
  /**
   * With adaptive k, a round stops drafting once the draft's confidence that all its tokens will be
   * accepted (the product of the probabilities it gave them) is below this; 0 = always draft k.
   * Default DEFAULT_MIN_DRAFT_CONFIDENCE. A fixed k always drafts exactly k.
   */
  minDraftConfidence?: number;
  /** Seed of the verifier's draws; default derived from `seed`. */
  verifierSeed?: number;
  /** Context length of the verifier's model when it is smaller than the draft's. */
  verifierMaxPositions?: number;
}

/** Turns generated tokens into events and decides when generation ends. */
class OutputTracker {
  private readonly detok: StreamDetokenizer | undefined;
  private readonly stop: StopMatcher;
  private readonly eos: ReadonlySet<number>;
  count = 0;

  constructor(
    promptIds: readonly number[],
    private readonly opts: GenerateOptions,
    defaultEos: readonly number[],
    private readonly stats: StatsRecorder,
  ) {
    this.detok = opts.tokenizer?.streamDecoder(promptIds);
    this.stop = new StopMatcher(opts.stop ?? []);
    this.eos = new Set(opts.eosTokenIds ?? defaultEos);
  }

  push(token: number, logprob?: TokenLogprob): { event?: TokenEvent; finish?: FinishReason } {
    if (this.eos.has(token)) return { finish: 'eos' };
    this.count++;
    this.stats.token();
    const { text, stopped } = this.stop.push(this.detok?.push(token) ?? '');
    const event: TokenEvent = logprob
      ? { type: 'token', token, text, logprob }
      : { type: 'token', token, text };
    if (stopped) return { event, finish: 'stop' };
    if (this.count >= this.opts.maxTokens) return { event, finish: 'length' };
    return { event };
  }

  done(finishReason: FinishReason): DoneEvent {
    let text = '';
    if (finishReason !== 'stop') {
      const pushed = this.stop.push(this.detok?.flush() ?? '');
      text = pushed.text + (pushed.stopped ? '' : this.stop.flush());
      if (pushed.stopped) finishReason = 'stop';
    }
    return { type: 'done', finishReason, text, stats: this.stats.finish() };
  }
}

function checkOptions(opts: GenerateOptions, promptIds: readonly number[]): SamplingParams {
  if (!Number.isInteger(opts.maxTokens) || opts.maxTokens < 0) {
    throw new RangeError(`maxTokens must be an integer >= 0, got ${opts.maxTokens}`);
  }
  if (promptIds.length === 0) throw new RangeError('the prompt has no tokens');
  const sampling = opts.sampling ?? GREEDY;
  validateSamplingParams(sampling);
  return sampling;
}

/** Single-model generation: one forward pass per token. */
export async function* generate(
  model: CausalLm,
  promptIds: readonly number[],
  opts: GenerateOptions,
): AsyncGenerator<GenerateEvent, void, undefined> {
  const sampling = checkOptions(opts, promptIds);
  const now = opts.now ?? (() => performance.now());
  const stats = new StatsRecorder('single', promptIds.length, now);
  const out = new OutputTracker(promptIds, opts, model.config.eosTokenIds, stats);
  const rng = createRng(opts.seed);
  const state = new DecodeState(model, promptIds, opts.cache);
  const maxPositions = model.config.maxPositions ?? Infinity;
  let finish: FinishReason | undefined = opts.maxTokens === 0 ? 'length' : undefined;
  while (finish === undefined) {
    if (opts.signal?.aborted) {
      finish = 'aborted';
      break;
    }
    if (state.length >= maxPositions) {
      finish = 'length';
      break;
    }
    let row = penalizedRow(await state.nextLogits(opts.lora), state.tokens, sampling);
    const c = opts.constraint;
    if (c) row = applyMask(row, await c.mask());
    const token = sampleToken(row, sampling, rng);
    state.append(token);
    if (c && !acceptConstrained(c, token)) {
      finish = 'eos';
      break;
    }
    const r = out.push(
      token,
      opts.logprobs === undefined ? undefined : tokenLogprob(row, token, sampling, opts.logprobs),
    );
    if (r.event) yield r.event;
    finish = r.finish;
  }
  yield out.done(finish);
}

/**
 * Advances the constraint past a token drawn under its mask; false when the grammar has ended
 * (the token was an end-of-sequence id it accepted), so the token is not output.
 */
function acceptConstrained(c: TokenConstraint, token: number): boolean {
  if (!c.accept(token)) {
    throw new Error(`token ${token} was drawn under the grammar's mask but the grammar refuses it`);
  }
  return !c.isTerminated();
}

/** How long a speculative round drafts: a fixed k, or adaptive k with its confidence floor. */
interface DraftLengthPolicy {
  fixedK: number | undefined;
  adaptive: AdaptiveK | undefined;
  minConfidence: number;
}

function draftLengthPolicy(opts: SpeculativeOptions, sampling: SamplingParams): DraftLengthPolicy {
  const fixedK = opts.k === undefined || opts.k === 'auto' ? undefined : opts.k;
  if (fixedK !== undefined && !(Number.isInteger(fixedK) && fixedK >= 0)) {
    throw new RangeError(`k must be an integer >= 0 or 'auto', got ${fixedK}`);
  }
  // A seeded sampled request must give the same text every time, and its draws depend on where
  // rounds split: its draft lengths may follow acceptance, not the machine's timing.
  const seededSampling = opts.seed !== undefined && !isGreedy(sampling);
  const adaptiveOpts =
    seededSampling && opts.adaptive?.costs === undefined
      ? { ...opts.adaptive, costs: SEEDED_ROUND_COSTS }
      : opts.adaptive;
  const adaptive = fixedK === undefined ? new AdaptiveK(adaptiveOpts) : undefined;
  const minConfidence = adaptive ? (opts.minDraftConfidence ?? DEFAULT_MIN_DRAFT_CONFIDENCE) : 0;
  if (!(minConfidence >= 0 && minConfidence < 1)) {
    throw new RangeError(`minDraftConfidence must be in [0, 1), got ${minConfidence}`);
  }
  return { fixedK, adaptive, minConfidence };
}

/** A speculative request with its verifier session open and the draft's prefill under way. */
interface SpeculationStart {
  drafter: Drafter;
  session: VerifierSession;
  /** The verifier's first token, when it came with the session (and its logprob, when asked). */
  first: number | undefined;
  firstLogprob: TokenLogprob | undefined;
  /** The draft's prefill: awaited by the caller (its rejection is already handled). */
  prefill: Promise<unknown>;
  maxPositions: number;
}

/**
 * Prefills both models at once: with a remote verifier the network round trip hides the draft's
 * prefill. The verifier's first token comes with the session where supported (one round trip,
 * not two), and is returned without waiting for the draft's prefill.
 */
async function startSpeculation(
  draft: CausalLm,
  verifier: Verifier,
  promptIds: readonly number[],
  opts: SpeculativeOptions,
  ctx: { sampling: SamplingParams; now: () => number },
): Promise<SpeculationStart> {
  const { sampling, now } = ctx;
  const seed = opts.seed ?? Math.floor(Math.random() * 0x100000000);
  const drafter = new Drafter(draft, promptIds, {
    sampling,
    rng: createRng(seed),
    ...(opts.lora ? { lora: opts.lora } : {}),
    ...(opts.cache ? { cache: opts.cache } : {}),
    ...(opts.constraint ? { constraint: opts.constraint } : {}),
    now,
  });
  const maxPositions = Math.min(draft.config.maxPositions ?? Infinity, opts.verifierMaxPositions ?? Infinity);
  let first: number | undefined;
  let firstLogprob: TokenLogprob | undefined;
  // The first token from the prefill would be drawn without the grammar's mask: a constrained
  // request starts with a verify round instead (one more round trip).
  const wantFirst = opts.maxTokens > 0 && promptIds.length < maxPositions && opts.constraint === undefined;
  const prefill = drafter.prefill();
  // Awaited by the caller; this only keeps an early rejection from being reported as unhandled.
  prefill.catch(() => undefined);
  let session: VerifierSession;
  try {
    session = await verifier.start(promptIds, {
      sampling,
      seed: opts.verifierSeed ?? (seed ^ 0x5bd1e995) >>> 0,
      ...(wantFirst
        ? {
            onFirstToken: (t: number, lp?: TokenLogprob) => {
              first = t;
              firstLogprob = lp;
            },
          }
        : {}),
      ...(opts.logprobs === undefined ? {} : { logprobs: opts.logprobs }),
    });
  } catch (err) {
    await prefill.catch(() => undefined);
    throw err;
  }
  return {
    drafter,
    session,
    first: first as number | undefined,
    firstLogprob: firstLogprob as TokenLogprob | undefined,
    prefill,
    maxPositions,
  };
}

/** The rounds of a speculative request, after the first token: yields token events, returns why it ended. */
async function* speculativeRounds(
  start: SpeculationStart,
  policy: DraftLengthPolicy,
  ctx: { opts: SpeculativeOptions; out: OutputTracker; stats: StatsRecorder; now: () => number },
): AsyncGenerator<GenerateEvent, FinishReason, undefined> {
  const { drafter, session, maxPositions } = start;
  const { fixedK, adaptive, minConfidence } = policy;
  const { opts, out, stats, now } = ctx;
  for (;;) {
    if (opts.signal?.aborted) return 'aborted';
    const length = drafter.state.length;
    if (length >= maxPositions) return 'length';
    // A round returns up to k + 1 tokens and the verifier feeds up to position length + k.
    const room = Math.min(opts.maxTokens - out.count - 1, maxPositions - length - 1);
    const k = Math.max(0, Math.min(fixedK ?? (adaptive as AdaptiveK).k, room));
    const round = await speculativeRound(drafter, session, k, now, minConfidence);
    const drafted = round.drafted.length;
    stats.round(drafted, round.accepted, round.draftMs, round.roundMs);
    adaptive?.observe({
      drafted,
      accepted: round.accepted,
      draftMs: round.draftMs,
      roundMs: round.roundMs,
    });
    for (const [i, token] of round.emitted.entries()) {
      const r = out.push(token, round.logprobs?.[i]);
      if (r.event) yield r.event;
      // Whatever the round returned after the end is discarded.
      if (r.finish !== undefined) return r.finish;
    }
  }
}

/** Speculative generation: the draft proposes, the verifier decides, one verify call per round. */
export async function* generateSpeculative(
  draft: CausalLm,
  verifier: Verifier,
  promptIds: readonly number[],
  opts: SpeculativeOptions,
): AsyncGenerator<GenerateEvent, void, undefined> {
  const sampling = checkOptions(opts, promptIds);
  const now = opts.now ?? (() => performance.now());
  const stats = new StatsRecorder('speculative', promptIds.length, now);
  const out = new OutputTracker(promptIds, opts, draft.config.eosTokenIds, stats);
  const policy = draftLengthPolicy(opts, sampling);
  const start = await startSpeculation(draft, verifier, promptIds, opts, { sampling, now });
  const { drafter, session, first } = start;
  let finish: FinishReason | undefined = opts.maxTokens === 0 ? 'length' : undefined;
  try {
    if (first !== undefined && finish === undefined) {
      if (opts.signal?.aborted) finish = 'aborted';
      else {
        const r = out.push(first, start.firstLogprob);
        if (r.event) yield r.event;
        finish = r.finish;
      }
    }
    // Awaited even when generation already ended, so no draft pass outlives the call.
    await start.prefill;
    // The session holds prompt + first, so the draft takes it too, as its next (unfed) token.
    if (first !== undefined) drafter.state.append(first);
    if (finish === undefined) finish = yield* speculativeRounds(start, policy, { opts, out, stats, now });
  } finally {
    await session.close();
  }
  yield out.done(finish);
}

/** Runs a generator to completion: all token ids, the full text and the final event. */
export async function collect(
  events: AsyncIterable<GenerateEvent>,
): Promise<{ tokens: number[]; text: string; done: DoneEvent }> {
  const tokens: number[] = [];
  let text = '';
  for await (const e of events) {
    text += e.text;
    if (e.type === 'token') tokens.push(e.token);
    else return { tokens, text, done: e };
  }
  throw new Error('generation ended without a done event');
}
