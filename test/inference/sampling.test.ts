import { describe, expect, it } from 'vitest';
import { UserError } from '../../src/foundation/errors.js';
import { createRng, Xoshiro128 } from '../../src/inference/rng.js';
import {
  argmax,
  samplingDistribution,
  sampleFrom,
  sampleToken,
  softmax,
  topTokens,
  validateSamplingParams,
} from '../../src/inference/sampling.js';
import { chiSquareTest, gammaQ } from './chi-square.js';

const logitsOf = (probs: number[]): Float32Array => Float32Array.from(probs.map(Math.log));

describe('rng', () => {
  it('is deterministic per seed and differs between seeds', () => {
    const a = new Xoshiro128(42);
    const b = new Xoshiro128(42);
    const c = new Xoshiro128(43);
    const sa = Array.from({ length: 8 }, () => a.next());
    expect(Array.from({ length: 8 }, () => b.next())).toEqual(sa);
    expect(Array.from({ length: 8 }, () => c.next())).not.toEqual(sa);
    expect(sa.every((x) => x >= 0 && x < 1)).toBe(true);
  });

  it('is uniform (chi-square over 20 bins)', () => {
    const rng = createRng(7);
    const counts = new Array(20).fill(0);
    for (let i = 0; i < 40000; i++) counts[Math.floor(rng.next() * 20)]++;
    expect(chiSquareTest(counts, new Array(20).fill(1 / 20)).pValue).toBeGreaterThan(0.001);
  });
});

describe('chi-square helper', () => {
  it('matches known quantiles and rejects a wrong distribution', () => {
    // P(chi2_1 > 3.841) = 0.05, P(chi2_10 > 29.588) = 0.001
    expect(gammaQ(0.5, 3.841 / 2)).toBeCloseTo(0.05, 3);
    expect(gammaQ(5, 29.588 / 2)).toBeCloseTo(0.001, 4);
    expect(chiSquareTest([600, 400], [0.5, 0.5]).pValue).toBeLessThan(0.001);
    expect(chiSquareTest([505, 495], [0.5, 0.5]).pValue).toBeGreaterThan(0.5);
  });
});

describe('sampling', () => {
  it('argmax breaks ties toward the lower index', () => {
    expect(argmax([1, 3, 3, 2])).toBe(1);
    expect(argmax(new Float32Array([-5, -1, -7]))).toBe(1);
  });

  it('softmax is stable for large logits and honours temperature', () => {
    const p = softmax([1000, 1000, 999]);
    expect(p[0]).toBeCloseTo(p[1] as number, 6);
    expect(p.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6);
    const hot = softmax([2, 0], 2);
    expect(hot[0]).toBeCloseTo(Math.exp(1) / (Math.exp(1) + 1), 6);
  });

  it('greedy is a one-hot distribution at the argmax', () => {
    const d = samplingDistribution(logitsOf([0.2, 0.5, 0.3]), { temperature: 0 });
    expect(Array.from(d)).toEqual([0, 1, 0]);
    expect(samplingDistribution(logitsOf([0.2, 0.5, 0.3]), { temperature: 1, topK: 1 })[1]).toBe(1);
  });

  it('top-p keeps the smallest nucleus reaching p and renormalizes', () => {
    const logits = logitsOf([0.05, 0.5, 0.15, 0.3]);
    const d = samplingDistribution(logits, { temperature: 1, topP: 0.8 });
    expect(d[1]).toBeCloseTo(0.5 / 0.8, 5);
    expect(d[3]).toBeCloseTo(0.3 / 0.8, 5);
    expect(d[0]).toBe(0);
    expect(d[2]).toBe(0);
    const wider = samplingDistribution(logits, { temperature: 1, topP: 0.81 });
    expect(wider[2]).toBeCloseTo(0.15 / 0.95, 5);
    expect(wider[0]).toBe(0);
    const all = samplingDistribution(logits, { temperature: 1, topP: 1 });
    expect(all[0]).toBeCloseTo(0.05, 5);
  });

  it('top-k then top-p applies the nucleus within the top k', () => {
    const logits = logitsOf([0.4, 0.3, 0.2, 0.1]);
    const d = samplingDistribution(logits, { temperature: 1, topK: 3, topP: 0.7 });
    // top-3 renormalized: 0.444, 0.333, 0.222; nucleus 0.7 needs the first two.
    expect(d[0]).toBeCloseTo(0.4 / 0.7, 5);
    expect(d[1]).toBeCloseTo(0.3 / 0.7, 5);
    expect(d[2]).toBe(0);
  });

  it('topTokens is an exact prefix of the full sort on a large flat vocabulary', () => {
    const rng = createRng(3);
    const probs = softmax(Float32Array.from({ length: 50000 }, () => rng.next() * 0.01));
    const got = topTokens(probs, 1, 0.9);
    const full = Array.from(probs.keys()).sort(
      (a, b) => (probs[b] as number) - (probs[a] as number) || a - b,
    );
    expect(Array.from(got.subarray(0, 1000))).toEqual(full.slice(0, 1000));
    let mass = 0;
    for (const i of got) mass += probs[i] as number;
    expect(mass).toBeGreaterThanOrEqual(0.9);
  });

  it('samples match the distribution (chi-square) and are reproducible from a seed', () => {
    const probs = [0.1, 0.4, 0.25, 0.05, 0.2];
    const rng = createRng(11);
    const counts = new Array(5).fill(0);
    for (let i = 0; i < 20000; i++) counts[sampleFrom(probs, rng)]++;
    expect(chiSquareTest(counts, probs).pValue).toBeGreaterThan(0.001);
    const logits = logitsOf(probs);
    const seq = (seed: number) => {
      const r = createRng(seed);
      return Array.from({ length: 20 }, () => sampleToken(logits, { temperature: 0.8, topP: 0.9 }, r));
    };
    expect(seq(5)).toEqual(seq(5));
  });

  it('rejects invalid parameters with a UserError naming the field', () => {
    expect(() => validateSamplingParams({ temperature: -1 })).toThrow(/temperature/);
    expect(() => validateSamplingParams({ temperature: 1, topP: 0 })).toThrow(UserError);
    expect(() => validateSamplingParams({ temperature: 1, topK: 1.5 })).toThrow(/top_k/);
  });
});
