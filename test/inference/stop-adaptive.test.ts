import { describe, expect, it } from 'vitest';
import { AdaptiveK, bestK, expectedTokensPerRound, K_MAX } from '../../src/inference/adaptive-k.js';
import { createRng } from '../../src/inference/rng.js';
import { StopMatcher } from '../../src/inference/stop.js';

describe('StopMatcher', () => {
  it('finds a stop string split across pushes and cuts before it', () => {
    const m = new StopMatcher(['\nUser:']);
    expect(m.push('Hello')).toEqual({ text: 'Hello', stopped: false });
    expect(m.push(' there\nUs')).toEqual({ text: ' there', stopped: false });
    expect(m.push('er: hi')).toEqual({ text: '', stopped: true });
    expect(m.push('more')).toEqual({ text: '', stopped: true });
  });

  it('releases held-back text when it stops being a possible prefix, and on flush', () => {
    const m = new StopMatcher(['###']);
    expect(m.push('a#')).toEqual({ text: 'a', stopped: false });
    expect(m.push('b')).toEqual({ text: '#b', stopped: false });
    expect(m.push('##')).toEqual({ text: '', stopped: false });
    expect(m.flush()).toBe('##');
  });

  it('stops at the earliest of several stop strings', () => {
    const m = new StopMatcher(['END', 'x']);
    expect(m.push('abxcEND')).toEqual({ text: 'ab', stopped: true });
  });

  it('passes everything through without stop strings', () => {
    const m = new StopMatcher([]);
    expect(m.push('abc')).toEqual({ text: 'abc', stopped: false });
    expect(m.flush()).toBe('');
  });
});

describe('adaptive k', () => {
  it('E(k) follows Leviathan Eq. 1 (table in specdecode.md §1.1)', () => {
    expect(expectedTokensPerRound(0.8, 4)).toBeCloseTo(3.36, 2);
    expect(expectedTokensPerRound(0.6, 2)).toBeCloseTo(1.96, 2);
    expect(expectedTokensPerRound(1, 5)).toBe(6);
  });

  it('picks long drafts for high acceptance or costly round trips, short ones otherwise', () => {
    // Cheap draft, expensive round trip, high acceptance: draft the maximum.
    expect(bestK(0.9, 1, 100)).toBe(K_MAX);
    // Low acceptance and a draft step as costly as a round trip: one token.
    expect(bestK(0.2, 10, 10)).toBe(1);
    // specdecode.md §7 sequential model, RTT 14 ms + verify 25 ms, draft 14.25 ms/token, α = 0.8:
    // the table's best sequential k is 2 or 3 (36.1 tok/s both).
    expect([2, 3]).toContain(bestK(0.8, 14.25, 39));
  });

  it('moves k down when drafts are rejected and up when accepted', () => {
    const ak = new AdaptiveK({ initial: 4 });
    for (let i = 0; i < 20; i++) ak.observe({ drafted: ak.k, accepted: 0, draftMs: ak.k * 2, roundMs: 5 });
    expect(ak.k).toBe(1);
    expect(ak.alpha).toBeLessThan(0.2);
    for (let i = 0; i < 40; i++)
      ak.observe({ drafted: ak.k, accepted: ak.k, draftMs: ak.k * 1, roundMs: 20 });
    expect(ak.k).toBe(K_MAX);
    expect(ak.alpha).toBeGreaterThan(0.9);
  });

  it('stays within its bounds', () => {
    const ak = new AdaptiveK({ min: 2, max: 5, initial: 9 });
    expect(ak.k).toBe(5);
    ak.observe({ drafted: 5, accepted: 0, draftMs: 50, roundMs: 1 });
    expect(ak.k).toBeGreaterThanOrEqual(2);
  });
});

describe('adaptive k round-cost model', () => {
  it('learns that verify time grows with k and then prefers shorter drafts', () => {
    // A compute-bound local verifier: 1 ms fixed + 2 ms per scored position, draft 0.5 ms/token,
    // acceptance 0.5. Pure-fixed-cost reasoning would pick a long draft; the fitted model must not.
    const ak = new AdaptiveK({ initial: 8, priorAlpha: 0.5 });
    const rng = createRng(3);
    for (let i = 0; i < 200; i++) {
      const k = ak.k;
      let accepted = 0;
      while (accepted < k && rng.next() < 0.5) accepted++;
      ak.observe({ drafted: k, accepted, draftMs: 0.5 * k, roundMs: 1 + 2 * (k + 1) });
    }
    const cost = ak.roundCost();
    expect(cost.perPosition).toBeCloseTo(2, 1);
    expect(cost.fixed).toBeCloseTo(1, 0);
    expect(ak.k).toBe(bestK(0.5, 0.5, 1, 1, K_MAX, 2));
    expect(ak.k).toBeLessThanOrEqual(2);
  });
});

describe('adaptive k with given costs', () => {
  it('follows acceptance alone: the same rounds give the same k however long they took', () => {
    const costs = { draftMsPerToken: 1, roundMs: 20 };
    const rounds = [
      { drafted: 4, accepted: 4 },
      { drafted: 6, accepted: 2 },
      { drafted: 5, accepted: 5 },
      { drafted: 8, accepted: 1 },
      { drafted: 3, accepted: 3 },
    ];
    const ks = (timing: (i: number) => { draftMs: number; roundMs: number }) => {
      const ak = new AdaptiveK({ costs });
      return rounds.map((r, i) => {
        ak.observe({ ...r, ...timing(i) });
        return ak.k;
      });
    };
    const calm = ks(() => ({ draftMs: 1, roundMs: 20 }));
    const busy = ks((i) => ({ draftMs: 40 * (i + 1), roundMs: 3 + 50 * (i % 2) }));
    expect(busy).toEqual(calm);
    // ...and they are the rule's choices for those costs at each acceptance estimate.
    const ak = new AdaptiveK({ costs });
    ak.observe({ ...rounds[0]!, draftMs: 999, roundMs: 999 });
    expect(ak.k).toBe(bestK(ak.alpha, 1, 20));
    // Measured costs would have chosen otherwise here: drafting 50x dearer than a round.
    const measured = new AdaptiveK();
    measured.observe({ ...rounds[0]!, draftMs: 4 * 50, roundMs: 1 });
    expect(measured.k).toBeLessThan(ak.k);
  });

  it('refuses costs that are not finite, a negative draft cost or a zero round', () => {
    for (const costs of [
      { draftMsPerToken: -1, roundMs: 20 },
      { draftMsPerToken: 1, roundMs: 0 },
      { draftMsPerToken: Number.NaN, roundMs: 20 },
      { draftMsPerToken: 1, roundMs: Infinity },
    ]) {
      expect(() => new AdaptiveK({ costs })).toThrow(RangeError);
    }
  });
});
