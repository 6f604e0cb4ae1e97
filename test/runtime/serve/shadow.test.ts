// Shadow runs (rollout shadow steps) in the site runtime against a real verifier process: a
// sampled request on an adapter with a same-name shadow adapter is re-decoded with the shadow after
// the response, counted (drafted/accepted tokens, rounds) under the shadow's ref, and never changes
// the served answer or its outcome; unsampled requests, requests on other adapters and a sample of
// 0 run none; at most one shadow runs at a time, and a failing verifier is only counted.
import { symlinkSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadGeneration, type LoadedGeneration } from '../../../src/runtime/engine/generation.js';
import { ShadowRunner } from '../../../src/runtime/engine/shadow.js';
import { VerifierPool } from '../../../src/runtime/engine/verifier-pool.js';
import type { FeedbackContext, ShadowOutcome } from '../../../src/feedback/accumulator.js';
import {
  ADAPTERS_DIR,
  CountingSource,
  makeGenerationDir,
  startRecordingProxy,
  startTestRuntime,
  startVerifierProcess,
  TEST_CONTEXT,
  type RecordingProxy,
  type TestRuntime,
  type VerifierProcess,
} from './helpers.js';

const SHADOW_REF = { ref: 'adapter/support@1.2.0', manifestDigest: `sha256:${'d'.repeat(64)}` };
const CONTEXT: FeedbackContext = { ...TEST_CONTEXT, refs: { ...TEST_CONTEXT.refs, shadow: [SHADOW_REF] } };

async function complete(url: string, body: Record<string, unknown>) {
  const res = await fetch(`${url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  expect(res.status).toBe(200);
  return (await res.json()) as {
    choices: { text: string }[];
    edgectl: { stats: { draftTokens: number; verifyRounds: number } };
  };
}

async function until(cond: () => boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}

const REQUEST = {
  model: 'draft:support',
  prompt: 'Customer: Hello, my order has not arrived yet. Can you help me?\nAgent:',
  max_tokens: 24,
  // Greedy: the served text is then a function of the prompt alone, so two servers must agree.
  temperature: 0,
  seed: 11,
};

describe('shadow runs in the site runtime (real verifier process)', () => {
  let verifier: VerifierProcess;
  let proxy: RecordingProxy;
  let gen: LoadedGeneration;
  let plain: TestRuntime;
  let shadowed: TestRuntime;
  const runs: { outcome: ShadowOutcome; context: FeedbackContext }[] = [];

  beforeAll(async () => {
    verifier = await startVerifierProcess();
    proxy = await startRecordingProxy(verifier.url);
    const dir = makeGenerationDir({ adapters: ['support'] });
    mkdirSync(join(dir, 'shadow'));
    symlinkSync(join(ADAPTERS_DIR, 'support-bad'), join(dir, 'shadow', 'support'));
    gen = await loadGeneration(dir, { id: 'b'.repeat(20), context: CONTEXT });
    plain = await startTestRuntime(gen, proxy.url);
    shadowed = await startTestRuntime(gen, proxy.url, {
      shadowSample: 1,
      onShadow: (outcome, context) => runs.push({ outcome, context }),
    });
  }, 60_000);
  afterAll(async () => {
    await plain?.server.close(1000);
    await shadowed?.server.close(1000);
    await gen?.dispose();
    await proxy?.close();
    await verifier?.kill('SIGTERM');
  });

  it('loads shadow adapters apart from the served ones', () => {
    expect(gen.adapterNames).toEqual(['support']);
    expect([...gen.shadowAdapters.keys()]).toEqual(['support']);
    expect(gen.shadowAdapters.get('support')?.ref).toEqual(SHADOW_REF);
  });

  it('runs a counted shadow after the response and never changes what was served', async () => {
    for (let i = 0; i < 3; i++) {
      // The last one is served on the draft alone, sampled: its text depends on the served adapter.
      const body =
        i < 2
          ? { ...REQUEST, seed: REQUEST.seed + i }
          : { ...REQUEST, temperature: 0.8, edgectl: { route: 'edge' } };
      const a = await complete(plain.server.url, body);
      const before = runs.length;
      const verifyCallsBefore = proxy.requests.filter((r) => r.path.includes('verify')).length;
      const b = await complete(shadowed.server.url, body);
      // The same served text with and without the shadow (its statistics depend on timing: adaptive k).
      expect(b.choices[0]?.text).toBe(a.choices[0]?.text);
      // The served outcome is the served request's own numbers, none of the shadow's.
      expect(shadowed.outcomes.at(-1)?.draftTokens).toBe(b.edgectl.stats.draftTokens);
      await until(() => runs.length === before + 1);
      const run = runs.at(-1)!;
      expect(run.context).toBe(gen.context);
      expect(run.outcome.ref).toBe(SHADOW_REF.ref);
      expect(run.outcome.manifestDigest).toBe(SHADOW_REF.manifestDigest);
      expect(run.outcome.error).toBeUndefined();
      expect(run.outcome.draftTokens).toBeGreaterThan(0);
      expect(run.outcome.acceptedTokens).toBeLessThanOrEqual(run.outcome.draftTokens);
      expect(run.outcome.verifyRounds).toBeGreaterThan(0);
      // The shadow's drafts went to the real verifier (served rounds plus its own).
      const verifyCalls = proxy.requests.filter((r) => r.path.includes('verify')).length;
      expect(verifyCalls - verifyCallsBefore).toBeGreaterThanOrEqual(
        run.outcome.verifyRounds + (b.edgectl.stats.draftTokens > 0 ? 1 : 0),
      );
    }
    // Served outcomes are the served requests only, one each.
    expect(shadowed.outcomes).toHaveLength(3);
    await until(() => shadowed.source.outstanding === 0);
  }, 60_000);

  it('drafts the shadow of a constrained request under the same grammar (every shadow round sends masks)', async () => {
    const schema = {
      type: 'object',
      properties: {
        intent: { enum: ['refund', 'other'] },
        priority: { type: 'integer', minimum: 1, maximum: 5 },
      },
      required: ['intent', 'priority'],
      additionalProperties: false,
    };
    const before = runs.length;
    const b = await complete(shadowed.server.url, {
      ...REQUEST,
      max_tokens: 40,
      response_format: { type: 'json_schema', json_schema: { name: 't', schema } },
    });
    expect(JSON.parse(b.choices[0]?.text ?? '')).toMatchObject({ intent: expect.any(String) });
    const verifyCallsBefore = proxy.requests.length;
    await until(() => runs.length === before + 1);
    const run = runs.at(-1)!;
    expect(run.outcome.error).toBeUndefined();
    expect(run.outcome.verifyRounds).toBeGreaterThan(0);
    // The shadow's own verify rounds, after the served answer: each carries the grammar's masks.
    const shadowCalls = proxy.requests
      .slice(verifyCallsBefore)
      .filter((r) => r.path.includes('verify') && r.method === 'POST');
    expect(shadowCalls.length).toBeGreaterThan(0);
    for (const call of shadowCalls) expect(call.body).toContain('token_masks');
    await until(() => shadowed.source.outstanding === 0);
  }, 60_000);

  it('runs none for a request without a shadowed adapter, or with a sample of 0', async () => {
    const before = runs.length;
    await complete(shadowed.server.url, { ...REQUEST, model: 'draft' });
    const zeroRuns: ShadowOutcome[] = [];
    const zero = await startTestRuntime(gen, proxy.url, {
      shadowSample: 0,
      onShadow: (o) => zeroRuns.push(o),
    });
    try {
      await complete(zero.server.url, REQUEST);
      await new Promise((r) => setTimeout(r, 300));
      expect(zeroRuns).toEqual([]);
      expect(runs.length).toBe(before);
      expect(zero.source.outstanding).toBe(0);
    } finally {
      await zero.server.close(1000);
    }
  }, 60_000);

  it('runs one shadow at a time (skips while busy) and only counts a failing verifier', async () => {
    const outcomes: ShadowOutcome[] = [];
    const pool = new VerifierPool();
    const mk = (url: string) =>
      new ShadowRunner({
        sample: 1,
        pool,
        verifierUrl: () => url,
        onShadow: (o) => outcomes.push(o),
        busy: () => false,
        log: () => undefined,
      });
    const source = new CountingSource(gen);
    const job = {
      adapter: gen.shadowAdapters.get('support')!,
      promptIds: gen.tokenizer.encode(REQUEST.prompt),
      maxTokens: 16,
      sampling: { temperature: 0.8 },
      seed: 3,
    };
    const runner = mk(proxy.url);
    expect(runner.start(job, source.acquire()!)).toBe(true);
    expect(runner.start(job, source.acquire()!)).toBe(false);
    expect(runner.stats.skipped).toBe(1);
    await runner.idle;
    expect(outcomes).toHaveLength(1);
    expect(outcomes[0]?.draftTokens).toBeGreaterThan(0);
    expect(source.outstanding).toBe(0);

    const down = mk('http://127.0.0.1:9');
    expect(down.start(job, source.acquire()!)).toBe(true);
    await down.idle;
    expect(outcomes.at(-1)).toMatchObject({ ref: SHADOW_REF.ref, error: true, draftTokens: 0 });
    expect(down.stats).toMatchObject({ runs: 1, errors: 1 });
    expect(source.outstanding).toBe(0);
    pool.close();
  }, 60_000);
});
