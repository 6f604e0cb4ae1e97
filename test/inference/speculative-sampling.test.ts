import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { acceptRejectionSampling } from '../../src/inference/acceptance.js';
import { ForwardBatcher } from '../../src/inference/forward-batcher.js';
import { InProcessVerifier } from '../../src/inference/in-process-verifier.js';
import type { KvCache } from '../../src/inference/kv-cache.js';
import { LmSession } from '../../src/inference/model-session.js';
import { createRng } from '../../src/inference/rng.js';
import { samplingDistribution, sampleFrom, type SamplingParams } from '../../src/inference/sampling.js';
import { Drafter, speculativeRound } from '../../src/inference/speculative.js';
import { TextTokenizer } from '../../src/inference/tokenizer.js';
import { chiSquareTest } from './chi-square.js';
import { DRAFT_DIR, prompts, VERIFIER_DIR } from './helpers.js';

let draft: LmSession;
let verifierModel: LmSession;
let tok: TextTokenizer;

beforeAll(async () => {
  [draft, verifierModel] = await Promise.all([LmSession.load(DRAFT_DIR), LmSession.load(VERIFIER_DIR)]);
  tok = TextTokenizer.load(DRAFT_DIR);
});
afterAll(async () => Promise.all([draft.release(), verifierModel.release()]));

describe('lossless speculative sampling with the real models', () => {
  const T1: SamplingParams = { temperature: 1 };
  let ids: number[];
  let vCache: KvCache;
  let dCache: KvCache;
  let p1: Float32Array;
  let q1: Float32Array;
  let vRow: Float32Array;
  let dRow: Float32Array;

  beforeAll(async () => {
    ids = tok.encode(prompts('general', 2)[1] as string);
    // Caches of the prompt minus its last token: every sample starts from these (immutable) caches.
    const [v, d] = await Promise.all([verifierModel.forward(ids), draft.forward(ids)]);
    vRow = v.logits.last();
    dRow = d.logits.last();
    p1 = samplingDistribution(vRow, T1);
    q1 = samplingDistribution(dRow, T1);
    vCache = v.cache.truncate(ids.length - 1);
    dCache = d.cache.truncate(ids.length - 1);
  });

  it('the rejection step with the models p and q yields p (pure function, 20000 draws, T=1 and top-p 0.9)', () => {
    const nucleus = { temperature: 1, topP: 0.9 };
    const cases: [Float32Array, Float32Array][] = [
      [p1, q1],
      [samplingDistribution(vRow, nucleus), samplingDistribution(dRow, nucleus)],
    ];
    const rng = createRng(2024);
    for (const [p, q] of cases) {
      const counts = new Array<number>(p.length).fill(0);
      for (let i = 0; i < 20000; i++) {
        const x = sampleFrom(q, rng);
        const r = acceptRejectionSampling([x], [q], [p, p], rng);
        counts[r.accepted === 1 ? x : r.nextToken]!++;
      }
      expect(chiSquareTest(counts, p).pValue).toBeGreaterThan(0.001);
      // The draft alone would fail the same test (so the test can fail).
      const drafted = new Array<number>(p.length).fill(0);
      for (let i = 0; i < 20000; i++) drafted[sampleFrom(q, rng)]!++;
      expect(chiSquareTest(drafted, p).pValue).toBeLessThan(0.001);
    }
  });

  // With a confidence stop (0.3) most sampled proposals end after one or two tokens, at a point the
  // draft's own draws decide: the verifier's distribution must still come out.
  it.each([
    { minConfidence: 0, what: 'draft k=3' },
    { minConfidence: 0.3, what: 'draft up to k=3, stopping below confidence 0.3' },
  ])(
    'full rounds ($what, one verifier pass) give the verifier distribution for tokens 1 and 2',
    async ({ minConfidence }) => {
      // Thousands of concurrent real rounds, their forward passes gathered into batched passes.
      const vBatcher = new ForwardBatcher(verifierModel, { maxBatch: 64 });
      const vBatched = new InProcessVerifier(vBatcher);
      const dBatched = new ForwardBatcher(draft, { maxBatch: 64 });
      const N = 3000;
      let drafted = 0;
      const samples = await Promise.all(
        Array.from({ length: N }, async (_, i) => {
          const session = vBatched.resume(ids, vCache, { sampling: T1, seed: 1000 + i });
          const drafter = new Drafter(dBatched, ids, {
            sampling: T1,
            rng: createRng(5000 + i),
            cache: dCache,
          });
          const round = await speculativeRound(drafter, session, 3, undefined, minConfidence);
          drafted += round.drafted.length;
          return round.emitted;
        }),
      );
      // The stop must actually shorten proposals (or the second case tests nothing new).
      if (minConfidence > 0) expect(drafted / N).toBeLessThan(2.5);
      else expect(drafted).toBe(3 * N);
      expect(vBatcher.stats.sequences / vBatcher.stats.passes).toBeGreaterThan(8);
      const first = new Array<number>(p1.length).fill(0);
      for (const s of samples) first[s[0] as number]!++;
      expect(chiSquareTest(first, p1).pValue).toBeGreaterThan(0.001);
      // Second token given the most frequent first token x*: compare with p2(. | x*).
      const xStar = first.indexOf(Math.max(...first));
      const second = new Array<number>(p1.length).fill(0);
      let n2 = 0;
      for (const s of samples) {
        if (s[0] === xStar && s.length >= 2) {
          second[s[1] as number]!++;
          n2++;
        }
      }
      expect(n2).toBeGreaterThan(100);
      const p2 = samplingDistribution((await verifierModel.forward([...ids, xStar])).logits.last(), T1);
      expect(chiSquareTest(second, p2).pValue).toBeGreaterThan(0.001);
    },
  );
});
