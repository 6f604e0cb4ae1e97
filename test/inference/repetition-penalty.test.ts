/**
 * repetition_penalty (issue #17): Hugging Face's RepetitionPenaltyLogitsProcessor semantics on a
 * hand-computed vector, range validation, and speculative decoding staying exact under a penalty
 * (greedy: token-identical to verifier-only greedy with the same penalty; sampling: the emitted
 * tokens follow the penalised verifier distribution).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../../src/foundation/errors.js';
import { ForwardBatcher } from '../../src/inference/forward-batcher.js';
import { collect, generate, generateSpeculative } from '../../src/inference/generate.js';
import { InProcessVerifier } from '../../src/inference/in-process-verifier.js';
import { LmSession } from '../../src/inference/model-session.js';
import { createRng } from '../../src/inference/rng.js';
import {
  penalizedRow,
  RepetitionPenalty,
  samplingDistribution,
  validateSamplingParams,
  type SamplingParams,
} from '../../src/inference/sampling.js';
import { Drafter, speculativeRound } from '../../src/inference/speculative.js';
import { TextTokenizer } from '../../src/inference/tokenizer.js';
import { chiSquareTest } from './chi-square.js';
import { DRAFT_DIR, prompts, VERIFIER_DIR } from './helpers.js';

describe('repetition penalty: Hugging Face semantics', () => {
  it('divides positive and multiplies non-positive logits of seen ids, once per id', () => {
    const row = Float32Array.from([2.0, -1.5, 0.0, 3.0, -0.25, 1.0]);
    // History with a repeat (3 twice) and an id past the vocabulary (ignored, as a gather would fail).
    const out = penalizedRow(row, [3, 1, 3, 2, 4, 99], { temperature: 0, repetitionPenalty: 1.5 });
    // By hand: HF computes where(score < 0, score * p, score / p) on the gathered ids.
    const expected = [2.0, -1.5 * 1.5, 0.0, 3.0 / 1.5, -0.25 * 1.5, 1.0].map(Math.fround);
    expect(Array.from(out)).toEqual(expected);
    // The input row is not modified (the model's logits may be shared).
    expect(Array.from(row)).toEqual([2.0, -1.5, 0.0, 3.0, -0.25, 1.0]);
  });

  it('a penalty below 1 favours repeats; 1 and absent are the identity (same array)', () => {
    const row = Float32Array.from([0.5, -2, 4]);
    expect(Array.from(penalizedRow(row, [0, 1], { temperature: 0, repetitionPenalty: 0.5 }))).toEqual([
      1, -1, 4,
    ]);
    expect(penalizedRow(row, [0, 1], { temperature: 0, repetitionPenalty: 1 })).toBe(row);
    expect(penalizedRow(row, [0, 1], { temperature: 0 })).toBe(row);
  });

  it('can flip the argmax, and tokens added later count from then on', () => {
    const rp = new RepetitionPenalty(2, [0]);
    const row = Float32Array.from([3, 2, 1]);
    expect(Array.from(rp.apply(row))).toEqual([1.5, 2, 1]);
    rp.add(1);
    expect(Array.from(rp.apply(row))).toEqual([1.5, 1, 1]);
  });

  it.each([0, -1, 0.001, 101, Number.NaN, Number.POSITIVE_INFINITY])('refuses %s naming the field', (bad) => {
    let err: unknown;
    try {
      validateSamplingParams({ temperature: 0, repetitionPenalty: bad }, 'body');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).message).toContain('body.repetition_penalty');
    expect((err as UserError).exitCode).toBe(2);
  });
});

let draft: LmSession;
let verifierModel: LmSession;
let verifier: InProcessVerifier;
let tok: TextTokenizer;

beforeAll(async () => {
  [draft, verifierModel] = await Promise.all([LmSession.load(DRAFT_DIR), LmSession.load(VERIFIER_DIR)]);
  verifier = new InProcessVerifier(verifierModel);
  tok = TextTokenizer.load(DRAFT_DIR);
});
afterAll(async () => Promise.all([draft.release(), verifierModel.release()]));

describe('speculative decoding under a repetition penalty', () => {
  const TOKENS = 32;
  it.each([1.3, 2, 0.5])(
    'greedy is token-identical to verifier-only greedy (penalty %s, k = 1..6 and auto)',
    async (penalty) => {
      const sampling: SamplingParams = { temperature: 0, repetitionPenalty: penalty };
      let changed = 0;
      for (const text of [...prompts('general', 2), ...prompts('support', 2)]) {
        const ids = tok.encode(text);
        const opts = { maxTokens: TOKENS, eosTokenIds: [] as number[] };
        const ref = await collect(generate(verifierModel, ids, { ...opts, sampling }));
        const plain = await collect(generate(verifierModel, ids, opts));
        if (plain.tokens.join() !== ref.tokens.join()) changed++;
        for (const k of [1, 2, 3, 4, 6, 'auto'] as const) {
          const spec = await collect(generateSpeculative(draft, verifier, ids, { ...opts, sampling, k }));
          expect(spec.tokens, `k=${k} prompt=${JSON.stringify(text)}`).toEqual(ref.tokens);
          // Several tokens per round, so earlier drafted-and-accepted tokens are in the history.
          if (k === 4) expect(spec.done.stats.accepted).toBeGreaterThan(spec.done.stats.verifyRounds);
        }
      }
      // The penalty must change the output (else this compares nothing new). Penalties 2 and 0.5
      // make a token drafted early in a round matter later in it: they fail if the verifier leaves
      // the drafted tokens out of the history it penalises with.
      expect(changed).toBeGreaterThan(0);
    },
  );

  it('sampled rounds emit tokens from the penalised verifier distribution (2000 rounds, T=1, penalty 3)', async () => {
    const sampling: SamplingParams = { temperature: 1, repetitionPenalty: 3 };
    const ids = tok.encode(prompts('support', 2)[1] as string);
    const [v, d] = await Promise.all([verifierModel.forward(ids), draft.forward(ids)]);
    const vCache = v.cache.truncate(ids.length - 1);
    const dCache = d.cache.truncate(ids.length - 1);
    const p1 = samplingDistribution(penalizedRow(v.logits.last(), ids, sampling), sampling);
    const unpenalised = samplingDistribution(v.logits.last(), sampling);
    const vBatched = new InProcessVerifier(new ForwardBatcher(verifierModel, { maxBatch: 64 }));
    const dBatched = new ForwardBatcher(draft, { maxBatch: 64 });
    const N = 2000;
    const samples = await Promise.all(
      Array.from({ length: N }, async (_, i) => {
        const session = vBatched.resume(ids, vCache, { sampling, seed: 7000 + i });
        const drafter = new Drafter(dBatched, ids, { sampling, rng: createRng(9000 + i), cache: dCache });
        return (await speculativeRound(drafter, session, 3)).emitted;
      }),
    );
    const first = new Array<number>(p1.length).fill(0);
    for (const s of samples) first[s[0] as number]!++;
    expect(chiSquareTest(first, p1).pValue).toBeGreaterThan(0.001);
    // The same counts against the unpenalised distribution fail (so the test can fail).
    expect(chiSquareTest(first, unpenalised).pValue).toBeLessThan(0.001);
    // Second token after the most frequent first token x*: penalised over prompt + x*.
    const xStar = first.indexOf(Math.max(...first));
    const second = new Array<number>(p1.length).fill(0);
    for (const s of samples) if (s[0] === xStar && s.length >= 2) second[s[1] as number]!++;
    expect(second.reduce((a, b) => a + b, 0)).toBeGreaterThan(100);
    const row2 = (await verifierModel.forward([...ids, xStar])).logits.last();
    const p2 = samplingDistribution(penalizedRow(row2, [...ids, xStar], sampling), sampling);
    expect(chiSquareTest(second, p2).pValue).toBeGreaterThan(0.001);
  });
});
