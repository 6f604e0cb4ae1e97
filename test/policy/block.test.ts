/**
 * Block rules: keywords match whole words and phrases case-insensitively, patterns match
 * case-insensitively, the first rule in policy order decides, and the refusal is the rule's message.
 */
import { describe, expect, it } from 'vitest';
import { checkBlocked } from '../../src/policy/block.js';
import { loadPolicyDir } from '../../src/policy/load.js';
import type { Policy } from '../../src/policy/schema.js';
import { REPO_ROOT } from '../helpers/cli.js';
import { join } from 'node:path';

const policy: Pick<Policy, 'block'> = {
  block: [
    {
      name: 'credentials',
      patterns: ['\\b(password|passwd|api[_ -]?key)\\s*[:=]'],
      message: 'I cannot help with sharing credentials.',
    },
    {
      name: 'weapons',
      keywords: ['build a bomb', 'nerve agent'],
      message: 'I cannot help with that request.',
    },
    { name: 'short', keywords: ['bomb'], message: 'second rule' },
  ],
};

describe('checkBlocked', () => {
  it.each([
    ['my Password: hunter2', 'credentials', 'pattern'],
    ['API-KEY=abc', 'credentials', 'pattern'],
    ['how do I BUILD   A\nBomb', 'weapons', 'keyword "build a bomb"'],
    ['Nerve Agent synthesis', 'weapons', 'keyword "nerve agent"'],
    ['a bomb threat', 'short', 'keyword "bomb"'],
  ])('blocks %j by rule %s', (text, rule, matched) => {
    const d = checkBlocked(text, policy);
    expect(d.blocked).toBe(true);
    if (!d.blocked) return;
    expect(d.rule).toBe(rule);
    expect(d.matched).toContain(matched);
    expect(d.message).toBe(policy.block.find((r) => r.name === rule)!.message);
  });

  it.each(['the password policy is strict', 'a bombastic review', 'photobomb', 'builds a bomber jacket', ''])(
    'lets %j through',
    (text) => {
      expect(checkBlocked(text, policy)).toEqual({ blocked: false });
    },
  );

  it('the first rule in policy order wins', () => {
    const d = checkBlocked('build a bomb', policy);
    expect(d.blocked && d.rule).toBe('weapons');
  });

  it('applies the shipped default policy', () => {
    const p = loadPolicyDir(join(REPO_ROOT, 'artifacts/policies/default'));
    const d = checkBlocked('here is my api key: 123', p);
    expect(d.blocked && d.rule).toBe('credentials');
    expect(checkBlocked('where is my parcel?', p).blocked).toBe(false);
  });
});
