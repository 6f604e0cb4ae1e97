/**
 * StreamRestorer: model output that holds placeholders is fed in chunks split at every possible
 * boundary (two chunks at each position, one character at a time) and at random: the output always
 * concatenates to `restore(full)` (so no placeholder fragment was ever emitted), no chunk holds a
 * mapped placeholder, and no output boundary falls inside a restored value. Text that cannot become
 * a placeholder streams through with no delay.
 */
import { describe, expect, it } from 'vitest';
import { RedactionMap, StreamRestorer, redact, restore } from '../../src/policy/redact.js';
import type { Policy } from '../../src/policy/schema.js';
import { mulberry32 } from './pii-fixtures.js';

const policy: Pick<Policy, 'redaction'> = {
  redaction: {
    enabled: true,
    detectors: ['email', 'phone', 'card', 'iban', 'ip', 'national_id'],
    patterns: [],
  },
};

// Twelve emails so that <EMAIL_1> is a prefix of <EMAIL_10>, <EMAIL_11>, <EMAIL_12>.
const prompt =
  Array.from({ length: 12 }, (_, i) => `u${i + 1}@example.com`).join(' ') +
  ' card 4111 1111 1111 1111, phone +44 20 7946 0958, iban DE89 3704 0044 0532 0130 00, ip 10.1.2.3, ssn 123-45-6789';
const { map } = redact(prompt, policy);

const OUTPUTS = [
  'Thanks! I will email <EMAIL_1> and <EMAIL_10> and cc <EMAIL_12>.',
  '<CARD_1><PHONE_1><IBAN_1>',
  'Refund to <IBAN_1> (card <CARD_1>), confirm at <EMAIL_11>; server <IP_1>, id <NATIONAL_ID_1>',
  'Edge cases: <EMAIL_13> is unknown, <EMAIL_1 is open, << <EMAIL_1>>, a < b, <CARD_1',
  'Unicode 🙂 <EMAIL_2> ✓ naïve <PHONE_1>🙂',
  'no placeholders at all',
  '<',
  '<EMAIL_1',
  '',
];

/** Feeds `chunks` and returns what the restorer emitted, chunk by chunk (the flush last). */
function stream(chunks: string[]): string[] {
  const r = new StreamRestorer(map);
  const out = chunks.map((c) => r.push(c));
  out.push(r.end());
  return out;
}

const placeholders = map.entries().map((e) => e.placeholder);

function checkOutput(full: string, outs: string[]): void {
  const expected = restore(full, map);
  // Equality also proves no fragment of a mapped placeholder was ever emitted: a placeholder sent
  // in two pieces would reach the concatenation unrestored.
  expect(outs.join('')).toBe(expected);
  const leaked = outs.filter((o) => placeholders.some((p) => o.includes(p)));
  expect(leaked).toEqual([]);
  // No output boundary falls inside a restored value.
  const inside = new Set<number>();
  let at = 0;
  let srcAt = 0;
  for (const m of full.matchAll(/<([A-Z][A-Z0-9_]*)_([1-9][0-9]*)>/g)) {
    at += m.index - srcAt;
    const value = map.valueOf(m[0]);
    const len = value?.length ?? m[0].length;
    if (value !== undefined) for (let i = at + 1; i < at + len; i++) inside.add(i);
    at += len;
    srcAt = m.index + m[0].length;
  }
  let pos = 0;
  const splits: number[] = [];
  for (const o of outs) {
    pos += o.length;
    if (inside.has(pos)) splits.push(pos);
  }
  expect(splits, `boundaries that split a value in ${JSON.stringify(expected)}`).toEqual([]);
}

describe('StreamRestorer', () => {
  it.each(OUTPUTS)('two chunks split at every position: %s', (full) => {
    for (let i = 0; i <= full.length; i++) checkOutput(full, stream([full.slice(0, i), full.slice(i)]));
  });

  it.each(OUTPUTS)('one UTF-16 code unit at a time: %s', (full) => {
    checkOutput(full, stream(full.split('')));
  });

  it('random splits into 1-40 chunks (2,000 trials)', () => {
    const rng = mulberry32(11);
    for (let t = 0; t < 2000; t++) {
      const full = OUTPUTS[t % OUTPUTS.length]!;
      const cuts = new Set<number>();
      const n = 1 + Math.floor(rng() * 40);
      for (let i = 0; i < n; i++) cuts.add(Math.floor(rng() * (full.length + 1)));
      const sorted = [...cuts].sort((a, b) => a - b);
      const chunks: string[] = [];
      let prev = 0;
      for (const c of sorted) {
        chunks.push(full.slice(prev, c));
        prev = c;
      }
      chunks.push(full.slice(prev));
      checkOutput(full, stream(chunks));
    }
  });

  it('holds back only what could still become a placeholder', () => {
    const r = new StreamRestorer(map);
    expect(r.push('Hello wor')).toBe('Hello wor');
    expect(r.push('ld, write to <EMA')).toBe('ld, write to ');
    expect(r.push('IL_1')).toBe('');
    expect(r.push('> now <X')).toBe('u1@example.com now <X');
    expect(r.push('> a<EMAIL_1')).toBe('> a');
    expect(r.push('0')).toBe('');
    expect(r.push('>')).toBe('u10@example.com');
    expect(r.push('<EMAIL_1')).toBe('');
    expect(r.end()).toBe('<EMAIL_1');
  });

  it('with an empty map passes everything through at once', () => {
    const r = new StreamRestorer(new RedactionMap());
    expect(r.push('<EMAIL_')).toBe('<EMAIL_');
    expect(r.end()).toBe('');
  });
});
