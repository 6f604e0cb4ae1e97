/**
 * Sampling under token masks stays lossless (issue #18): speculative rounds whose draft samples
 * under a mask, with the verifier applying the same per-position mask before rejection sampling,
 * produce the masked verifier distribution softmax(p restricted to the mask) for the first and
 * second tokens, and never a token outside the mask. The mask here is a fixed token set (a
 * `TokenConstraint` of its own), so the test checks the decoding rule itself, independent of
 * xgrammar; the draft's masked distribution fails the same test, so it can fail.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ForwardBatcher } from '../../../src/inference/forward-batcher.js';
import { applyMask, isAllowed, maskOf, type TokenConstraint } from '../../../src/inference/grammar/index.js';
import { InProcessVerifier } from '../../../src/inference/in-process-verifier.js';
import type { KvCache } from '../../../src/inference/kv-cache.js';
import { LmSession } from '../../../src/inference/model-session.js';
import { createRng } from '../../../src/inference/rng.js';
import { samplingDistribution, topTokens } from '../../../src/inference/sampling.js';
import { Drafter, speculativeRound } from '../../../src/inference/speculative.js';
import { TextTokenizer } from '../../../src/inference/tokenizer.js';
import { chiSquareTest } from '../chi-square.js';
import { DRAFT_DIR, prompts, VERIFIER_DIR } from '../helpers.js';

let draft: LmSession;
let verifierModel: LmSession;
let tok: TextTokenizer;

beforeAll(async () => {
  [draft, verifierModel] = await Promise.all([LmSession.load(DRAFT_DIR), LmSession.load(VERIFIER_DIR)]);
  tok = TextTokenizer.load(DRAFT_DIR);
});
afterAll(async () => Promise.all([draft.release(), verifierModel.release()]));

/** The same allowed set at every position. */
class FixedMask implements TokenConstraint {
  constructor(private readonly bits: Uint32Array) {}
  mask(): Promise<Uint32Array> {
    return Promise.resolve(this.bits);
  }
  accept(token: number): boolean {
    return isAllowed(this.bits, token);
  }
  rollBack(): void {}
  isTerminated(): boolean {
    return false;
  }
}

it('speculative rounds under a mask give the masked verifier distribution (3000 rounds, T=1)', async () => {
  const T1 = { temperature: 1 };
  const ids = tok.encode(prompts('general', 2)[1] as string);
  const [v, d] = await Promise.all([verifierModel.forward(ids), draft.forward(ids)]);
  const vCache: KvCache = v.cache.truncate(ids.length - 1);
  const dCache: KvCache = d.cache.truncate(ids.length - 1);
  // Allowed: every other token among the union of both models' 40 most likely (so the draft's
  // favourite tokens are partly forbidden and the two masked distributions still differ).
  const union = new Set([
    ...topTokens(samplingDistribution(v.logits.last(), T1), 40, 0),
    ...topTokens(samplingDistribution(d.logits.last(), T1), 40, 0),
  ]);
  const allowed = [...union].filter((_, i) => i % 2 === 0 && _ !== 0);
  const bits = maskOf(allowed, verifierModel.vocabSize);
  const p1 = samplingDistribution(applyMask(v.logits.last(), bits), T1);

  const vBatched = new InProcessVerifier(new ForwardBatcher(verifierModel, { maxBatch: 64 }));
  const dBatched = new ForwardBatcher(draft, { maxBatch: 64 });
  const N = 3000;
  const samples = await Promise.all(
    Array.from({ length: N }, async (_, i) => {
      const session = vBatched.resume(ids, vCache, { sampling: T1, seed: 1000 + i });
      const drafter = new Drafter(dBatched, ids, {
        sampling: T1,
        rng: createRng(5000 + i),
        cache: dCache,
        constraint: new FixedMask(bits),
      });
      return (await speculativeRound(drafter, session, 3)).emitted;
    }),
  );
  const first = new Array<number>(p1.length).fill(0);
  for (const s of samples) {
    for (const t of s) expect(isAllowed(bits, t)).toBe(true);
    first[s[0] as number]!++;
  }
  expect(chiSquareTest(first, p1).pValue).toBeGreaterThan(0.001);
  // The draft's own masked distribution does not come out (the test can tell them apart).
  const q1 = samplingDistribution(applyMask(d.logits.last(), bits), T1);
  expect(chiSquareTest(first, q1).pValue).toBeLessThan(0.001);
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
  const p2 = samplingDistribution(
    applyMask((await verifierModel.forward([...ids, xStar])).logits.last(), bits),
    T1,
  );
  expect(chiSquareTest(second, p2).pValue).toBeGreaterThan(0.001);
}, 240_000);
