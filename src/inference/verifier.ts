/**
 * The verifier side of speculative decoding, as an interface (docs/running-sites.md).
 *
 * A verifier session holds a prompt's KV cache between rounds; each `verify` scores the drafted
 * tokens in one forward pass and returns how many were accepted plus the verifier's next token.
 * `InProcessVerifier` implements it over a local `LmSession`; the HTTP client of the verifier
 * service implements the same interface, so the generate loop cannot tell them apart. Everything
 * crossing this boundary is plain data (token ids, numbers, arrays) so it maps directly to JSON.
 */
import { UserError } from '../foundation/errors.js';
import type { TokenLogprob } from './logprobs.js';
import type { SamplingParams } from './sampling.js';

/**
 * The draft's sampling distribution q for one drafted token: dense (one float per vocabulary id),
 * or sparse (only the ids with non-zero probability, e.g. the top-p nucleus) for the wire.
 */
export type DraftDistribution = Float32Array | SparseDistribution;

export interface SparseDistribution {
  ids: number[];
  probs: number[];
}

export interface VerifierStartOptions {
  /** How the verifier draws tokens; greedy when absent. Fixed for the session. */
  sampling?: SamplingParams;
  /** Seed of the verifier's accept/reject and residual draws. */
  seed?: number;
  /**
   * Asks the verifier to also produce its first token from the prefill pass (greedy, or sampled
   * with the session's seed), so the first token costs one round trip instead of two. A verifier
   * that does calls this with the token before `start` resolves, and the session then holds
   * prompt + token (the first draft follows it); one that cannot never calls it and the session
   * holds the prompt only. A callback rather than a flag plus a session field, so that a wrapper
   * passing the options through stays consistent whatever session object it returns.
   */
  onFirstToken?: (token: number, logprob?: TokenLogprob) => void;
  /**
   * Return each emitted token's logprob in the verifier's distribution with this many top
   * alternatives (0..20): on `VerifyResult.logprobs` and with the first token. Absent: none.
   */
  logprobs?: number;
}

export interface VerifyRequest {
  /** Drafted tokens following the session's tokens; may be empty (a plain decoding step). */
  draft: readonly number[];
  /**
   * Sampling sessions only: the draft distribution each drafted token was drawn from (one per
   * drafted token). Needed for lossless rejection sampling; ignored by greedy sessions.
   */
  draftDists?: readonly DraftDistribution[];
  /**
   * Grammar-constrained sessions: the token mask at each of the draft.length + 1 scored positions
   * (bit i set = token i allowed). The verifier sets every other logit to -Infinity before
   * acceptance, so greedy output equals constrained verifier-only decoding and sampling is
   * lossless with respect to the masked distribution.
   */
  masks?: readonly Uint32Array[];
}

export interface VerifyResult {
  /** Drafted tokens accepted (a prefix of the draft). */
  accepted: number;
  /** The verifier's token after the accepted prefix (correction or bonus). */
  nextToken: number;
  /** Tokens the session now holds (prompt + everything accepted so far + nextToken). */
  length: number;
  /** Milliseconds the verifier spent on the round (forward pass and acceptance). */
  verifierMs: number;
  /** Sessions started with `logprobs`: one per emitted token (the accepted drafts, then nextToken). */
  logprobs?: TokenLogprob[];
}

export interface VerifierSession {
  readonly id: string;
  verify(request: VerifyRequest): Promise<VerifyResult>;
  /** Frees the session's cache. Idempotent. */
  close(): Promise<void>;
}

export interface Verifier {
  readonly vocabSize: number;
  /** Prefills `promptIds` and keeps their KV cache for the rounds that follow. */
  start(promptIds: readonly number[], opts?: VerifierStartOptions): Promise<VerifierSession>;
}

/** A sparse distribution of the non-zero entries of `dense` (what to send over the wire). */
export function toSparse(dense: ArrayLike<number>): SparseDistribution {
  const ids: number[] = [];
  const probs: number[] = [];
  for (let i = 0; i < dense.length; i++) {
    const p = dense[i] as number;
    if (p > 0) {
      ids.push(i);
      probs.push(p);
    }
  }
  return { ids, probs };
}

/** Dense form of a draft distribution; invalid input is a UserError (HTTP 400 at the service). */
export function toDense(
  dist: DraftDistribution,
  vocabSize: number,
  where = 'draft distribution',
): Float32Array {
  if (dist instanceof Float32Array) {
    if (dist.length !== vocabSize) {
      throw new UserError(`${where}: has ${dist.length} entries, the vocabulary has ${vocabSize}`, {
        code: 'E_VERIFY_INPUT',
      });
    }
    return dist;
  }
  const { ids, probs } = dist;
  if (!Array.isArray(ids) || !Array.isArray(probs) || ids.length !== probs.length) {
    throw new UserError(`${where}: ids and probs must be arrays of equal length`, { code: 'E_VERIFY_INPUT' });
  }
  const out = new Float32Array(vocabSize);
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i] as number;
    const p = probs[i] as number;
    if (!Number.isInteger(id) || id < 0 || id >= vocabSize || !(p >= 0) || !Number.isFinite(p)) {
      throw new UserError(`${where}: entry ${i} (id ${id}, p ${p}) is invalid`, {
        code: 'E_VERIFY_INPUT',
        suggestion: `ids must be integers in 0..${vocabSize - 1} and probabilities finite and >= 0.`,
      });
    }
    out[id] = p;
  }
  return out;
}
