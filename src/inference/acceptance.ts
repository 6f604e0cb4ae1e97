/**
 * The acceptance rules of speculative decoding, as pure functions (reference specdecode.md §0, §1.1).
 *
 * Given k drafted tokens and the verifier's distributions at the k+1 positions they open, decide
 * how many drafted tokens to keep and which token comes next. Greedy: keep the longest prefix that
 * equals the verifier's argmax, then emit the verifier's argmax (a correction on mismatch, a bonus
 * when all match) — this makes the output token-identical to verifier-only greedy decoding.
 * Sampling: lossless rejection sampling (Leviathan et al. Alg. 1, Chen et al. Alg. 2): keep draft
 * token x with probability min(1, p(x)/q(x)); at the first rejection draw from norm(max(0, p − q));
 * when all k are kept, draw a bonus token from p_{k+1}. The output is then distributed exactly as
 * verifier-only sampling.
 */
import type { Rng } from './rng.js';
import { argmax, sampleFrom } from './sampling.js';

export interface AcceptanceResult {
  /** How many drafted tokens were kept (a prefix of the draft). */
  accepted: number;
  /** The verifier's token after the kept prefix: a correction on rejection, a bonus otherwise. */
  nextToken: number;
}

/**
 * Greedy acceptance. `verifierLogits[i]` is the verifier's logits row after the context plus
 * draft[0..i); there must be draft.length + 1 rows.
 */
export function acceptGreedy(
  draft: readonly number[],
  verifierLogits: readonly ArrayLike<number>[],
): AcceptanceResult {
  requireRows(draft.length, verifierLogits.length);
  for (let i = 0; i < draft.length; i++) {
    const best = argmax(verifierLogits[i] as ArrayLike<number>);
    if (best !== draft[i]) return { accepted: i, nextToken: best };
  }
  return { accepted: draft.length, nextToken: argmax(verifierLogits[draft.length] as ArrayLike<number>) };
}

/**
 * The residual distribution max(0, p − q), unnormalized (sampleFrom normalizes). Falls back to p
 * when the residual has no mass, which only float rounding can cause (a rejection needs p(x) < q(x),
 * so p ≠ q and the residual mass Σ max(0, p − q) = TV(p, q) > 0).
 */
export function residualDistribution(p: ArrayLike<number>, q: ArrayLike<number>): Float64Array {
  const out = new Float64Array(p.length);
  let mass = 0;
  for (let i = 0; i < p.length; i++) {
    const d = (p[i] as number) - (q[i] as number);
    if (d > 0) {
      out[i] = d;
      mass += d;
    }
  }
  if (mass > 0) return out;
  for (let i = 0; i < p.length; i++) out[i] = p[i] as number;
  return out;
}

/**
 * Lossless rejection sampling. `q[i]` is the draft's sampling distribution that draft[i] was drawn
 * from (k entries); `p[i]` is the verifier's sampling distribution at the same position (k + 1
 * entries, the last one for the bonus token). Both are the adjusted distributions of
 * `samplingDistribution` (temperature, top-k, top-p already applied).
 */
export function acceptRejectionSampling(
  draft: readonly number[],
  q: readonly ArrayLike<number>[],
  p: readonly ArrayLike<number>[],
  rng: Rng,
): AcceptanceResult {
  requireRows(draft.length, p.length);
  if (q.length !== draft.length) {
    throw new RangeError(
      `rejection sampling needs one draft distribution per drafted token (${q.length} for ${draft.length})`,
    );
  }
  for (let i = 0; i < draft.length; i++) {
    const x = draft[i] as number;
    const pi = p[i] as ArrayLike<number>;
    const qi = q[i] as ArrayLike<number>;
    const px = pi[x] ?? 0;
    const qx = qi[x] ?? 0;
    if (!(qx > 0)) {
      throw new RangeError(
        `draft token ${x} at position ${i} has probability 0 under its own draft distribution`,
      );
    }
    // Accept with probability min(1, p/q), written without the division.
    if (rng.next() * qx < px) continue;
    return { accepted: i, nextToken: sampleFrom(residualDistribution(pi, qi), rng) };
  }
  return { accepted: draft.length, nextToken: sampleFrom(p[draft.length] as ArrayLike<number>, rng) };
}

function requireRows(k: number, rows: number): void {
  if (rows !== k + 1)
    throw new RangeError(`verification needs ${k + 1} verifier rows for ${k} drafted tokens, got ${rows}`);
}
