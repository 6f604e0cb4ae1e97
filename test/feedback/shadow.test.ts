/**
 * Shadow runs in feedback: the optional `shadow` field of a window and `refs.shadow` (reports
 * without them stay valid and sign/verify as before), the schema's checks on the shadow counters,
 * and the accumulator's `recordShadow`: per shadow ref, in the segment of the context that served
 * the request, closed with the window and absent from windows without shadow runs.
 */
import { describe, expect, it } from 'vitest';
import { generateKeyPair } from '../../src/registry/keys.js';
import { FeedbackAccumulator, type FeedbackContext } from '../../src/feedback/accumulator.js';
import {
  emptyCounters,
  emptyHistogram,
  reportSchema,
  signReport,
  verifyReport,
  type FeedbackReport,
} from '../../src/feedback/report.js';
import { context } from './fixtures.js';

const digest = (c: string) => `sha256:${c.repeat(64)}`;
const SHADOW = { ref: 'adapter/support@1.1.0', manifestDigest: digest('e') };

function withShadow(ctx: FeedbackContext): FeedbackContext {
  return { ...ctx, refs: { ...ctx.refs, shadow: [SHADOW] } };
}

function report(shadow: boolean): FeedbackReport {
  const counters = emptyCounters();
  counters.requests.speculative = 5;
  counters.draftTokens = 100;
  counters.acceptedTokens = 70;
  const ctx = shadow ? withShadow(context(3, '1.0.0', ['support'])) : context(3, '1.0.0', ['support']);
  return {
    version: 1,
    site: 'store-001',
    seq: 1,
    fleetSeq: 3,
    windowStart: '2025-01-01T00:00:00.000Z',
    windowEnd: '2025-01-01T00:01:00.000Z',
    refs: ctx.refs,
    counters,
    latency: { ttftMs: emptyHistogram(), e2eMs: emptyHistogram() },
    ...(shadow
      ? {
          shadow: [{ ...SHADOW, runs: 1, draftTokens: 20, acceptedTokens: 15, verifyRounds: 4, errors: 0 }],
        }
      : {}),
  };
}

describe('feedback shadow field', () => {
  it('is optional: reports with and without it are valid and verify with the site key', () => {
    const kp = generateKeyPair();
    const declared = { 'store-001': { keyid: kp.keyid, key: Buffer.from(kp.publicKey).toString('base64') } };
    for (const shadow of [false, true]) {
      const r = report(shadow);
      expect(reportSchema.safeParse(r).success).toBe(true);
      const back = verifyReport(signReport(r, kp), declared);
      expect(back).toEqual(r);
      expect('shadow' in back).toBe(shadow);
      expect(back.refs.shadow !== undefined).toBe(shadow);
    }
  });

  it('checks the shadow counters', () => {
    const r = report(true);
    const bad = { ...r, shadow: [{ ...r.shadow![0]!, acceptedTokens: 21 }] };
    expect(reportSchema.safeParse(bad).success).toBe(false);
    const negative = { ...r, shadow: [{ ...r.shadow![0]!, runs: -1 }] };
    expect(reportSchema.safeParse(negative).success).toBe(false);
    const extra = { ...r, shadow: [{ ...r.shadow![0]!, surprise: 1 }] };
    expect(reportSchema.safeParse(extra).success).toBe(false);
  });
});

describe('accumulator.recordShadow', () => {
  it('counts shadow runs per ref in the serving context and closes them with the window', () => {
    const plain = context(3, '1.0.0', ['support']);
    const shadowed = withShadow(context(4, '1.0.0', ['support']));
    const acc = new FeedbackAccumulator(plain, 0);
    acc.record({ route: 'speculative', draftTokens: 10, acceptedTokens: 7 });
    const w1 = acc.closeWindow(1000);
    expect(w1).toHaveLength(1);
    expect(w1[0]).not.toHaveProperty('shadow');

    acc.setContext(shadowed, 1000);
    acc.record({ route: 'speculative', draftTokens: 10, acceptedTokens: 7 });
    acc.recordShadow({ ...SHADOW, draftTokens: 12, acceptedTokens: 9, verifyRounds: 3 });
    acc.recordShadow({ ...SHADOW, draftTokens: 8, acceptedTokens: 9, verifyRounds: 2 });
    acc.recordShadow({ ...SHADOW, draftTokens: 50, acceptedTokens: 50, verifyRounds: 9, error: true });
    // A run of a request the previous context served counts there, not in the shadowed segment.
    acc.recordShadow({ ...SHADOW, draftTokens: 4, acceptedTokens: 4, verifyRounds: 1 }, plain);
    // Shadow runs are not requests.
    expect(acc.pendingRequests).toBe(1);
    const w2 = acc.closeWindow(2000);
    const seg = w2.find((w) => w.fleetSeq === 4)!;
    expect(seg.refs.shadow).toEqual([SHADOW]);
    expect(seg.shadow).toEqual([
      // accepted is capped at drafted; the failed run counts as a run and an error only
      { ...SHADOW, runs: 3, draftTokens: 20, acceptedTokens: 17, verifyRounds: 5, errors: 1 },
    ]);
    const old = w2.find((w) => w.fleetSeq === 3)!;
    expect(old.shadow).toEqual([
      { ...SHADOW, runs: 1, draftTokens: 4, acceptedTokens: 4, verifyRounds: 1, errors: 0 },
    ]);
    // A window with shadow runs only still closes with them.
    acc.recordShadow({ ...SHADOW, draftTokens: 3, acceptedTokens: 1, verifyRounds: 1 });
    expect(acc.closeWindow(3000).map((w) => w.shadow?.[0]?.runs)).toEqual([1]);
    for (const w of w2)
      expect(reportSchema.safeParse({ ...w, version: 1, site: 's', seq: 1 }).success).toBe(true);
  });
});
