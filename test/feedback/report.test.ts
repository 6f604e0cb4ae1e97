/**
 * Feedback reports: the schema (fixed histogram bounds, consistent counts), histogram maths, and
 * signing/verification: only the key declared for the report's site counts; a report signed by
 * an undeclared key or another site's key, a report claiming another site, a tampered payload and
 * another payload type are all rejected with exit code 4.
 */
import { describe, expect, it } from 'vitest';
import { VerificationError } from '../../src/foundation/errors.js';
import { PayloadType, signEnvelope } from '../../src/registry/envelope.js';
import { generateKeyPair, type KeyPair } from '../../src/registry/keys.js';
import {
  LATENCY_BOUNDS_MS,
  emptyCounters,
  emptyHistogram,
  histogramQuantile,
  mergeHistograms,
  observe,
  reportSchema,
  signReport,
  sumWindows,
  verifyReport,
  type DeclaredSiteKeys,
  type FeedbackReport,
} from '../../src/feedback/report.js';
import { context } from './fixtures.js';

function report(site: string, seq: number): FeedbackReport {
  const ttft = emptyHistogram();
  observe(ttft, 42);
  const counters = emptyCounters();
  counters.requests.speculative = 1;
  counters.draftTokens = 10;
  counters.acceptedTokens = 7;
  return {
    version: 1,
    site,
    seq,
    fleetSeq: 3,
    windowStart: '2025-01-01T00:00:00.000Z',
    windowEnd: '2025-01-01T00:01:00.000Z',
    refs: context(3).refs,
    counters,
    latency: { ttftMs: ttft, e2eMs: emptyHistogram() },
  };
}

const pub = (k: KeyPair) => ({ keyid: k.keyid, key: Buffer.from(k.publicKey).toString('base64') });

function verificationError(fn: () => unknown): VerificationError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(VerificationError);
    expect((err as VerificationError).exitCode).toBe(4);
    return err as VerificationError;
  }
  throw new Error('expected a VerificationError');
}

describe('histograms', () => {
  it('bucket by inclusive upper bound with an overflow bucket', () => {
    const h = emptyHistogram();
    for (const v of [0, 5, 5.01, 120000, 120001, -1, Number.NaN]) observe(h, v);
    expect(h.count).toBe(5);
    expect(h.counts[0]).toBe(2);
    expect(h.counts[1]).toBe(1);
    expect(h.counts[LATENCY_BOUNDS_MS.length - 1]).toBe(1);
    expect(h.counts[LATENCY_BOUNDS_MS.length]).toBe(1);
  });

  it('merge by summing and estimate quantiles conservatively', () => {
    const a = emptyHistogram();
    const b = emptyHistogram();
    for (let i = 1; i <= 90; i++) observe(a, 40);
    for (let i = 1; i <= 10; i++) observe(b, 900);
    const m = mergeHistograms(a, b);
    expect(m.count).toBe(100);
    expect(m.sum).toBe(90 * 40 + 10 * 900);
    expect(histogramQuantile(m, 0.5)).toBe(50);
    expect(histogramQuantile(m, 0.95)).toBe(1000);
    expect(histogramQuantile(emptyHistogram(), 0.5)).toBeUndefined();
    const s = sumWindows([report('a', 1), report('b', 1)]);
    expect(s.counters.draftTokens).toBe(20);
    expect(s.latency.ttftMs.count).toBe(2);
  });
});

describe('reportSchema', () => {
  it('accepts a good report and refuses other bounds, inconsistent counts and unknown fields', () => {
    expect(reportSchema.safeParse(report('site-a', 1)).success).toBe(true);
    const bad1 = report('site-a', 1);
    bad1.latency.ttftMs.bounds = [1, 2, 3];
    expect(reportSchema.safeParse(bad1).success).toBe(false);
    const bad2 = report('site-a', 1);
    bad2.latency.ttftMs.count = 7;
    expect(reportSchema.safeParse(bad2).success).toBe(false);
    expect(reportSchema.safeParse({ ...report('site-a', 1), extra: 1 }).success).toBe(false);
    const bad3 = report('site-a', 1);
    bad3.counters.acceptedTokens = 11;
    expect(reportSchema.safeParse(bad3).success).toBe(false);
    expect(reportSchema.safeParse({ ...report('site-a', 1), seq: 0 }).success).toBe(false);
    expect(() =>
      signReport({ ...report('site-a', 1), windowEnd: '1999-01-01T00:00:00.000Z' }, generateKeyPair()),
    ).toThrow(/windowStart is after windowEnd/);
  });
});

describe('signReport / verifyReport', () => {
  const a = generateKeyPair();
  const b = generateKeyPair();
  const stranger = generateKeyPair();
  const declared: DeclaredSiteKeys = { 'site-a': pub(a), 'site-b': pub(b) };

  it('verifies a report signed by its site’s declared key', () => {
    const env = signReport(report('site-a', 5), a);
    expect(verifyReport(env, declared, { expectSite: 'site-a', expectSeq: 5 })).toEqual(report('site-a', 5));
    // Deterministic: the same report signs to the same envelope (idempotent uploads).
    expect(signReport(report('site-a', 5), a)).toEqual(env);
  });

  it('rejects a report signed by an undeclared key', () => {
    const err = verificationError(() => verifyReport(signReport(report('site-a', 1), stranger), declared));
    expect(err.message).toContain('signed by unknown key');
  });

  it('rejects a report signed by another declared site’s key', () => {
    verificationError(() => verifyReport(signReport(report('site-a', 1), b), declared));
  });

  it('rejects a report for a site that is not declared', () => {
    const err = verificationError(() => verifyReport(signReport(report('site-x', 1), stranger), declared));
    expect(err.message).toContain('site "site-x" is not declared');
  });

  it('rejects a report that sits under another site or seq', () => {
    const env = signReport(report('site-b', 2), b);
    expect(verificationError(() => verifyReport(env, declared, { expectSite: 'site-a' })).message).toContain(
      'not "site-a"',
    );
    expect(verificationError(() => verifyReport(env, declared, { expectSeq: 3 })).message).toContain('not 3');
  });

  it('rejects a tampered payload, another payload type and a malformed payload', () => {
    const env = signReport(report('site-a', 1), a);
    const forged = { ...report('site-a', 1) };
    forged.counters = { ...forged.counters, errors: 0, requests: { edge: 0, speculative: 1000, cloud: 0 } };
    const tampered = { ...env, payload: Buffer.from(JSON.stringify(forged)).toString('base64') };
    expect(verificationError(() => verifyReport(tampered, declared)).message).toContain('bad signature');
    const otherType = signEnvelope(PayloadType.head, report('site-a', 1), [a]);
    expect(verificationError(() => verifyReport(otherType, declared)).message).toContain(
      'wrong payload type',
    );
    const malformed = signEnvelope(PayloadType.feedback, { site: 'site-a', seq: 1 }, [a]);
    expect(verificationError(() => verifyReport(malformed, declared)).message).toContain('invalid report');
    verificationError(() => verifyReport({ nope: true }, declared));
  });
});
