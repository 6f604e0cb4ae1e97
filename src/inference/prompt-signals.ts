/**
 * Draft-model signals about a prompt, for the router (docs/running-sites.md, "draft-model
 * entropy on the prompt"; reference specdecode.md §5): how uncertain the draft is about the
 * prompt's own next tokens (entropy) and how surprised it is by them (negative log-likelihood).
 * A prompt the small model finds hard predicts low acceptance, so routing it to the cloud is
 * cheaper than speculating. They come from the draft's prefill pass, whose cache the generation
 * then reuses (`Drafter` `cache` option), so the signals cost no extra forward pass.
 */
import type { KvCache } from './kv-cache.js';
import type { LoraFeeds } from './lora-slots.js';
import type { CausalLm, Logits } from './model-session.js';

export interface PromptSignals {
  /** Prompt tokens scored (all but the first, whose predecessor is unknown). */
  scored: number;
  /** Mean entropy (nats) of the draft's next-token distributions over the prompt. */
  meanEntropy: number;
  maxEntropy: number;
  /** Entropy of the distribution of the first token to generate. */
  nextEntropy: number;
  /** Mean negative log-likelihood (nats) of the prompt's actual tokens; exp() is the perplexity. */
  meanNll: number;
}

/** Entropy (nats) and log-sum-exp of one logits row, computed stably. */
function rowStats(row: Float32Array): { entropy: number; logZ: number } {
  let max = -Infinity;
  for (let i = 0; i < row.length; i++) if ((row[i] as number) > max) max = row[i] as number;
  let z = 0;
  let weighted = 0;
  for (let i = 0; i < row.length; i++) {
    const d = (row[i] as number) - max;
    const e = Math.exp(d);
    z += e;
    weighted += e * d;
  }
  // H = log Z' − E[d], with d = logit − max and Z' = Σ exp(d).
  return { entropy: Math.log(z) - weighted / z, logZ: max + Math.log(z) };
}

/** Signals from the logits of a forward pass over exactly `ids`. */
export function promptSignals(logits: Logits, ids: readonly number[]): PromptSignals {
  if (logits.rows !== ids.length)
    throw new RangeError(`${logits.rows} logits rows for ${ids.length} prompt tokens`);
  let entropySum = 0;
  let maxEntropy = 0;
  let nllSum = 0;
  let nextEntropy = 0;
  for (let i = 0; i < ids.length; i++) {
    const row = logits.row(i);
    const { entropy, logZ } = rowStats(row);
    if (i === ids.length - 1) {
      nextEntropy = entropy;
      break;
    }
    entropySum += entropy;
    maxEntropy = Math.max(maxEntropy, entropy);
    nllSum += logZ - (row[ids[i + 1] as number] as number);
  }
  const scored = ids.length - 1;
  return {
    scored,
    meanEntropy: scored > 0 ? entropySum / scored : nextEntropy,
    maxEntropy: scored > 0 ? maxEntropy : nextEntropy,
    nextEntropy,
    meanNll: scored > 0 ? nllSum / scored : 0,
  };
}

/** Prefills `ids` on the draft and returns the signals plus the cache for the generation to reuse. */
export async function analyzePrompt(
  model: CausalLm,
  ids: readonly number[],
  lora?: LoraFeeds,
): Promise<{ signals: PromptSignals; cache: KvCache }> {
  const { logits, cache } = await model.forward(ids, undefined, lora);
  return { signals: promptSignals(logits, ids), cache };
}
