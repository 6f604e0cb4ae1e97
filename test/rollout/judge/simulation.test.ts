/**
 * The judge's error bound and power, by seeded simulation of whole rollouts with a look after
 * every window (src/rollout/judge/simulate.ts). The A/A runs use the realistic token model
 * (per-request acceptance rates, prefix acceptance in verify rounds) at a zero margin, the hardest
 * case for the error bound: the canary sits exactly on the null boundary. Figures are printed so
 * docs/rollout-judge.md can quote them.
 */
import { describe, expect, it } from 'vitest';
import { metric, simulateMany, traffic } from '../../../src/rollout/judge/simulate.js';

const report = (name: string, figures: unknown) => console.log(`[judge] ${name}: ${JSON.stringify(figures)}`);

describe('A/A: false rollbacks with a look after every window', () => {
  it('<= 1% at alpha 0.01 over 2000 realistic rollouts (30 windows, 2 canary vs 4 baseline sites)', () => {
    const model = traffic({ latency: false });
    const s = simulateMany(
      101,
      {
        canary: model,
        baseline: model,
        canarySites: 2,
        baselineSites: 4,
        windows: 30,
        metrics: [metric('acceptance', { margin: 0, minSamples: 500, alpha: 0.01 })],
      },
      2000,
    );
    report('A/A realistic, margin 0', s);
    expect(s.runs).toBe(2000);
    expect(s.rollbackRate).toBeLessThanOrEqual(0.01);
    // The pass test has the same bound (promoting a canary that is not within the margin).
    expect(s.promoteRate).toBeLessThanOrEqual(0.01);
  });

  it('<= 1% with independent tokens too (2000 rollouts)', () => {
    const model = traffic({ latency: false, tokenModel: 'iid' });
    const s = simulateMany(
      102,
      {
        canary: model,
        baseline: model,
        canarySites: 2,
        baselineSites: 4,
        windows: 30,
        metrics: [metric('acceptance', { margin: 0, minSamples: 500 })],
      },
      2000,
    );
    report('A/A iid, margin 0', s);
    expect(s.rollbackRate).toBeLessThanOrEqual(0.01);
  });
});

describe('power', () => {
  it('a 10% drop (0.70 -> 0.63) is caught within 5,000 draft tokens per arm in >= 90% of rollouts', () => {
    const s = simulateMany(
      201,
      {
        canary: traffic({ latency: false, tokenModel: 'iid', acceptance: 0.63 }),
        baseline: traffic({ latency: false, tokenModel: 'iid' }),
        canarySites: 2,
        baselineSites: 2,
        windows: 1000,
        maxSamplesPerArm: 5000,
        metrics: [metric('acceptance', { margin: 0.02, minSamples: 500 })],
      },
      1000,
    );
    report('power iid, margin 2%, <= 5000 tokens/arm', s);
    expect(s.rollbackRate).toBeGreaterThanOrEqual(0.9);
    expect(s.promotes).toBe(0);
    expect(s.meanSamplesAtRollback).toBeLessThan(4000);
  });

  it('with realistic (clustered) tokens the same drop needs more tokens: >= 90% within 20,000', () => {
    const s = simulateMany(
      202,
      {
        canary: traffic({ latency: false, acceptance: 0.63 }),
        baseline: traffic({ latency: false }),
        canarySites: 2,
        baselineSites: 2,
        windows: 1000,
        maxSamplesPerArm: 20_000,
        metrics: [metric('acceptance', { margin: 0.02, minSamples: 500 })],
      },
      500,
    );
    report('power realistic, margin 2%, <= 20000 tokens/arm', s);
    expect(s.rollbackRate).toBeGreaterThanOrEqual(0.9);
    expect(s.promotes).toBe(0);
  });

  it('an equal canary is promoted within 20,000 draft tokens per arm (margin 5%)', () => {
    const s = simulateMany(
      203,
      {
        canary: traffic({ latency: false, tokenModel: 'iid' }),
        baseline: traffic({ latency: false, tokenModel: 'iid' }),
        canarySites: 2,
        baselineSites: 2,
        windows: 1000,
        maxSamplesPerArm: 20_000,
        metrics: [metric('acceptance', { margin: 0.05, minSamples: 500 })],
      },
      500,
    );
    report('good canary iid, margin 5%, <= 20000 tokens/arm', s);
    expect(s.promoteRate).toBeGreaterThanOrEqual(0.95);
    expect(s.rollbacks).toBe(0);
  });
});
