/**
 * Screening retrieved passages with the policy's block rules (retrieval-screen.ts): the same
 * matcher as the user's text (case folding, whole words, phrases across any whitespace, patterns,
 * first rule in policy order), passages kept in rank order, withheld ones counted per rule; the
 * retrieval step withholds before the context budget; feedback windows and `/metrics` count them.
 */
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { FeedbackAccumulator } from '../../../src/feedback/accumulator.js';
import { windowSchema } from '../../../src/feedback/report.js';
import { BlockRules } from '../../../src/policy/block.js';
import type { Policy } from '../../../src/policy/schema.js';
import { loadGeneration } from '../../../src/runtime/engine/generation.js';
import { RuntimeMetrics } from '../../../src/runtime/engine/metrics.js';
import { CONTEXT_SHARE, passageLine, retrieve } from '../../../src/runtime/engine/retrieval.js';
import { screenPassages } from '../../../src/runtime/engine/retrieval-screen.js';
import { ragGenerationDir } from '../../index-site/fixtures.js';
import { context } from '../../feedback/fixtures.js';
import { TEST_CONTEXT, TEST_POLICY } from '../serve/helpers.js';

const policy: Pick<Policy, 'block'> = {
  block: [
    { name: 'credentials', patterns: ['\\bapi[_ -]?key\\s*[:=]'], message: 'no credentials' },
    { name: 'codewords', keywords: ['blueheron', 'red kite'], message: 'not discussed here' },
    { name: 'also-codewords', keywords: ['blueheron'], message: 'second rule' },
  ],
};
const rules = new BlockRules(policy);
const screen = (texts: string[]) =>
  screenPassages(
    texts.map((text, i) => ({ id: `p${i}`, text })),
    rules,
    passageLine,
  );

describe('screenPassages', () => {
  it('keeps unmatched passages in rank order and counts the withheld ones by first matching rule', () => {
    const s = screen([
      'The till resets with its power key.',
      'Project BLUEHERON ships in March.',
      'The staging API-KEY = abc123 lives in the vault.',
      'RED\n  KITE is the code name of the new till.',
      'Wifi resets with the button on its back.',
    ]);
    expect(s.kept.map((p) => p.id)).toEqual(['p0', 'p4']);
    expect(s.withheld).toEqual([
      { rule: 'codewords', passages: 2 },
      { rule: 'credentials', passages: 1 },
    ]);
    expect(s.count).toBe(3);
  });

  it('means what it means for the user text: whole words only, and the passage id counts', () => {
    const texts = ['blueherons nest by the lake', 'the redkite bakery', 'no codeword here'];
    for (const t of texts) expect(rules.check(passageLine({ id: 'x', text: t })).blocked).toBe(false);
    expect(screen(texts).kept).toHaveLength(3);
    const byId = screenPassages([{ id: 'blueheron-plan#0', text: 'dates' }], rules, passageLine);
    expect(byId.withheld).toEqual([{ rule: 'codewords', passages: 1 }]);
  });

  it('keeps everything under a policy without block rules', () => {
    const s = screenPassages([{ id: 'a', text: 'blueheron' }], new BlockRules({ block: [] }), passageLine);
    expect(s).toEqual({ kept: [{ id: 'a', text: 'blueheron' }], withheld: [], count: 0 });
  });
});

describe('the retrieval step withholds before the context budget', () => {
  it('a long withheld passage takes no room from the one that may be sent', async () => {
    const time = '2026-11-01T00:00:00Z';
    // One passage (under the 96-word chunk) of rare words: alone it overflows half the 512-token context.
    const long = `Till reset procedure for project BlueHeron: ${'zqxv-kwpf-vjmz '.repeat(80)}`;
    const dir = await ragGenerationDir(
      'kb',
      [
        { id: 'plan', text: long, time },
        { id: 'reset', text: 'To reset the till hold its power key.', time },
      ],
      TEST_POLICY.replace(
        'block:\n',
        'block:\n  - name: codewords\n    keywords: [blueheron]\n    message: no\n',
      ),
    );
    const g = await loadGeneration(dir, { id: 'e'.repeat(20), context: TEST_CONTEXT });
    try {
      // The premise: the withheld passage ranks first and alone overflows the budget (so, attached
      // first, it would have left no room for the other).
      const ranked = await g.indexes.get('kb')!.reader.query('till reset procedure', { k: 2 });
      expect(ranked.passages.map((p) => p.id)).toEqual(['plan#0', 'reset#0']);
      const first = ranked.passages[0]!;
      expect(g.tokenizer.encode(passageLine(first)).length).toBeGreaterThan(g.maxPositions * CONTEXT_SHARE);
      const r = await retrieve(g, {
        model: 'draft',
        prompt: { messages: [{ role: 'user', content: 'till reset procedure' }] },
        stops: [],
        maxTokens: 4,
        temperature: undefined,
        topP: undefined,
        seed: undefined,
        ignoreEos: false,
        override: undefined,
        retrieval: { index: 'kb', k: 2 },
      });
      expect(r?.citations).toEqual(['reset#0']);
      expect(r?.info).toMatchObject({
        passages: 1,
        withheld: 1,
        withheldBy: [{ rule: 'codewords', passages: 1 }],
      });
      expect(r?.info).not.toHaveProperty('dropped');
      expect(r?.outcome).toMatchObject({ passages: 1, withheld: [{ rule: 'codewords', passages: 1 }] });
      expect(JSON.stringify(r?.messages)).not.toMatch(/blueheron/i);
    } finally {
      await g.dispose();
    }
  });
});

describe('counting withheld passages', () => {
  const T0 = Date.parse('2025-03-01T12:00:00.000Z');

  it('feedback windows sum them in retrieval.withheld, absent while none was withheld', () => {
    const acc = new FeedbackAccumulator(context(1), T0);
    acc.record({ route: 'edge', retrieval: { ms: 2, passages: 3 } });
    const [quiet] = acc.closeWindow(T0 + 1000);
    expect(quiet?.retrieval).not.toHaveProperty('withheld');
    expect(windowSchema.safeParse(quiet).success).toBe(true);
    acc.record({ route: 'edge', retrieval: { ms: 2, passages: 1, withheld: [{ rule: 'a', passages: 2 }] } });
    acc.record({
      route: 'cloud',
      retrieval: {
        ms: 3,
        passages: 0,
        withheld: [
          { rule: 'a', passages: 1 },
          { rule: 'b', passages: 1 },
        ],
      },
    });
    const [w] = acc.closeWindow(T0 + 2000);
    expect(w?.retrieval).toMatchObject({ requests: 2, hits: 1, passages: 1, withheld: 4 });
    expect(windowSchema.safeParse(w).success).toBe(true);
  });

  it('/metrics counts them by rule', async () => {
    const registry = new Registry();
    const m = new RuntimeMetrics(registry, { inFlight: () => 0, queued: () => 0 });
    m.outcome({
      route: 'edge',
      retrieval: { ms: 1, passages: 0, withheld: [{ rule: 'codewords', passages: 2 }] },
    });
    m.outcome({ route: 'edge', retrieval: { ms: 1, passages: 2 } });
    const text = await registry.metrics();
    expect(text).toMatch(/edgectl_runtime_retrieval_withheld_total\{rule="codewords"\} 2\n/);
  });
});
