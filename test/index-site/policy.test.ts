/**
 * The policy's `retrieval` section (src/policy/retrieval-policy.ts): rules and the staleness
 * budget parse with defaults, bad values are refused naming file:line and field, and a rule's
 * keywords match whole words of the last user message (first matching rule wins).
 */
import { describe, expect, it } from 'vitest';
import { matchRetrievalRule } from '../../src/policy/retrieval-policy.js';
import { parsePolicy } from '../../src/policy/schema.js';

const BASE = 'version: 1\nrouting:\n  default: edge\n';

describe('policy retrieval section', () => {
  it('parses rules and the budget with defaults; matches whole keywords, first rule wins', () => {
    const p = parsePolicy(
      `${BASE}retrieval:\n  rules:\n    - name: printers\n      index: kb\n      keywords: [printer]\n    - name: all\n      index: faq\n  maxAge: 7d\n`,
      'policy.yaml',
    ).value;
    expect(p.retrieval).toMatchObject({ stale: 'warn', maxAge: '7d' });
    expect(p.retrieval?.rules[0]).toMatchObject({ k: 4 });
    expect(matchRetrievalRule(p.retrieval, 'The Printer is jammed')?.name).toBe('printers');
    expect(matchRetrievalRule(p.retrieval, 'printers everywhere')?.name).toBe('all');
    expect(matchRetrievalRule(undefined, 'printer')).toBeUndefined();
  });

  it('refuses a bad budget, an unknown field and k past the limit, naming the field', () => {
    expect(() => parsePolicy(`${BASE}retrieval:\n  maxAge: soon\n`, 'policy.yaml')).toThrow(
      /policy\.yaml:5.*retrieval\.maxAge.*must be a duration/,
    );
    expect(() => parsePolicy(`${BASE}retrieval:\n  stale: ignore\n`, 'policy.yaml')).toThrow(
      /retrieval\.stale/,
    );
    expect(() =>
      parsePolicy(
        `${BASE}retrieval:\n  rules:\n    - name: r\n      index: kb\n      k: 50\n`,
        'policy.yaml',
      ),
    ).toThrow(/retrieval\.rules\.0\.k/);
  });
});
