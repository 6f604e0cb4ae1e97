/**
 * PII detection: every generated value of every type is found with the right type and exact span,
 * number-like text that is not PII (Luhn-invalid numbers, order numbers, dates, prices, versions)
 * is left alone, overlaps resolve deterministically, and custom policy patterns work.
 */
import { describe, expect, it } from 'vitest';
import { BUILTIN_DETECTORS } from '../../src/policy/schema.js';
import { detectPii, isValidSsn, luhnValid, resolveOverlaps } from '../../src/policy/pii.js';
import { NEGATIVE_CASES, card, generateSentences, iban, mulberry32, phone } from './pii-fixtures.js';

const ALL = { detectors: [...BUILTIN_DETECTORS] };

describe('detectPii', () => {
  it('finds every generated value with its type and exact text (600 sentences, 6 types)', () => {
    const sentences = generateSentences(42, 100);
    expect(sentences.length).toBe(600);
    for (const s of sentences) {
      const spans = detectPii(s.text, ALL);
      expect(
        spans.map((x) => `${x.type}:${x.value}`),
        s.text,
      ).toEqual(s.samples.map((x) => `${x.type}:${x.value}`));
      for (const span of spans) expect(s.text.slice(span.start, span.end)).toBe(span.value);
    }
  });

  it.each(NEGATIVE_CASES)('leaves non-PII alone: %s', (text) => {
    expect(detectPii(text, ALL)).toEqual([]);
  });

  it('needs a checksum: Luhn-invalid cards and mod-97-invalid IBANs are not redacted', () => {
    const rng = mulberry32(7);
    for (let i = 0; i < 50; i++) {
      const valid = card(rng);
      const d = valid.replace(/[ -]/g, '');
      const last = Number(d.at(-1));
      const broken = valid.slice(0, -1) + String((last + 1) % 10);
      expect(luhnValid(broken.replace(/[ -]/g, ''))).toBe(false);
      expect(detectPii(`card ${broken} please`, ALL)).toEqual([]);
      const ib = iban(rng);
      const bad = ib.slice(0, 2) + String((Number(ib[2]) + 1) % 10) + ib.slice(3);
      expect(detectPii(`iban ${bad}.`, ALL).filter((s) => s.type === 'iban')).toEqual([]);
    }
  });

  it('finds formatted phones but not bare digit runs of the same digits', () => {
    const rng = mulberry32(3);
    for (let i = 0; i < 40; i++) {
      const p = phone(rng);
      expect(detectPii(`ring ${p} now`, ALL).map((s) => s.value)).toEqual([p]);
      const bare = p.replace(/\D/g, '');
      expect(detectPii(`order ${bare} shipped`, ALL).filter((s) => s.type === 'phone')).toEqual([]);
    }
  });

  it('finds a card followed by an expiry or preceded by an order number', () => {
    expect(detectPii('card 4111 1111 1111 1111 12/26', ALL).map((s) => s.value)).toEqual([
      '4111 1111 1111 1111',
    ]);
    expect(detectPii('order 1234 4111111111111111', ALL).map((s) => s.value)).toEqual(['4111111111111111']);
  });

  it('drops a trailing group that makes a phone invalid', () => {
    expect(detectPii('call +1 415 555 2671 2024 please', ALL).map((s) => s.value)).toEqual([
      '+1 415 555 2671',
    ]);
  });

  it('excludes never-issued SSN ranges', () => {
    for (const ssn of ['000-12-3456', '666-12-3456', '912-12-3456', '123-00-4567', '123-45-0000']) {
      expect(detectPii(`number ${ssn} here`, ALL), ssn).toEqual([]);
    }
    expect(isValidSsn('123', '45', '6789')).toBe(true);
    expect(isValidSsn('078', '05', '1120')).toBe(false); // the SSA's advertising number
    expect(detectPii('SSN 123-45-6789', ALL).map((s) => s.type)).toEqual(['national_id']);
  });

  it('redacts a labelled identifier but not the label', () => {
    const spans = detectPii('My passport number is X12345678, thanks', ALL);
    expect(spans.map((s) => s.value)).toEqual(['X12345678']);
    expect(detectPii('my passport expires soon', ALL)).toEqual([]);
  });

  it('finds IPv4 and IPv6 but not version strings, times or code', () => {
    const spans = detectPii('from 192.168.10.5 and fe80::1ff:fe23:4567:890a and ::ffff:192.0.2.1', ALL);
    expect(spans.map((s) => s.value)).toEqual([
      '192.168.10.5',
      'fe80::1ff:fe23:4567:890a',
      '::ffff:192.0.2.1',
    ]);
    expect(detectPii('v1.2.3.4 at 10:30:00, a::b, 1.2.3.4.5, 256.1.1.1, 01.2.3.4', ALL)).toEqual([]);
  });

  it('runs only the detectors the policy lists', () => {
    const text = 'mail a@example.com or call +44 20 7946 0958';
    expect(detectPii(text, { detectors: ['email'] }).map((s) => s.type)).toEqual(['email']);
    expect(detectPii(text, { detectors: [] })).toEqual([]);
  });

  it('applies custom patterns with their flags and never loops on empty matches', () => {
    const cfg = {
      detectors: [],
      patterns: [
        { name: 'employee_id', regex: 'EMP-[0-9]{6}' },
        { name: 'ticket_id', regex: 'TCK-[A-Z]{2}[0-9]{5}', flags: 'i' },
        { name: 'maybe', regex: 'x*' },
      ],
    };
    const spans = detectPii('EMP-123456 opened tck-ab12345 and TCK-CD54321', cfg);
    expect(spans.map((s) => `${s.type}:${s.value}`)).toEqual([
      'employee_id:EMP-123456',
      'ticket_id:tck-ab12345',
      'ticket_id:TCK-CD54321',
    ]);
  });

  it('resolves overlaps: longest wins, then rank, then earlier start', () => {
    const spans = resolveOverlaps([
      { type: 'phone', start: 0, end: 10, value: 'a'.repeat(10), rank: 5 },
      { type: 'card', start: 2, end: 18, value: 'b'.repeat(16), rank: 1 },
      { type: 'ip', start: 20, end: 25, value: 'c'.repeat(5), rank: 9 },
      { type: 'email', start: 22, end: 27, value: 'd'.repeat(5), rank: 3 },
    ]);
    expect(spans.map((s) => s.type)).toEqual(['card', 'email']);
    // An email that contains a Luhn-valid card number is one email.
    const e = 'pay 4111111111111111@example.com';
    expect(detectPii(e, ALL).map((s) => s.type)).toEqual(['email']);
    // An IBAN whose digits happen to contain a phone- or card-like run stays one IBAN.
    expect(detectPii('DE89 3704 0044 0532 0130 00', ALL).map((s) => s.type)).toEqual(['iban']);
  });

  it('stays linear on adversarial input (long digit, hex and colon runs)', () => {
    const inputs = [
      '1 '.repeat(20_000),
      '+1'.repeat(10_000) + 'x',
      'a:'.repeat(20_000) + 'g',
      '0-'.repeat(20_000),
      `${'a'.repeat(20_000)}@`,
      'DE89'.repeat(10_000),
    ];
    for (const text of inputs) {
      const t0 = performance.now();
      detectPii(text, ALL);
      // Generous: a quadratic blow-up on 40k characters takes minutes, linear takes milliseconds.
      expect(performance.now() - t0, text.slice(0, 20)).toBeLessThan(5_000);
    }
  });
});
