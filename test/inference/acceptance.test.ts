import { describe, expect, it } from 'vitest';
import {
  acceptGreedy,
  acceptRejectionSampling,
  residualDistribution,
} from '../../src/inference/acceptance.js';
import { createRng } from '../../src/inference/rng.js';
import { sampleFrom } from '../../src/inference/sampling.js';
import { chiSquareTest } from './chi-square.js';

const P1 = [0.05, 0.4, 0.3, 0.15, 0.1, 0];
const Q1 = [0.3, 0.1, 0.3, 0.05, 0.05, 0.2];
const P2 = [0.25, 0.05, 0.1, 0.2, 0.2, 0.2];
const Q2 = [0.1, 0.1, 0.5, 0.1, 0.1, 0.1];
const P3 = [0.1, 0.1, 0.1, 0.1, 0.1, 0.5];

describe('greedy acceptance', () => {
  const rows = [
    [0, 5, 1],
    [9, 0, 1],
    [0, 1, 7],
    [3, 2, 1],
  ];
  it('keeps the prefix equal to the verifier argmax and adds the verifier token', () => {
    expect(acceptGreedy([1, 0, 2], rows)).toEqual({ accepted: 3, nextToken: 0 });
    expect(acceptGreedy([1, 0, 1], rows)).toEqual({ accepted: 2, nextToken: 2 });
    expect(acceptGreedy([2, 0, 2], rows)).toEqual({ accepted: 0, nextToken: 1 });
    expect(acceptGreedy([], [rows[0] as number[]])).toEqual({ accepted: 0, nextToken: 1 });
  });
  it('needs k + 1 verifier rows', () => {
    expect(() => acceptGreedy([1, 0], rows)).toThrow(/3 verifier rows/);
  });
});

describe('rejection sampling', () => {
  it('residual is max(0, p - q)', () => {
    expect(Array.from(residualDistribution([0.5, 0.5], [0.2, 0.8])).map((x) => +x.toFixed(6))).toEqual([
      0.3, 0,
    ]);
  });

  it('the first output token is distributed as p1, whatever q is (chi-square, 20000 draws)', () => {
    const rng = createRng(1234);
    const counts = new Array(6).fill(0);
    for (let i = 0; i < 20000; i++) {
      const x = sampleFrom(Q1, rng);
      const r = acceptRejectionSampling([x], [Q1], [P1, P2], rng);
      counts[r.accepted === 1 ? x : r.nextToken]++;
    }
    expect(counts[5]).toBe(0); // p1 gives token 5 no mass, although q1 drafts it 20% of the time
    expect(chiSquareTest(counts, P1).pValue).toBeGreaterThan(0.001);
  });

  it('the first two tokens are jointly distributed as p1 x p2 over rounds of k = 3', () => {
    // Position-indexed distributions stand in for a model; rounds continue from wherever the
    // previous one stopped, so both the residual and the bonus paths are exercised.
    const ps = [P1, P2, P3, P3, P3];
    const qs = [Q1, Q2, Q2, Q2];
    const rng = createRng(99);
    const counts = new Array(36).fill(0);
    const paths = { residual: 0, bonus: 0 };
    for (let i = 0; i < 20000; i++) {
      const out: number[] = [];
      while (out.length < 2) {
        const pos = out.length;
        const draft = [0, 1, 2].map((j) => sampleFrom(qs[pos + j] as number[], rng));
        const r = acceptRejectionSampling(
          draft,
          [0, 1, 2].map((j) => qs[pos + j] as number[]),
          [0, 1, 2, 3].map((j) => ps[pos + j] as number[]),
          rng,
        );
        if (r.accepted === 3) paths.bonus++;
        else paths.residual++;
        out.push(...draft.slice(0, r.accepted), r.nextToken);
      }
      counts[(out[0] as number) * 6 + (out[1] as number)]++;
    }
    const joint = P1.flatMap((a) => P2.map((b) => a * b));
    expect(paths.residual).toBeGreaterThan(1000);
    expect(paths.bonus).toBeGreaterThan(0);
    expect(chiSquareTest(counts, joint).pValue).toBeGreaterThan(0.001);
  });

  it('acceptance rate equals sum min(p, q) (Leviathan Thm 3.5)', () => {
    const rng = createRng(5);
    let accepted = 0;
    const n = 20000;
    for (let i = 0; i < n; i++) {
      const x = sampleFrom(Q1, rng);
      accepted += acceptRejectionSampling([x], [Q1], [P1, P2], rng).accepted;
    }
    const beta = P1.reduce((s, p, i) => s + Math.min(p, Q1[i] as number), 0);
    const sd = Math.sqrt((beta * (1 - beta)) / n);
    expect(Math.abs(accepted / n - beta)).toBeLessThan(4 * sd);
  });

  it('the chi-square check detects a sampler that is not lossless', () => {
    // Negative control: always keeping the draft token yields q1, which the same test must reject.
    const rng = createRng(77);
    const counts = new Array(6).fill(0);
    for (let i = 0; i < 20000; i++) counts[sampleFrom(Q1, rng)]++;
    expect(chiSquareTest(counts, P1).pValue).toBeLessThan(0.001);
  });

  it('refuses a draft token its own distribution could not produce', () => {
    expect(() => acceptRejectionSampling([5], [P1], [P1, P2], createRng(1))).toThrow(/probability 0/);
  });
});
