import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DecodeState } from '../../src/inference/decode-state.js';
import type { KvCache } from '../../src/inference/kv-cache.js';
import { LmSession, type CausalLm } from '../../src/inference/model-session.js';
import { TextTokenizer } from '../../src/inference/tokenizer.js';
import { maxAbsDiff, VERIFIER_DIR } from './helpers.js';

const TEXT =
  'Customer: my order has not arrived yet\nAgent: sorry to hear that, can you share the order number?';

/** The model, recording every cache its passes return. */
function recording(model: LmSession): { lm: CausalLm; caches: KvCache[] } {
  const caches: KvCache[] = [];
  const lm: CausalLm = {
    config: model.config,
    vocabSize: model.vocabSize,
    emptyCache: () => model.emptyCache(),
    forward: async (ids, cache, lora) => {
      const r = await model.forward(ids, cache, lora);
      caches.push(r.cache);
      return r;
    },
  };
  return { lm, caches };
}

function isReleased(cache: KvCache): boolean {
  try {
    cache.pastTensors();
    return false;
  } catch (err) {
    return (err as Error).message.includes('after release');
  }
}

describe('KV cache release (freeing superseded caches without waiting for the GC)', () => {
  let model: LmSession;
  let ids: number[];
  beforeAll(async () => {
    model = await LmSession.load(VERIFIER_DIR);
    ids = TextTokenizer.load(VERIFIER_DIR).encode(TEXT);
  });
  afterAll(async () => model.release());

  it('frees the buffers at once and refuses later use', async () => {
    const { cache } = await model.forward(ids);
    const tensors = cache.pastTensors();
    expect(tensors[0]?.data.length).toBeGreaterThan(0);
    cache.release();
    expect(tensors.every((t) => t.data.length === 0)).toBe(true);
    expect(() => cache.pastTensors()).toThrow(/used after release/);
    cache.release(); // idempotent
  });

  it('frees a truncated cache and its compacted copy together', async () => {
    const { cache } = await model.forward(ids);
    const cut = cache.truncate(ids.length - 3);
    const compact = cut.pastTensors();
    cut.release();
    expect(compact.every((t) => t.data.length === 0)).toBe(true);
    expect(isReleased(cache)).toBe(true); // the same tensors: every version is gone
  });

  it('a release during a pass waits until the pass has read the cache', async () => {
    const prefix = ids.slice(0, -2);
    const reference = await model.forward(ids.slice(-2), (await model.forward(prefix)).cache);
    const { cache } = await model.forward(prefix);
    const pass = model.forward(ids.slice(-2), cache);
    cache.release(); // ONNX Runtime has not run yet (it runs on the next macrotask)
    const got = await pass;
    expect(maxAbsDiff(got.logits.data, reference.logits.data)).toBeLessThanOrEqual(1e-6);
    expect(isReleased(cache)).toBe(true);
  });

  it('a decode state frees the caches its own passes superseded, and only those', async () => {
    const { lm, caches } = recording(model);
    const state = new DecodeState(lm, ids.slice(0, 10));
    await state.nextLogits();
    await state.feed([ids[10] as number, ids[11] as number]);
    state.truncate(11); // roll back one token: the cache shrinks without a copy
    await state.feed([ids[11] as number]);
    expect(caches).toHaveLength(3);
    expect(isReleased(caches[0] as KvCache)).toBe(true);
    expect(isReleased(caches[1] as KvCache)).toBe(true);
    expect(isReleased(caches[2] as KvCache)).toBe(false);
    // Same logits as a fresh full pass: freeing never touched a cache still in use.
    const full = await model.forward(ids.slice(0, 12));
    expect(maxAbsDiff((await state.nextLogits()) as Float32Array, full.logits.last())).toBeLessThanOrEqual(
      1e-4,
    );
    state.clear();
    expect(isReleased(caches[2] as KvCache)).toBe(true);
  });

  it('never frees a cache it was given or one it handed out', async () => {
    const shared = (await model.forward(ids.slice(0, 8))).cache;
    const fromShared = new DecodeState(model, ids.slice(0, 10), shared);
    await fromShared.feed([ids[10] as number]);
    await fromShared.feed([ids[11] as number]);
    fromShared.clear();
    expect(isReleased(shared)).toBe(false);

    const { lm, caches } = recording(model);
    const handing = new DecodeState(lm, ids.slice(0, 8));
    await handing.nextLogits();
    const handed = handing.cache; // a caller may keep it (a prefix cache, a snapshot)
    await handing.feed([ids[8] as number]);
    expect(handed).toBe(caches[0]);
    expect(isReleased(handed)).toBe(false);
    const again = await model.forward([ids[8] as number], handed);
    expect(again.cache.length).toBe(9);
  });
});
