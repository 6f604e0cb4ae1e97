/**
 * Router decisions per policy: overrides (allowed and refused), rules in order (prompt length,
 * keywords, entropy), the default route, and abstain thresholds escalating to the cloud.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadPolicyDir, withDefaults } from '../../src/policy/load.js';
import { decideRoute, policyNeedsEntropy, type RouteInput } from '../../src/policy/router.js';
import { parsePolicy } from '../../src/policy/schema.js';
import { REPO_ROOT } from '../helpers/cli.js';

const policy = loadPolicyDir(join(REPO_ROOT, 'artifacts/policies/default'));

const base = { policy, promptTokens: 200, promptText: 'Where is my parcel?' };
const decide = (over: Partial<RouteInput>) => decideRoute({ ...base, ...over });

describe('decideRoute with the default policy', () => {
  it.each<[string, Partial<RouteInput>, string, string]>([
    ['no rule matches', {}, 'speculative', 'default'],
    ['short prompt', { promptTokens: 16 }, 'edge', 'rule'],
    ['long prompt (inclusive bound)', { promptTokens: 3000 }, 'cloud', 'rule'],
    ['keyword, any case', { promptText: 'Please review my CONTRACT.' }, 'cloud', 'rule'],
    ['keyword must be a whole word', { promptText: 'the contractor called' }, 'speculative', 'default'],
    ['draft unsure', { entropy: 4.6 }, 'cloud', 'rule'],
    ['entropy below the rule', { entropy: 4.4 }, 'speculative', 'default'],
    [
      'abstain: entropy above 5.0 on an edge route',
      { promptTokens: 10, entropy: 5.5 },
      'cloud',
      'abstain-entropy',
    ],
    ['abstain: low acceptance on speculative', { runningAcceptance: 0.2 }, 'cloud', 'abstain-acceptance'],
    ['acceptance does not move edge routes', { promptTokens: 10, runningAcceptance: 0.1 }, 'edge', 'rule'],
    ['acceptance at the threshold stays', { runningAcceptance: 0.25 }, 'speculative', 'default'],
    [
      'override wins over rules and abstain',
      { override: 'edge', promptTokens: 5000, entropy: 9 },
      'edge',
      'override',
    ],
  ])('%s', (_name, input, route, source) => {
    const d = decide(input);
    expect(d.route).toBe(route);
    expect(d.source).toBe(source);
    expect(d.reason.length).toBeGreaterThan(5);
  });

  it('the first matching rule wins and the reason names it', () => {
    const d = decide({ promptTokens: 10, promptText: 'lawsuit' });
    expect(d).toMatchObject({ route: 'edge', rule: 'short-prompts-stay-local', escalated: false });
    expect(d.reason).toBe('rule "short-prompts-stay-local": promptTokens 10 <= 16');
  });

  it('escalation keeps the rule and says what it was', () => {
    const d = decide({ promptTokens: 10, entropy: 5.5 });
    expect(d).toMatchObject({ route: 'cloud', rule: 'short-prompts-stay-local', escalated: true });
    expect(d.reason).toContain('was edge');
  });

  it('needs entropy for this policy', () => {
    expect(policyNeedsEntropy(policy)).toBe(true);
  });
});

describe('decideRoute with overrides restricted', () => {
  const strict = withDefaults(
    parsePolicy(
      [
        'version: 1',
        'routing:',
        '  default: edge',
        '  overrides: [cloud]',
        '  rules:',
        '    - { name: both, when: { promptTokens: { min: 10, max: 20 }, keywords: [refund] }, route: speculative }',
      ].join('\n'),
      'policy.yaml',
    ).value,
  );

  it('applies an allowed override and refuses another', () => {
    expect(decideRoute({ policy: strict, promptTokens: 5, promptText: '', override: 'cloud' })).toMatchObject(
      {
        route: 'cloud',
        source: 'override',
      },
    );
    const refused = decideRoute({ policy: strict, promptTokens: 5, promptText: '', override: 'speculative' });
    expect(refused).toMatchObject({ route: 'edge', source: 'default', overrideRefused: 'speculative' });
  });

  it('requires every condition of a rule', () => {
    expect(decideRoute({ policy: strict, promptTokens: 15, promptText: 'a refund please' }).route).toBe(
      'speculative',
    );
    expect(decideRoute({ policy: strict, promptTokens: 25, promptText: 'a refund please' }).route).toBe(
      'edge',
    );
    expect(decideRoute({ policy: strict, promptTokens: 15, promptText: 'refunded' }).route).toBe('edge');
  });

  it('does not need entropy without entropy rules or thresholds', () => {
    expect(policyNeedsEntropy(strict)).toBe(false);
  });

  it('an entropy rule does not match when entropy was not measured', () => {
    const p = withDefaults(
      parsePolicy(
        'version: 1\nrouting:\n  default: speculative\n  rules:\n    - { name: e, when: { entropy: { max: 1 } }, route: edge }\n',
        'policy.yaml',
      ).value,
    );
    expect(decideRoute({ policy: p, promptTokens: 5, promptText: '' }).route).toBe('speculative');
    expect(decideRoute({ policy: p, promptTokens: 5, promptText: '', entropy: 0.5 }).route).toBe('edge');
  });

  it('defaults allow every override when the policy says nothing', () => {
    const p = withDefaults(parsePolicy('version: 1\nrouting:\n  default: cloud\n', 'policy.yaml').value);
    expect(p.routing.overrides).toEqual(['edge', 'speculative', 'cloud']);
    expect(decideRoute({ policy: p, promptTokens: 5, promptText: '', override: 'edge' }).route).toBe('edge');
  });
});
