/**
 * The draft side of speculative decoding and one draft→verify round (reference specdecode.md §1).
 *
 * `Drafter` runs the small model: it proposes k tokens autoregressively (greedy, or sampled from
 * its adjusted distribution q, which it keeps for the verifier's rejection test), then, once the
 * verifier has answered, rolls its state back to the accepted prefix and appends the verifier's
 * token. `speculativeRound` ties one proposal to one `Verifier` call and times both, which is what
 * the generate loop and adaptive k need.
 *
 * A proposal may end before k tokens: the draft keeps the running product of the probabilities it
 * gave its own tokens, its estimate that the whole proposal will be accepted, and stops once that
 * falls below `minConfidence` (dynamic draft length, as EAGLE-2 and SpecDec++ do). On the fixture
 * pair the draft's top probability predicts agreement well (below 0.3 it agrees half the time,
 * above 0.95 always), so the positions the verifier would score only to reject are mostly not
 * drafted. Where to stop depends only on the draft's own draws, so sampling stays lossless.
 */
import { OperationalError } from '../foundation/errors.js';
import { DecodeState } from './decode-state.js';
import { applyMask } from './grammar/mask.js';
import type { TokenConstraint } from './grammar/types.js';
import type { KvCache } from './kv-cache.js';
import type { LoraFeeds } from './lora-slots.js';
import type { CausalLm } from './model-session.js';
import type { Rng } from './rng.js';
import {
  argmax,
  isGreedy,
  penalizedRow,
  sampleFrom,
  samplingDistribution,
  softmaxAt,
  type SamplingParams,
} from './sampling.js';
import type { VerifierSession, VerifyResult } from './verifier.js';

export interface DraftProposal {
  tokens: number[];
  /** The distribution each token was drawn from (sampling only). */
  dists: Float32Array[] | undefined;
  /**
   * Constrained drafting: the grammar's mask at each of the k + 1 positions the verifier scores
   * (before each drafted token, then after the last), along the drafted path.
   */
  masks: Uint32Array[] | undefined;
  draftMs: number;
}

export interface DrafterOptions {
  sampling: SamplingParams;
  rng: Rng;
  /** LoRA feeds of the adapter chosen for this request (base model when absent). */
  lora?: LoraFeeds;
  /** A cache already covering a prefix of the prompt (computed with the same adapter). */
  cache?: KvCache;
  now?: () => number;
  /** Grammar constraint: drafts under its mask and advances it as it drafts. */
  constraint?: TokenConstraint;
}

export class Drafter {
  readonly state: DecodeState;
  private readonly now: () => number;

  constructor(
    readonly model: CausalLm,
    promptIds: readonly number[],
    private readonly opts: DrafterOptions,
  ) {
    this.state = new DecodeState(model, promptIds, opts.cache);
    this.now = opts.now ?? (() => performance.now());
  }

  /** Runs the prompt through the draft model (so the first proposal only decodes). */
  async prefill(): Promise<void> {
    await this.state.nextLogits(this.opts.lora);
  }

  /**
   * Drafts up to k tokens; fewer when the draft's confidence that all of them will be accepted
   * drops below `minConfidence` (0 = always k).
   */
  async propose(k: number, minConfidence = 0): Promise<DraftProposal> {
    const t0 = this.now();
    const greedy = isGreedy(this.opts.sampling);
    const c = this.opts.constraint;
    const tokens: number[] = [];
    const dists: Float32Array[] = [];
    const masks: Uint32Array[] = [];
    let confidence = 1;
    for (let i = 0; i < k; i++) {
      // Penalised over the draft's own history (prompt, output, earlier drafts of this round),
      // the same history the verifier penalises this position with.
      const raw = await this.state.nextLogits(this.opts.lora);
      let row = penalizedRow(raw, this.state.tokens, this.opts.sampling);
      if (c) {
        const mask = await c.mask();
        masks.push(mask);
        row = applyMask(row, mask);
      }
      let token: number;
      if (greedy) {
        token = argmax(row);
        if (minConfidence > 0) confidence *= softmaxAt(row, token);
      } else {
        const q = samplingDistribution(row, this.opts.sampling);
        token = sampleFrom(q, this.opts.rng);
        dists.push(q);
        confidence *= q[token] as number;
      }
      tokens.push(token);
      this.state.append(token);
      if (c && !c.accept(token))
        throw new Error(`drafted token ${token} was refused by its own grammar mask`);
      // The grammar ended (end-of-sequence): nothing after it can be output.
      if (c?.isTerminated()) break;
      if (confidence < minConfidence) break;
    }
    if (c) {
      // The bonus position's mask; after the grammar ended any mask will do (the bonus is discarded).
      masks.push(c.isTerminated() ? (masks.at(-1) as Uint32Array) : await c.mask());
    }
    return {
      tokens,
      dists: greedy ? undefined : dists,
      masks: c ? masks : undefined,
      draftMs: this.now() - t0,
    };
  }

  /** Applies the verifier's answer: keep `accepted` of the tokens proposed after `base`, then `nextToken`. */
  commit(base: number, accepted: number, nextToken: number): void {
    const c = this.opts.constraint;
    if (c) {
      c.rollBack(this.state.length - base - accepted);
      // After an accepted end-of-sequence the verifier's token is discarded by the caller.
      if (!c.isTerminated() && !c.accept(nextToken)) {
        throw new OperationalError(`the verifier's token ${nextToken} violates the grammar`, {
          code: 'E_VERIFIER_PROTOCOL',
          suggestion:
            'The verifier did not apply the token masks; use a verifier that lists token_masks in /v1/identity.',
        });
      }
    }
    this.state.truncate(base + accepted);
    this.state.append(nextToken);
  }
}

export interface RoundResult extends VerifyResult {
  drafted: number[];
  /** Tokens the round adds: the accepted drafts followed by the verifier's token. */
  emitted: number[];
  draftMs: number;
  /** The verify call as the client saw it (network included). */
  roundMs: number;
}

/** Drafts k tokens, verifies them in one verifier call and brings the draft in line with the answer. */
export async function speculativeRound(
  drafter: Drafter,
  session: VerifierSession,
  k: number,
  now: () => number = () => performance.now(),
  minConfidence = 0,
): Promise<RoundResult> {
  const base = drafter.state.length;
  const proposal = await drafter.propose(k, minConfidence);
  const t0 = now();
  const result = await session.verify({
    draft: proposal.tokens,
    ...(proposal.dists === undefined ? {} : { draftDists: proposal.dists }),
    ...(proposal.masks === undefined ? {} : { masks: proposal.masks }),
  });
  const roundMs = now() - t0;
  if (!(
    Number.isInteger(result.accepted) &&
    result.accepted >= 0 &&
    result.accepted <= proposal.tokens.length
  )) {
    throw new OperationalError(
      `the verifier accepted ${result.accepted} of ${proposal.tokens.length} drafted tokens`,
      {
        code: 'E_VERIFIER_PROTOCOL',
        suggestion: 'The verifier answered out of protocol; check that it runs a compatible edgectl version.',
      },
    );
  }
  drafter.commit(base, result.accepted, result.nextToken);
  return {
    ...result,
    drafted: proposal.tokens,
    emitted: [...proposal.tokens.slice(0, result.accepted), result.nextToken],
    draftMs: proposal.draftMs,
    roundMs,
  };
}
