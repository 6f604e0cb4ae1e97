/**
 * Micro-measurements behind two of the speculative benchmark's targets, taken in-process on one
 * thread: how fast the draft decodes one stream (tokens/s, prefill excluded), and what one verify
 * pass of k+1 positions costs relative to a one-token decode step at the same context length (the
 * reason speculation saves verifier work: the pass reads the weights once for k+1 positions).
 */
import type { LoraFeeds } from '../inference/lora-slots.js';
import type { LmSession } from '../inference/model-session.js';
import { argmax } from '../inference/sampling.js';
import { percentile, round } from './summary.js';

export interface DraftSpeed {
  tokensPerSecond: number;
  msPerToken: number;
  tokens: number;
}

/** Greedy single-stream decode speed over `tokens` steps after the prompt; best of `runs`. */
export async function measureDraftSpeed(
  draft: LmSession,
  promptIds: readonly number[],
  tokens: number,
  lora?: LoraFeeds,
  runs = 3,
): Promise<DraftSpeed> {
  let best = Infinity;
  const steps = Math.min(tokens, (draft.config.maxPositions ?? 2048) - promptIds.length - 1);
  for (let r = 0; r < runs; r++) {
    let { logits, cache } = await draft.forward(promptIds, undefined, lora);
    const t0 = performance.now();
    for (let i = 0; i < steps; i++) {
      const next = argmax(logits.last());
      ({ logits, cache } = await draft.forward([next], cache, lora));
    }
    best = Math.min(best, performance.now() - t0);
  }
  return { tokensPerSecond: round((steps * 1000) / best, 1), msPerToken: round(best / steps), tokens: steps };
}

export interface VerifyCost {
  context: number;
  k: number;
  oneTokenMs: number;
  verifyMs: number;
  /** verifyMs / oneTokenMs. */
  ratio: number;
}

/** Median time of a (k+1)-position pass vs a 1-position pass on the same cached context. */
export async function measureVerifyCost(
  verifier: LmSession,
  contextIds: readonly number[],
  k: number,
  reps = 40,
): Promise<VerifyCost> {
  const { logits, cache } = await verifier.forward(contextIds);
  const next = argmax(logits.last());
  const draft = Array.from({ length: k }, (_, i) => (next + i + 1) % verifier.vocabSize);
  const one: number[] = [];
  const many: number[] = [];
  for (let i = 0; i < reps + 5; i++) {
    const t0 = performance.now();
    await verifier.forward([next], cache);
    const t1 = performance.now();
    await verifier.forward([next, ...draft], cache);
    const t2 = performance.now();
    if (i >= 5) {
      one.push(t1 - t0);
      many.push(t2 - t1);
    }
  }
  const oneMs = percentile(one, 50);
  const manyMs = percentile(many, 50);
  return {
    context: contextIds.length,
    k,
    oneTokenMs: round(oneMs),
    verifyMs: round(manyMs),
    ratio: round(manyMs / oneMs),
  };
}
