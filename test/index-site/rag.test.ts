/**
 * RAG in the site engine (issue #20 item 4, in process): a generation with an index (and its
 * embedder beside it) served by the real runtime server and asked through the official `openai`
 * client with `edgectl.retrieval`: the answer lists the passage ids it used (`edgectl.citations`),
 * the passages reach the model through its chat template (a system context message), feedback
 * counts retrieval latency and hits, a policy rule retrieves without the client asking, an unknown
 * index is a 404 naming the field, a completion asking for retrieval a 400, and the staleness
 * budget warns or refuses (503 index_stale) as the policy says.
 */
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import OpenAI from 'openai';
import { Registry } from 'prom-client';
import { registerIndexMetrics } from '../../src/runtime/daemon/index-metrics.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadGeneration, type LoadedGeneration } from '../../src/runtime/engine/generation.js';
import { contextMessage, contextText, retrieve } from '../../src/runtime/engine/retrieval.js';
import type { FeedbackContext } from '../../src/feedback/accumulator.js';
import {
  makeGenerationDir,
  startTestRuntime,
  TEST_CONTEXT,
  TEST_POLICY,
  type TestRuntime,
} from '../runtime/serve/helpers.js';
import { EMBEDDER, indexDir, tempDir } from './fixtures.js';

const CONTEXT: FeedbackContext = {
  ...TEST_CONTEXT,
  refs: {
    ...TEST_CONTEXT.refs,
    indexes: [{ ref: 'index/kb@1.0.0', manifestDigest: `sha256:${'d'.repeat(64)}` }],
  },
};

const RAG_POLICY = `${TEST_POLICY}retrieval:
  rules:
    - name: printers
      index: kb
      k: 2
      keywords: [printer]
`;

/** A generation directory with the draft model, a policy and `indexes/kb` + `embedders/kb`. */
async function ragGeneration(policy: string, corpus?: string): Promise<string> {
  const dir = makeGenerationDir({ policy });
  mkdirSync(join(dir, 'indexes'));
  mkdirSync(join(dir, 'embedders'));
  await indexDir(join(dir, 'indexes'), { out: 'kb', ...(corpus ? { corpus } : {}) });
  symlinkSync(join(process.cwd(), EMBEDDER), join(dir, 'embedders', 'kb'));
  return dir;
}

/** A JSONL corpus whose documents are all dated `time`. */
function datedCorpus(time: string): string {
  const dir = tempDir('edgectl-corpus-');
  const docs = [
    { id: 'wifi', text: 'To reset the store wifi router hold the reset button for ten seconds.', time },
    { id: 'printer', text: 'When the receipt printer jams open the cover and reseat the paper roll.', time },
  ];
  writeFileSync(join(dir, 'docs.jsonl'), docs.map((d) => JSON.stringify(d)).join('\n'));
  return dir;
}

async function load(dir: string): Promise<LoadedGeneration> {
  return loadGeneration(dir, { id: 'b'.repeat(20), context: CONTEXT });
}

describe('RAG through the site runtime (openai client)', () => {
  let gen: LoadedGeneration;
  let rt: TestRuntime;
  let client: OpenAI;

  beforeAll(async () => {
    gen = await load(await ragGeneration(RAG_POLICY));
    rt = await startTestRuntime(gen, undefined);
    const addr = rt.server.url;
    client = new OpenAI({ baseURL: `${addr}/v1`, apiKey: 'unused', maxRetries: 0 });
  });
  afterAll(async () => {
    await rt?.server.close(1000);
    await gen?.dispose();
  });

  it('answers with citations of the passages it retrieved, and feedback counts the retrieval', async () => {
    const before = rt.outcomes.length;
    const res = await client.chat.completions.create({
      model: 'draft',
      messages: [{ role: 'user', content: 'How do I fix a card reader that declines every card?' }],
      max_tokens: 8,
      // @ts-expect-error edgectl extension of the request body
      edgectl: { route: 'edge', retrieval: { index: 'kb', k: 3 } },
    });
    const info = (res as unknown as { edgectl: { citations: string[]; retrieval: Record<string, unknown> } })
      .edgectl;
    // The fixture draft's context is 512 tokens: passages past half of it are dropped, in rank order.
    const kept = info.retrieval.passages as number;
    expect(kept).toBeGreaterThanOrEqual(1);
    expect(kept + ((info.retrieval.dropped as number | undefined) ?? 0)).toBe(3);
    expect(info.citations).toHaveLength(kept);
    expect(info.citations[0]).toMatch(/card-reader/);
    expect(info.retrieval).toMatchObject({
      index: 'kb',
      ref: 'index/kb@1.0.0',
      source: 'request',
      k: 3,
      stale: false,
    });
    expect(res.choices[0]?.message.content).toBeTypeOf('string');
    // The passages went into the prompt (through the template): far more prompt tokens than the question.
    const plain = await client.chat.completions.create({
      model: 'draft',
      messages: [{ role: 'user', content: 'How do I fix a card reader that declines every card?' }],
      max_tokens: 1,
      // @ts-expect-error edgectl extension of the request body
      edgectl: { route: 'edge' },
    });
    expect(res.usage!.prompt_tokens).toBeGreaterThan(plain.usage!.prompt_tokens + 50);
    const outcome = rt.outcomes.slice(before).find((o) => o.retrieval);
    expect(outcome?.retrieval).toMatchObject({ passages: kept });
    expect(outcome?.retrieval?.ms).toBeGreaterThan(0);
  });

  it('a policy rule retrieves without the client asking; other chats do not retrieve', async () => {
    const hit = await client.chat.completions.create({
      model: 'draft',
      messages: [{ role: 'user', content: 'the receipt printer is jammed again' }],
      max_tokens: 4,
      // @ts-expect-error edgectl extension
      edgectl: { route: 'edge' },
    });
    const info = (hit as unknown as { edgectl: { citations?: string[]; retrieval?: { source: string } } })
      .edgectl;
    expect(info.retrieval?.source).toBe('policy:printers');
    expect(info.citations?.length).toBeGreaterThanOrEqual(1);
    expect(info.citations?.[0]).toMatch(/printer/);
    const miss = await client.chat.completions.create({
      model: 'draft',
      messages: [{ role: 'user', content: 'hello there' }],
      max_tokens: 4,
      // @ts-expect-error edgectl extension
      edgectl: { route: 'edge' },
    });
    expect((miss as unknown as { edgectl: Record<string, unknown> }).edgectl).not.toHaveProperty('citations');
  });

  it('refuses an unknown index (404 naming the field) and retrieval on a completion (400)', async () => {
    const unknown = await client.chat.completions
      .create({
        model: 'draft',
        messages: [{ role: 'user', content: 'hi' }],
        // @ts-expect-error edgectl extension
        edgectl: { retrieval: { index: 'nope' } },
      })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(unknown).toBeInstanceOf(OpenAI.NotFoundError);
    expect((unknown as InstanceType<typeof OpenAI.APIError>).message).toMatch(
      /index "nope" is not served at this site; available: kb/,
    );
    const completion = await client.completions
      .create({
        model: 'draft',
        prompt: 'hi',
        // @ts-expect-error edgectl extension
        edgectl: { retrieval: { index: 'kb' } },
      })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(completion).toBeInstanceOf(OpenAI.BadRequestError);
    expect((completion as Error).message).toMatch(/use \/v1\/chat\/completions/);
  });
});

describe('index freshness on /metrics', () => {
  it('exposes the age and passages of each served index', async () => {
    const gen = await load(await ragGeneration(TEST_POLICY, datedCorpus('2026-01-01T00:00:00Z')));
    const registry = new Registry();
    registerIndexMetrics(registry, () => gen);
    const text = await registry.metrics();
    const age = /edgectl_index_age_seconds\{index="kb",ref="index\/kb@1\.0\.0"\} (\d+)/.exec(text);
    expect(Number(age?.[1])).toBeGreaterThan(86_400);
    expect(text).toMatch(/edgectl_index_passages\{index="kb",ref="index\/kb@1\.0\.0"\} 2/);
    await gen.dispose();
  });
});

describe('retrieval step (unit)', () => {
  it('puts the context into the leading system message, or a new one first', () => {
    const ctx = contextText([{ id: 'a', text: 'alpha\n beta' }]);
    expect(ctx).toMatch(/\[a\] alpha beta$/);
    expect(contextMessage([{ role: 'user', content: 'q' }], ctx)).toEqual([
      { role: 'system', content: ctx },
      { role: 'user', content: 'q' },
    ]);
    expect(
      contextMessage(
        [
          { role: 'system', content: 'be brief' },
          { role: 'user', content: 'q' },
        ],
        ctx,
      )[0],
    ).toEqual({
      role: 'system',
      content: `be brief ${ctx}`,
    });
  });

  it('staleness: warns past maxAge by default, refuses with 503 index_stale when the policy says so', async () => {
    const corpus = datedCorpus('2026-01-01T00:00:00Z');
    const req = {
      model: 'draft',
      prompt: { messages: [{ role: 'user' as const, content: 'printer jam' }] },
      stops: [],
      maxTokens: 4,
      temperature: undefined,
      topP: undefined,
      seed: undefined,
      ignoreEos: false,
      override: undefined,
      retrieval: { index: 'kb', k: 1 },
    };
    const now = Date.parse('2026-01-01T00:30:00Z');
    const warn = await load(await ragGeneration(`${TEST_POLICY}retrieval:\n  maxAge: 1h\n`, corpus));
    const fresh = await retrieve(warn, req, now);
    expect(fresh?.info).toMatchObject({ stale: false, ageSeconds: 1800 });
    const later = Date.parse('2026-01-01T02:00:00Z');
    const stale = await retrieve(warn, req, later);
    expect(stale?.info.stale).toBe(true);
    expect(stale?.info.warning).toMatch(/index kb is 7200s old .* past the policy's maxAge of 1h/);
    expect(stale?.outcome.stale).toBe(true);
    expect(stale?.citations).toEqual(['printer#0']);
    await warn.dispose();

    const refuse = await load(
      await ragGeneration(`${TEST_POLICY}retrieval:\n  maxAge: 1h\n  stale: refuse\n`, corpus),
    );
    await expect(retrieve(refuse, req, later)).rejects.toMatchObject({ status: 503, code: 'index_stale' });
    await refuse.dispose();
  });
});
