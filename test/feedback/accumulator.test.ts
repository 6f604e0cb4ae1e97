/**
 * The accumulator: counters and histograms add up exactly, windows close and reopen, a change of
 * refs or fleet seq starts a new segment, an outcome that names an older context counts there, and
 * empty segments are not reported.
 */
import { describe, expect, it } from 'vitest';
import { FeedbackAccumulator } from '../../src/feedback/accumulator.js';
import { totalRequests, windowSchema } from '../../src/feedback/report.js';
import { context, outcomes } from './fixtures.js';

const T0 = Date.parse('2025-03-01T12:00:00.000Z');
const iso = (ms: number) => new Date(ms).toISOString();

describe('FeedbackAccumulator', () => {
  it('adds up every outcome of a window', () => {
    const acc = new FeedbackAccumulator(context(7), T0);
    const { list, expected } = outcomes(1, 500);
    for (const o of list) acc.record(o);
    expect(acc.pendingRequests).toBe(500);
    const [w, ...rest] = acc.closeWindow(T0 + 60_000);
    expect(rest).toEqual([]);
    expect(windowSchema.safeParse(w).success).toBe(true);
    expect(w!.fleetSeq).toBe(7);
    expect(w!.windowStart).toBe(iso(T0));
    expect(w!.windowEnd).toBe(iso(T0 + 60_000));
    const c = w!.counters;
    expect(totalRequests(c)).toBe(expected.requests);
    expect(c.requests).toEqual({
      edge: expected.edge,
      speculative: expected.speculative,
      cloud: expected.cloud,
    });
    expect(c.policyBlocks).toBe(expected.blocked);
    expect(c.redactions).toBe(expected.blocked);
    expect(c.draftTokens).toBe(expected.draftTokens);
    expect(c.acceptedTokens).toBe(expected.acceptedTokens);
    expect(c.errors).toBe(expected.errors);
    expect(w!.latency.ttftMs.count).toBe(expected.ttftSamples);
    expect(w!.latency.e2eMs.count).toBe(expected.requests - expected.blocked);
    expect(acc.pendingRequests).toBe(0);
  });

  it('starts a new window after closing and skips empty ones', () => {
    const acc = new FeedbackAccumulator(context(1), T0);
    acc.record({ route: 'edge' });
    expect(acc.closeWindow(T0 + 1000)).toHaveLength(1);
    expect(acc.closeWindow(T0 + 2000)).toEqual([]);
    acc.record({ route: 'cloud', escalated: true });
    const [w] = acc.closeWindow(T0 + 3000);
    expect(w!.windowStart).toBe(iso(T0 + 2000));
    expect(w!.counters.escalations).toBe(1);
  });

  it('segments a window when refs or fleet seq change', () => {
    const acc = new FeedbackAccumulator(context(1), T0);
    acc.record({ route: 'speculative', draftTokens: 10, acceptedTokens: 9 });
    acc.setContext(context(1), T0 + 5_000); // same context: no new segment
    acc.setContext(context(2), T0 + 10_000); // new fleet seq, same refs
    acc.record({ route: 'speculative', draftTokens: 10, acceptedTokens: 8 });
    acc.setContext(context(2, '2.0.0'), T0 + 20_000); // canary model
    acc.record({ route: 'speculative', draftTokens: 10, acceptedTokens: 3 });
    acc.record({ route: 'edge', fallback: true });
    const ws = acc.closeWindow(T0 + 60_000);
    expect(
      ws.map((w) => [w.fleetSeq, w.refs.model?.ref, w.windowStart, w.windowEnd, w.counters.acceptedTokens]),
    ).toEqual([
      [1, 'model/draft@1.0.0', iso(T0), iso(T0 + 10_000), 9],
      [2, 'model/draft@1.0.0', iso(T0 + 10_000), iso(T0 + 20_000), 8],
      [2, 'model/draft@2.0.0', iso(T0 + 20_000), iso(T0 + 60_000), 3],
    ]);
    expect(ws[2]!.counters.fallbacks).toBe(1);
    // The next window continues in the latest context.
    acc.record({ route: 'edge' });
    expect(acc.closeWindow(T0 + 120_000)[0]!.refs.model?.ref).toBe('model/draft@2.0.0');
  });

  it('counts a late outcome in the context that served it', () => {
    const acc = new FeedbackAccumulator(context(1), T0);
    acc.record({ route: 'edge' });
    acc.setContext(context(2, '2.0.0'), T0 + 10_000);
    acc.record({ route: 'cloud', context: context(1) }); // started before the switch
    acc.record({ route: 'cloud' });
    const ws = acc.closeWindow(T0 + 20_000);
    expect(ws.map((w) => [w.fleetSeq, w.counters.requests.edge, w.counters.requests.cloud])).toEqual([
      [1, 1, 1],
      [2, 0, 1],
    ]);
    // In the next window, an outcome of the old context gets a segment of its own.
    acc.record({ route: 'edge', context: context(1) });
    acc.record({ route: 'edge' });
    const next = acc.closeWindow(T0 + 30_000);
    expect(next.map((w) => w.fleetSeq).sort()).toEqual([1, 2]);
    for (const w of next) expect(windowSchema.safeParse(w).success).toBe(true);
  });

  it('treats adapter order as irrelevant and clamps nonsense counts', () => {
    const acc = new FeedbackAccumulator(context(1, '1.0.0', ['a', 'b']), T0);
    const swapped = context(1, '1.0.0', ['a', 'b']);
    swapped.refs.adapters.reverse();
    acc.setContext(swapped, T0 + 1);
    acc.record({
      route: 'speculative',
      draftTokens: 5,
      acceptedTokens: 9,
      verifyRounds: -3,
      outputTokens: Number.NaN,
    });
    const ws = acc.closeWindow(T0 + 2);
    expect(ws).toHaveLength(1);
    expect(ws[0]!.counters).toMatchObject({
      draftTokens: 5,
      acceptedTokens: 5,
      verifyRounds: 0,
      outputTokens: 0,
    });
  });
});
