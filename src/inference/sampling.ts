/**
 * Token sampling: greedy, temperature, top-k and top-p (nucleus) over one row of logits.
 *
 * Following Leviathan et al. §2.2 (reference specdecode.md §1.1), every mode is "standard sampling
 * from an adjusted distribution": `samplingDistribution` turns logits into that adjusted
 * distribution (greedy = one-hot at the argmax), and speculative decoding compares the draft's and
 * the verifier's adjusted distributions. Everything here is a pure function of its inputs plus an
 * explicit `Rng`, so results are reproducible from a seed.
 */
import { UserError } from '../foundation/errors.js';
import type { Rng } from './rng.js';

export interface SamplingParams {
  /** 0 means greedy (always the most likely token); otherwise logits are divided by it. */
  temperature: number;
  /** Nucleus sampling: keep the smallest set of most likely tokens whose mass reaches topP. 1 = off. */
  topP?: number;
  /** Keep only the topK most likely tokens. 0 or absent = off; 1 = greedy. */
  topK?: number;
  /**
   * Hugging Face's repetition penalty over every token id already in prompt + output, applied to
   * the logits before anything above (see `RepetitionPenalty`). 1 or absent = off.
   */
  repetitionPenalty?: number;
}

/** The accepted range of `repetition_penalty`; outside it the float32 logits overflow or vanish. */
export const REPETITION_PENALTY_RANGE = Object.freeze({ min: 0.01, max: 100 });

export const GREEDY: SamplingParams = Object.freeze({ temperature: 0 });

export function isGreedy(params: SamplingParams): boolean {
  return params.temperature <= 0 || params.topK === 1;
}

/** Throws a UserError (exit 2) naming the bad field; used at API boundaries before any work. */
export function validateSamplingParams(params: SamplingParams, where = 'sampling'): void {
  const bad = (field: string, why: string): never => {
    throw new UserError(`${where}.${field}: ${why}`, {
      code: 'E_SAMPLING',
      suggestion:
        'Use temperature >= 0 (0 = greedy), 0 < top_p <= 1, an integer top_k >= 0 and ' +
        `repetition_penalty in [${REPETITION_PENALTY_RANGE.min}, ${REPETITION_PENALTY_RANGE.max}] (1 = off).`,
    });
  };
  if (!Number.isFinite(params.temperature) || params.temperature < 0)
    bad('temperature', `must be a finite number >= 0, got ${params.temperature}`);
  if (params.topP !== undefined && !(params.topP > 0 && params.topP <= 1))
    bad('top_p', `must be in (0, 1], got ${params.topP}`);
  if (params.topK !== undefined && !(Number.isInteger(params.topK) && params.topK >= 0))
    bad('top_k', `must be an integer >= 0, got ${params.topK}`);
  const rp = params.repetitionPenalty;
  if (rp !== undefined && !(rp >= REPETITION_PENALTY_RANGE.min && rp <= REPETITION_PENALTY_RANGE.max))
    bad(
      'repetition_penalty',
      `must be a number in [${REPETITION_PENALTY_RANGE.min}, ${REPETITION_PENALTY_RANGE.max}], got ${rp}`,
    );
}

/** Whether `params` asks for a repetition penalty (anything but absent or exactly 1). */
export function hasRepetitionPenalty(params: SamplingParams): boolean {
  return params.repetitionPenalty !== undefined && params.repetitionPenalty !== 1;
}

/**
 * Hugging Face's `RepetitionPenaltyLogitsProcessor` (CTRL, Keskar et al. 2019): every token id
 * that already occurs in the sequence (prompt and output) has its logit divided by the penalty
 * when positive and multiplied by it otherwise, once however often it occurred. The draft, the
 * verifier and single-model decoding all use this one class over the same token history, which
 * is what keeps greedy speculative output equal to verifier-only output under a penalty.
 */
export class RepetitionPenalty {
  private readonly seen = new Set<number>();

  constructor(
    readonly penalty: number,
    history: Iterable<number> = [],
  ) {
    for (const id of history) this.seen.add(id);
  }

  /** Adds a token to the history (a drafted or emitted token). */
  add(id: number): void {
    this.seen.add(id);
  }

  /** The penalised copy of `row` (the row itself, untouched, when the penalty is 1). */
  apply(row: Float32Array): Float32Array {
    if (this.penalty === 1 || this.seen.size === 0) return row;
    const out = new Float32Array(row);
    for (const id of this.seen) {
      if (id < 0 || id >= out.length) continue;
      const v = out[id] as number;
      out[id] = v > 0 ? v / this.penalty : v * this.penalty;
    }
    return out;
  }
}

/** `row` penalised over `history` under `params` (the row itself when no penalty is asked). */
export function penalizedRow(
  row: Float32Array,
  history: Iterable<number>,
  params: SamplingParams,
): Float32Array {
  if (!hasRepetitionPenalty(params)) return row;
  return new RepetitionPenalty(params.repetitionPenalty as number, history).apply(row);
}

/** Index of the largest value; ties go to the lowest index so every caller agrees. */
export function argmax(row: ArrayLike<number>): number {
  let best = 0;
  let bestValue = -Infinity;
  for (let i = 0; i < row.length; i++) {
    const v = row[i] as number;
    if (v > bestValue) {
      bestValue = v;
      best = i;
    }
  }
  return best;
}

/** softmax(row)[index] alone, without materializing the distribution. */
export function softmaxAt(row: ArrayLike<number>, index: number): number {
  let max = -Infinity;
  for (let i = 0; i < row.length; i++) if ((row[i] as number) > max) max = row[i] as number;
  let sum = 0;
  for (let i = 0; i < row.length; i++) sum += Math.exp((row[i] as number) - max);
  return Math.exp((row[index] as number) - max) / sum;
}

/** softmax(row / temperature), computed stably (max subtracted) in float64 then stored as float32. */
export function softmax(row: ArrayLike<number>, temperature = 1): Float32Array {
  const n = row.length;
  const out = new Float32Array(n);
  let max = -Infinity;
  for (let i = 0; i < n; i++) if ((row[i] as number) > max) max = row[i] as number;
  let sum = 0;
  const inv = 1 / temperature;
  for (let i = 0; i < n; i++) {
    const e = Math.exp(((row[i] as number) - max) * inv);
    out[i] = e;
    sum += e;
  }
  const norm = 1 / sum;
  for (let i = 0; i < n; i++) out[i] = (out[i] as number) * norm;
  return out;
}

export function oneHot(size: number, index: number): Float32Array {
  const out = new Float32Array(size);
  out[index] = 1;
  return out;
}

/**
 * Indices of the most likely tokens, most likely first (ties by lower index), covering at least
 * `minCount` tokens and at least `minMass` probability. Sorting the whole vocabulary (49k–152k
 * entries) for every token would cost milliseconds, so we sort only the tokens above a threshold
 * and lower the threshold until the request is covered; the result is always an exact prefix of
 * the full sort because every token above the threshold is included.
 */
export function topTokens(probs: Float32Array, minCount: number, minMass: number): Uint32Array {
  const n = probs.length;
  let max = 0;
  for (let i = 0; i < n; i++) if ((probs[i] as number) > max) max = probs[i] as number;
  for (let threshold = max * 1e-2; ; threshold *= 1e-3) {
    const exhaustive = threshold < 1e-30;
    const picked: number[] = [];
    let mass = 0;
    for (let i = 0; i < n; i++) {
      const p = probs[i] as number;
      if (exhaustive || p >= threshold) {
        picked.push(i);
        mass += p;
      }
    }
    if (exhaustive || (picked.length >= minCount && mass >= minMass)) {
      const idx = Uint32Array.from(picked);
      idx.sort((a, b) => (probs[b] as number) - (probs[a] as number) || a - b);
      return idx;
    }
  }
}

/**
 * The distribution a token is drawn from under `params`: one-hot at the argmax for greedy,
 * otherwise softmax(logits / T) restricted to top-k and then to the top-p nucleus, renormalized.
 */
export function samplingDistribution(logits: ArrayLike<number>, params: SamplingParams): Float32Array {
  if (isGreedy(params)) return oneHot(logits.length, argmax(logits));
  const probs = softmax(logits, params.temperature);
  const topK = params.topK !== undefined && params.topK > 0 ? params.topK : 0;
  const topP = params.topP ?? 1;
  if (topK === 0 && topP >= 1) return probs;
  // Restrict top-k first, then the nucleus within it (the order used by Hugging Face and vLLM).
  const sorted = topTokens(probs, topK > 0 ? topK : 1, topK > 0 ? 0 : topP);
  const limit = topK > 0 ? Math.min(topK, sorted.length) : sorted.length;
  let kMass = 1;
  if (topK > 0) {
    kMass = 0;
    for (let r = 0; r < limit; r++) kMass += probs[sorted[r] as number] as number;
  }
  let keep = 0;
  let mass = 0;
  while (keep < limit) {
    mass += probs[sorted[keep] as number] as number;
    keep++;
    // 1e-6 slack: float32 probabilities that should sum to exactly topP must not pull in one more token.
    if (mass >= topP * kMass - 1e-6) break;
  }
  const out = new Float32Array(probs.length);
  for (let r = 0; r < keep; r++) {
    const i = sorted[r] as number;
    out[i] = (probs[i] as number) / mass;
  }
  return out;
}

/** Draws an index from a (not necessarily normalized) non-negative distribution. */
export function sampleFrom(probs: ArrayLike<number>, rng: Rng): number {
  let total = 0;
  for (let i = 0; i < probs.length; i++) total += probs[i] as number;
  if (!(total > 0)) throw new RangeError('sampleFrom: distribution has no mass');
  const u = rng.next() * total;
  let acc = 0;
  let last = -1;
  for (let i = 0; i < probs.length; i++) {
    const p = probs[i] as number;
    if (p <= 0) continue;
    acc += p;
    last = i;
    if (u < acc) return i;
  }
  return last; // only reached through float rounding of the running sum
}

/** Draws the next token from a row of logits under `params`. */
export function sampleToken(logits: ArrayLike<number>, params: SamplingParams, rng: Rng): number {
  if (isGreedy(params)) return argmax(logits);
  return sampleFrom(samplingDistribution(logits, params), rng);
}
