/**
 * `InProcessVerifier`: the `Verifier` interface over a local model (`LmSession`, or a
 * `ForwardBatcher` over one to batch concurrent sessions) — the engine behind the
 * verifier HTTP service and the in-process path of tests and benchmarks.
 *
 * A session prefills the prompt at start. Each round feeds the session's unfed tokens (the
 * previous round's correction or bonus token) followed by the draft in ONE forward pass, reads
 * the k + 1 distributions that pass yields, applies greedy acceptance or lossless rejection
 * sampling (acceptance.ts), and rolls the cache back to the accepted length.
 */
import { randomUUID } from 'node:crypto';
import { ConflictError, UserError } from '../foundation/errors.js';
import { acceptGreedy, acceptRejectionSampling, type AcceptanceResult } from './acceptance.js';
import { DecodeState } from './decode-state.js';
import { applyMask } from './grammar/mask.js';
import type { KvCache } from './kv-cache.js';
import type { CausalLm } from './model-session.js';
import { tokenLogprob, type TokenLogprob } from './logprobs.js';
import { createRng, type Rng } from './rng.js';
import {
  argmax,
  GREEDY,
  hasRepetitionPenalty,
  isGreedy,
  penalizedRow,
  RepetitionPenalty,
  sampleFrom,
  samplingDistribution,
  validateSamplingParams,
  type SamplingParams,
} from './sampling.js';
import {
  toDense,
  type Verifier,
  type VerifierSession,
  type VerifierStartOptions,
  type VerifyRequest,
  type VerifyResult,
} from './verifier.js';

/** Upper bound on drafted tokens per round accepted from a client (adaptive k stays within 1..8). */
export const MAX_DRAFT_TOKENS = 64;

export class InProcessVerifier implements Verifier {
  constructor(
    readonly model: CausalLm,
    private readonly now: () => number = () => performance.now(),
  ) {}

  get vocabSize(): number {
    return this.model.vocabSize;
  }

  async start(
    promptIds: readonly number[],
    opts: VerifierStartOptions = {},
  ): Promise<InProcessVerifierSession> {
    const session = this.resume(promptIds, undefined, opts);
    await session.prefill();
    if (opts.onFirstToken) {
      const token = await session.takeFirstToken();
      opts.onFirstToken(token, session.firstLogprob);
    }
    return session;
  }

  /**
   * A session over `tokens` whose first `cache.length` positions are already in `cache` (a shared
   * prefix cache, or a snapshot taken earlier); KvCache is immutable, so sharing it is safe.
   * Nothing runs until the first verify, so `resume(context, undefined).verify(draft)` is a
   * stateless verify in ONE forward pass over context + draft.
   */
  resume(
    tokens: readonly number[],
    cache: KvCache | undefined,
    opts: VerifierStartOptions = {},
  ): InProcessVerifierSession {
    if (tokens.length === 0) {
      throw new UserError('the prompt has no tokens', {
        code: 'E_VERIFY_INPUT',
        suggestion: 'Send at least one token (e.g. the BOS token).',
      });
    }
    const sampling = opts.sampling ?? GREEDY;
    validateSamplingParams(sampling);
    const state = new DecodeState(this.model, tokens, cache);
    const session = new InProcessVerifierSession(state, sampling, createRng(opts.seed), this.now);
    if (opts.logprobs !== undefined) session.logprobs = opts.logprobs;
    return session;
  }
}

export class InProcessVerifierSession implements VerifierSession {
  readonly id = randomUUID();
  /** Set by `takeFirstToken`. */
  firstToken: number | undefined;
  /** Set by `takeFirstToken` when the session reports logprobs. */
  firstLogprob: TokenLogprob | undefined;
  /** Top alternatives per emitted token's logprob (logprobs.ts); undefined: no logprobs. */
  logprobs: number | undefined;
  private busy = false;
  private closed = false;

  constructor(
    private readonly state: DecodeState,
    readonly sampling: SamplingParams,
    private readonly rng: Rng,
    private readonly now: () => number,
  ) {}

  /** Runs the tokens not yet in the cache, so the first verify only scores the draft. */
  async prefill(): Promise<void> {
    await this.state.nextLogits();
  }

  /**
   * Draws the verifier's own next token from the last logits (greedy argmax, or a sample from the
   * session's distribution with its RNG) and appends it, unfed, as a verify round appends its next
   * token: exactly what the first round would have returned after an empty draft, without a pass.
   */
  async takeFirstToken(): Promise<number> {
    if (this.firstToken !== undefined) return this.firstToken;
    const row = penalizedRow(await this.state.nextLogits(), this.state.tokens, this.sampling);
    const token = isGreedy(this.sampling)
      ? argmax(row)
      : sampleFrom(samplingDistribution(row, this.sampling), this.rng);
    this.state.append(token);
    this.firstToken = token;
    if (this.logprobs !== undefined)
      this.firstLogprob = tokenLogprob(row, token, this.sampling, this.logprobs);
    return token;
  }

  /** Tokens the session's KV cache covers. */
  get cachedLength(): number {
    return this.state.cacheLength;
  }

  /** The session's KV cache (immutable; share it to resume from this point later). */
  get cache(): KvCache {
    return this.state.cache;
  }

  /** Tokens held: the prompt plus every accepted and next token so far. */
  get length(): number {
    return this.state.length;
  }

  get tokens(): readonly number[] {
    return this.state.tokens;
  }

  async verify(request: VerifyRequest): Promise<VerifyResult> {
    if (this.closed)
      throw new UserError(`verifier session ${this.id} is closed`, { code: 'E_SESSION_CLOSED' });
    if (this.busy) {
      throw new ConflictError(`verifier session ${this.id} is already verifying`, {
        suggestion: 'Send one verify request per session at a time.',
      });
    }
    this.busy = true;
    try {
      return await this.round(request);
    } finally {
      this.busy = false;
    }
  }

  private async round({ draft, draftDists, masks }: VerifyRequest): Promise<VerifyResult> {
    const t0 = this.now();
    const greedy = isGreedy(this.sampling);
    // Validate everything before the forward pass, so a bad request leaves the session untouched.
    const q = checkDraft(draft, draftDists, this.state.model.vocabSize, greedy);
    if (masks !== undefined && masks.length !== draft.length + 1) {
      throw new UserError(
        `token_masks: ${masks.length} masks for ${draft.length} drafted tokens; send ${draft.length + 1}`,
        {
          code: 'E_VERIFY_INPUT',
          suggestion: 'Send the mask before each drafted token and the one after the last.',
        },
      );
    }
    const base = this.state.length;
    const penalty = hasRepetitionPenalty(this.sampling)
      ? new RepetitionPenalty(this.sampling.repetitionPenalty as number, this.state.tokens)
      : undefined;
    // The verifier's logits rows after base-1, base, ..., base+k-1: p_1 .. p_{k+1}.
    let rows: Float32Array[] = [];
    if (this.state.unfed.length === 0) rows.push(await this.state.nextLogits());
    const { logits, unfedCount } = await this.state.feed(draft);
    if (logits !== undefined) {
      for (let r = Math.max(0, unfedCount - 1); r < logits.rows; r++) rows.push(logits.row(r));
    }
    // Position i's grammar mask: tokens the grammar forbids there get no probability at all.
    if (masks !== undefined) rows = rows.map((row, i) => applyMask(row, masks[i] as Uint32Array));
    // Row i is penalised over the session's tokens plus draft[0..i): exactly the history
    // verifier-only decoding would have had there, had it produced those drafts itself.
    if (penalty) {
      rows = rows.map((row, i) => {
        const out = penalty.apply(row);
        if (i < draft.length) penalty.add(draft[i] as number);
        return out;
      });
    }
    let result: AcceptanceResult;
    if (greedy) {
      result = acceptGreedy(draft, rows);
    } else {
      const p = rows.map((row) => samplingDistribution(row, this.sampling));
      result = acceptRejectionSampling(draft, q, p, this.rng);
    }
    this.state.truncate(base + result.accepted);
    this.state.append(result.nextToken);
    const n = this.logprobs;
    return {
      accepted: result.accepted,
      nextToken: result.nextToken,
      length: this.state.length,
      verifierMs: this.now() - t0,
      // Row i produced draft[i] (accepted) and row `accepted` the next token: the verifier's p.
      ...(n === undefined
        ? {}
        : {
            logprobs: [...draft.slice(0, result.accepted), result.nextToken].map((t, i) =>
              tokenLogprob(rows[i] as Float32Array, t, this.sampling, n),
            ),
          }),
    };
  }

  async close(): Promise<void> {
    this.dispose();
  }

  /** Synchronous release, for session tables that expire sessions on a timer. */
  dispose(): void {
    this.closed = true;
    this.state.clear();
  }
}

/** The dense draft distributions of a verify request, after checking every field of it. */
function checkDraft(
  draft: readonly number[],
  draftDists: VerifyRequest['draftDists'],
  vocab: number,
  greedy: boolean,
): Float32Array[] {
  if (draft.length > MAX_DRAFT_TOKENS) {
    throw new UserError(`draft has ${draft.length} tokens; at most ${MAX_DRAFT_TOKENS} per round`, {
      code: 'E_VERIFY_INPUT',
    });
  }
  draft.forEach((id, i) => {
    if (!Number.isInteger(id) || id < 0 || id >= vocab) {
      throw new UserError(`draft[${i}]: token id ${id} is outside the vocabulary (0..${vocab - 1})`, {
        code: 'E_VERIFY_INPUT',
        suggestion: 'Draft and verifier must share one tokenizer.',
      });
    }
  });
  if (!greedy && draft.length > 0 && draftDists?.length !== draft.length) {
    throw new UserError(
      `a sampling session needs one draft distribution per drafted token (${draftDists?.length ?? 0} for ${draft.length})`,
      {
        code: 'E_VERIFY_INPUT',
        suggestion: 'Send draftDists, the distributions the draft tokens were sampled from.',
      },
    );
  }
  const q = greedy ? [] : (draftDists ?? []).map((d, i) => toDense(d, vocab, `draftDists[${i}]`));
  q.forEach((dist, i) => {
    if (!((dist[draft[i] as number] as number) > 0)) {
      throw new UserError(`draftDists[${i}] gives probability 0 to the drafted token ${draft[i]}`, {
        code: 'E_VERIFY_INPUT',
        suggestion: 'Send the distribution each draft token was actually sampled from.',
      });
    }
  });
  return q;
}
