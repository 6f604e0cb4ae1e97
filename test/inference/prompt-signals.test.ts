import { describe, expect, it } from 'vitest';
import { collect, generate } from '../../src/inference/generate.js';
import { Logits, LmSession } from '../../src/inference/model-session.js';
import { analyzePrompt, promptSignals } from '../../src/inference/prompt-signals.js';
import { createRng } from '../../src/inference/rng.js';
import { GREEDY } from '../../src/inference/sampling.js';
import { Drafter } from '../../src/inference/speculative.js';
import { TextTokenizer } from '../../src/inference/tokenizer.js';
import { DRAFT_DIR, prompts } from './helpers.js';

describe('prompt signals', () => {
  it('entropy and NLL of hand-made rows', () => {
    // Row 0 uniform over 4 ids, row 1 certain of id 2, row 2 (next token) uniform.
    const data = Float32Array.from([0, 0, 0, 0, -50, -50, 50, -50, 1, 1, 1, 1]);
    const s = promptSignals(new Logits(data, 3, 4), [0, 3, 2]);
    expect(s.scored).toBe(2);
    expect(s.maxEntropy).toBeCloseTo(Math.log(4), 6);
    expect(s.meanEntropy).toBeCloseTo(Math.log(4) / 2, 6);
    expect(s.nextEntropy).toBeCloseTo(Math.log(4), 6);
    // NLL: token 3 under uniform = ln 4; token 2 under the certain row = ~0.
    expect(s.meanNll).toBeCloseTo(Math.log(4) / 2, 5);
  });

  it('the draft finds a held-out prompt far more predictable than random tokens, and its cache is reusable', async () => {
    const draft = await LmSession.load(DRAFT_DIR);
    const tok = TextTokenizer.load(DRAFT_DIR);
    const ids = tok.encode(prompts('support', 1)[0] as string);
    const rng = createRng(1);
    const noise = ids.map(() => 1 + Math.floor(rng.next() * 1000));
    const real = await analyzePrompt(draft, ids);
    const random = await analyzePrompt(draft, noise);
    expect(real.signals.meanNll).toBeLessThan(random.signals.meanNll - 1);
    expect(real.cache.length).toBe(ids.length);
    // Generation from the analysed cache equals generation from scratch.
    const ref = await collect(generate(draft, ids, { maxTokens: 6, eosTokenIds: [] }));
    const drafter = new Drafter(draft, ids, { sampling: GREEDY, rng, cache: real.cache });
    expect((await drafter.propose(6)).tokens).toEqual(ref.tokens);
    const reused = await collect(generate(draft, ids, { maxTokens: 6, eosTokenIds: [], cache: real.cache }));
    expect(reused.tokens).toEqual(ref.tokens);
    await draft.release();
  });
});
