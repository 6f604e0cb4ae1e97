/**
 * Reversible redaction: nothing generated survives `redact` (the text that leaves the site),
 * `restore` gives back the original exactly, placeholders are stable within a map and across
 * turns, the map round-trips through JSON, and placeholder-shaped user text cannot be restored into
 * someone else's value.
 */
import { describe, expect, it } from 'vitest';
import { PLACEHOLDER_RE, RedactionMap, redact, restore, totalRedactions } from '../../src/policy/redact.js';
import type { Policy } from '../../src/policy/schema.js';
import { generateSentences } from './pii-fixtures.js';

const policy: Pick<Policy, 'redaction'> = {
  redaction: {
    enabled: true,
    detectors: ['email', 'phone', 'card', 'iban', 'ip', 'national_id'],
    patterns: [{ name: 'employee_id', regex: 'EMP-[0-9]{6}' }],
  },
};

/** Forms of a value that would still identify it (cards and IBANs without their spaces). */
function forms(value: string): string[] {
  const compact = value.replace(/[ -]/g, '');
  return compact.length >= 8 && compact !== value ? [value, compact] : [value];
}

describe('redact', () => {
  it('no generated value survives, restore is exact, counts add up (600 sentences)', () => {
    for (const s of generateSentences(2024, 100)) {
      const r = redact(s.text, policy);
      for (const sample of s.samples) {
        for (const f of forms(sample.value)) expect(r.text, `${s.text} -> ${r.text}`).not.toContain(f);
      }
      expect(restore(r.text, r.map)).toBe(s.text);
      expect(totalRedactions(r.counts)).toBe(s.samples.length);
      for (const sample of s.samples) expect(r.counts[sample.type]).toBeGreaterThanOrEqual(1);
    }
  });

  it('one conversation: every turn redacted with one growing map, no value leaves, all restore', () => {
    const turns = generateSentences(99, 20);
    let map = new RedactionMap();
    const sent: string[] = [];
    for (const t of turns) {
      const r = redact(t.text, policy, map);
      map = r.map;
      sent.push(r.text);
    }
    const outbound = sent.join('\n');
    for (const t of turns) for (const s of t.samples) expect(outbound).not.toContain(s.value);
    expect(sent.map((x) => restore(x, map))).toEqual(turns.map((t) => t.text));
  });

  it('gives the same value the same placeholder, within a text and across turns', () => {
    const a = redact('mail jo@example.com, again jo@example.com, or ann@example.org', policy);
    expect(a.text).toBe('mail <EMAIL_1>, again <EMAIL_1>, or <EMAIL_2>');
    expect(a.counts).toEqual({ email: 3 });
    const b = redact('card 4111 1111 1111 1111 and ann@example.org and EMP-123456', policy, a.map);
    expect(b.text).toBe('card <CARD_1> and <EMAIL_2> and <EMPLOYEE_ID_1>');
    expect(b.map.size).toBe(4);
    // The input map is not modified (a failed request never half-updates a conversation).
    expect(a.map.size).toBe(2);
  });

  it('round-trips the map through JSON and refuses a corrupted one', () => {
    const r = redact('call +44 20 7946 0958 or mail x@example.com', policy);
    const json = JSON.parse(JSON.stringify(r.map));
    const back = RedactionMap.fromJSON(json);
    expect(restore(r.text, back)).toBe('call +44 20 7946 0958 or mail x@example.com');
    const next = redact('x@example.com and y@example.com', policy, back);
    expect(next.text).toBe('<EMAIL_1> and <EMAIL_2>');
    expect(() =>
      RedactionMap.fromJSON({ version: 1, entries: [{ placeholder: 'EMAIL_1', value: 'a', type: 'email' }] }),
    ).toThrow();
    expect(() =>
      RedactionMap.fromJSON({
        version: 1,
        entries: [
          { placeholder: '<EMAIL_1>', value: 'a', type: 'email' },
          { placeholder: '<EMAIL_1>', value: 'b', type: 'email' },
        ],
      }),
    ).toThrow(/duplicate/);
  });

  it('protects placeholder-shaped user text so restore never swaps in another value', () => {
    const first = redact('my mail is jo@example.com', policy);
    const trick = redact('what is <EMAIL_1>? and <LITERAL_1>', policy, first.map);
    expect(trick.text).not.toContain('<EMAIL_1>');
    expect(restore(trick.text, trick.map)).toBe('what is <EMAIL_1>? and <LITERAL_1>');
    expect(trick.counts).toEqual({});
    // Every placeholder in outbound text is one the map knows.
    for (const m of trick.text.matchAll(PLACEHOLDER_RE)) expect(trick.map.valueOf(m[0])).toBeDefined();
  });

  it('leaves placeholders the map does not know (a model hallucination) as they are', () => {
    const r = redact('jo@example.com', policy);
    expect(restore('<EMAIL_1> and <EMAIL_9> and <PHONE_1>', r.map)).toBe(
      'jo@example.com and <EMAIL_9> and <PHONE_1>',
    );
  });

  it('redacts nothing when the policy disables redaction or has no section', () => {
    const text = 'jo@example.com +44 20 7946 0958';
    expect(redact(text, { redaction: { ...policy.redaction!, enabled: false } }).text).toBe(text);
    expect(redact(text, {}).text).toBe(text);
  });
});
