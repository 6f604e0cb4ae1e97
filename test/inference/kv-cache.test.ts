import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collect, generate } from '../../src/inference/generate.js';
import { LmSession } from '../../src/inference/model-session.js';
import { argmax } from '../../src/inference/sampling.js';
import { TextTokenizer } from '../../src/inference/tokenizer.js';
import { DRAFT_DIR, maxAbsDiff, TINY_HF_DIR, VERIFIER_DIR } from './helpers.js';

const TEXT = 'Alex: hey, are we still on for dinner tonight?\nSam: yes! 7:30 at the usual place';

describe.each([
  ['draft', DRAFT_DIR],
  ['verifier', VERIFIER_DIR],
  ['tiny-hf', TINY_HF_DIR],
])('KV cache on %s', (_name, dir) => {
  let model: LmSession;
  let ids: number[];
  beforeAll(async () => {
    model = await LmSession.load(dir);
    ids = TextTokenizer.load(dir).encode(TEXT);
  });
  afterAll(async () => model.release());

  it('incremental decoding gives the logits of full recomputation (max abs diff <= 1e-4)', async () => {
    const full = await model.forward(ids);
    expect(full.cache.length).toBe(ids.length);
    // Prefill 5, then single tokens, then a 3-token chunk, then single tokens to the end.
    const chunks: number[][] = [ids.slice(0, 5)];
    for (let i = 5; i < 10; i++) chunks.push([ids[i] as number]);
    chunks.push(ids.slice(10, 13));
    for (let i = 13; i < ids.length; i++) chunks.push([ids[i] as number]);
    let cache = model.emptyCache();
    let pos = 0;
    let worst = 0;
    for (const chunk of chunks) {
      const step = await model.forward(chunk, cache);
      for (let r = 0; r < chunk.length; r++)
        worst = Math.max(worst, maxAbsDiff(step.logits.row(r), full.logits.row(pos + r)));
      cache = step.cache;
      pos += chunk.length;
    }
    expect(cache.length).toBe(ids.length);
    expect(worst).toBeLessThanOrEqual(1e-4);
  });

  it('truncation rolls back: re-running the cut tokens reproduces their logits; older caches stay valid', async () => {
    const full = await model.forward(ids);
    const n = ids.length;
    const cut = full.cache.truncate(n - 4);
    expect(cut.length).toBe(n - 4);
    // Feed different tokens first (a rejected draft), roll back again, then the real ones.
    const wrong = await model.forward([1, 2, 3], cut);
    expect(wrong.cache.length).toBe(n - 1);
    const again = await model.forward(ids.slice(n - 4), wrong.cache.truncate(n - 4));
    for (let r = 0; r < 4; r++)
      expect(maxAbsDiff(again.logits.row(r), full.logits.row(n - 4 + r))).toBeLessThanOrEqual(1e-4);
    // `cut` was not changed by either extension (caches are immutable).
    const fromCut = await model.forward(ids.slice(n - 4), cut);
    expect(maxAbsDiff(fromCut.logits.last(), full.logits.last())).toBeLessThanOrEqual(1e-4);
    expect(() => cut.truncate(n)).toThrow(RangeError);
  });

  it('a batch of sequences with different past and new lengths matches one-by-one forwards', async () => {
    const a = await model.forward(ids.slice(0, 7));
    const b = await model.forward(ids.slice(0, 3));
    const items = [
      { ids: ids.slice(7, 9), cache: a.cache },
      { ids: ids.slice(3, 8), cache: b.cache },
      { ids: ids.slice(0, 4) },
    ];
    const batched = await model.forwardBatch(items);
    for (const [i, item] of items.entries()) {
      const single = await model.forward(item.ids, item.cache);
      const got = batched[i];
      expect(got?.logits.rows).toBe(item.ids.length);
      expect(got?.cache.length).toBe((item.cache?.length ?? 0) + item.ids.length);
      expect(maxAbsDiff(got?.logits.data ?? [], single.logits.data)).toBeLessThanOrEqual(1e-4);
      // The split caches continue correctly.
      const next = await model.forward([ids[10] as number], got?.cache);
      const ref = await model.forward([ids[10] as number], single.cache);
      expect(maxAbsDiff(next.logits.last(), ref.logits.last())).toBeLessThanOrEqual(1e-4);
    }
  });

  it('greedy generation equals argmax of full recomputation at every step', async () => {
    const { tokens } = await collect(generate(model, ids, { maxTokens: 8, eosTokenIds: [] }));
    expect(tokens).toHaveLength(8);
    const seq = [...ids];
    for (const t of tokens) {
      const full = await model.forward(seq);
      expect(t).toBe(argmax(full.logits.last()));
      seq.push(t);
    }
  });
});

describe('model inputs', () => {
  it('are discovered from the graph: LoRA on the draft, use_cache_branch on the merged decoder', async () => {
    const draft = await LmSession.load(DRAFT_DIR);
    const tiny = await LmSession.load(TINY_HF_DIR);
    expect(draft.inputs.lora?.modules).toContain('q_proj');
    expect(draft.inputs.lora?.maxRank).toBe(16);
    expect(draft.inputs.useCacheBranch).toBe(false);
    expect(tiny.inputs).toMatchObject({ positionIds: true, useCacheBranch: true, lora: undefined });
    expect(tiny.shape).toEqual({ numLayers: 2, numKeyValueHeads: 2, headDim: 16 });
    await Promise.all([draft.release(), tiny.release()]);
  });
});
