/**
 * Log probabilities of emitted tokens (issue #18 item 3): the chosen token's log probability and
 * the `topN` most likely alternatives, read from the distribution that produced the token.
 *
 * "The distribution that produced it" is the row of logits after the repetition penalty (the
 * caller passes the penalised row, as sampling saw it), then: for greedy decoding, plain
 * log-softmax of that row (temperature 0 has no distribution of its own; this is what OpenAI and
 * vLLM report at temperature 0); for sampling, the adjusted distribution tokens are drawn from
 * (`samplingDistribution`: softmax at the temperature, restricted to top-k and the top-p nucleus,
 * renormalised), so alternatives outside the nucleus are not listed. Speculative sampling draws
 * from exactly that distribution of the verifier (rejection sampling is lossless), so a verified
 * token's logprob is the verifier's. Computed only when asked: a greedy row costs one pass over
 * the vocabulary plus a top-n selection.
 */
import { isGreedy, samplingDistribution, type SamplingParams } from './sampling.js';

/** Largest `topN` any caller may ask for (OpenAI's chat `top_logprobs` bound). */
export const MAX_TOP_LOGPROBS = 20;

/** What a zero probability is reported as (JSON has no -Infinity). */
export const LOGPROB_FLOOR = -9999;

export interface TopLogprob {
  token: number;
  logprob: number;
}

export interface TokenLogprob extends TopLogprob {
  /** The most likely tokens at this position, most likely first (ties: lower id first). */
  top: TopLogprob[];
}

/** Indices of the n largest values of `values` (above `floor`), largest first, ties by lower index. */
function topIndices(values: ArrayLike<number>, n: number, floor = -Infinity): number[] {
  const idx: number[] = [];
  if (n <= 0) return idx;
  for (let i = 0; i < values.length; i++) {
    const v = values[i] as number;
    if (!(v > floor)) continue;
    if (idx.length === n && v <= (values[idx[n - 1] as number] as number)) continue;
    // Insertion into the short sorted list; strict > keeps the lower index first on ties.
    let at = Math.min(idx.length, n - 1);
    while (at > 0 && v > (values[idx[at - 1] as number] as number)) at--;
    idx.splice(at, 0, i);
    if (idx.length > n) idx.pop();
  }
  return idx;
}

/** log-softmax(row)[i] for the listed i, in float64 (max subtracted). */
function logSoftmaxAt(row: ArrayLike<number>): (i: number) => number {
  let max = -Infinity;
  for (let i = 0; i < row.length; i++) if ((row[i] as number) > max) max = row[i] as number;
  let sum = 0;
  for (let i = 0; i < row.length; i++) sum += Math.exp((row[i] as number) - max);
  const lse = max + Math.log(sum);
  return (i) => (row[i] as number) - lse;
}

/** The chosen token's logprob and the top `topN` alternatives (see the module comment). */
export function tokenLogprob(
  row: Float32Array,
  token: number,
  sampling: SamplingParams,
  topN: number,
): TokenLogprob {
  const n = Math.max(0, Math.min(MAX_TOP_LOGPROBS, Math.floor(topN)));
  if (isGreedy(sampling)) {
    const at = logSoftmaxAt(row);
    const top = topIndices(row, n).map((t) => ({ token: t, logprob: at(t) }));
    return { token, logprob: at(token), top };
  }
  const p = samplingDistribution(row, sampling);
  const top = topIndices(p, n, 0).map((t) => ({ token: t, logprob: Math.log(p[t] as number) }));
  // -9999 rather than -Infinity (not JSON) for a token outside the distribution, as OpenAI does.
  return { token, logprob: Math.max(LOGPROB_FLOOR, Math.log(p[token] as number)), top };
}
