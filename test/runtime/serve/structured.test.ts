// Structured outputs through a real site and a real verifier process (issue #18 item 1):
// `response_format` on chat and completions, honoured on the edge, speculative and cloud routes;
// greedy speculative output identical to constrained cloud-only output; the faults (invalid
// schema, a schema xgrammar cannot compile, max_tokens too small) each answered clearly; and two
// clients we did not write: the official `openai` client and LangChain's withStructuredOutput.
import { ChatOpenAI } from '@langchain/openai';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { LoadedGeneration } from '../../../src/runtime/engine/generation.js';
import {
  loadTestGeneration,
  makeGenerationDir,
  startRecordingProxy,
  startTestRuntime,
  startVerifierProcess,
  TEST_POLICY,
  type RecordingProxy,
  type TestRuntime,
  type VerifierProcess,
} from './helpers.js';

/** Terminates on the random fixture models: enums, bounded integers, a short string. */
const TICKET = {
  type: 'object',
  properties: {
    intent: { enum: ['refund', 'billing', 'other'] },
    priority: { type: 'integer', minimum: 1, maximum: 5 },
    urgent: { type: 'boolean' },
    note: { type: 'string', maxLength: 8 },
  },
  required: ['intent', 'priority', 'urgent', 'note'],
  additionalProperties: false,
};
const FORMAT = { type: 'json_schema', json_schema: { name: 'ticket', schema: TICKET, strict: true } };

type Body = {
  choices: { text?: string; message?: { content: string }; finish_reason: string }[];
  edgectl: { route: string; reason: string; structured?: { valid: boolean; reason?: string } };
  error?: { message: string; param?: string; code?: string };
};

async function post(url: string, body: unknown, route?: string): Promise<{ status: number; body: Body }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(route ? { 'x-edgectl-route': route } : {}) },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Body };
}

describe('response_format on a site with a verifier', () => {
  let verifier: VerifierProcess;
  let proxy: RecordingProxy;
  let gen: LoadedGeneration;
  let rt: TestRuntime;

  beforeAll(async () => {
    verifier = await startVerifierProcess();
    proxy = await startRecordingProxy(verifier.url);
    // The test policy's 1.5 s verifier timeout could turn the verifier's first grammar compile, on a
    // loaded CI machine, into an edge fallback; the routes asked for are what these tests check.
    const policy = TEST_POLICY.replace('timeoutMs: 1500', 'timeoutMs: 15000');
    expect(policy).not.toBe(TEST_POLICY);
    gen = await loadTestGeneration(makeGenerationDir({ policy }));
    rt = await startTestRuntime(gen, proxy.url);
  });
  afterAll(async () => {
    await rt?.server.close(1000);
    await gen?.dispose();
    await proxy?.close();
    await verifier?.kill('SIGTERM');
  });

  const complete = (route: string, extra: Record<string, unknown> = {}) =>
    post(
      `${rt.server.url}/v1/completions`,
      {
        model: 'draft',
        prompt: 'Ticket: my refund is late.\nJSON:',
        max_tokens: 100,
        temperature: 0,
        response_format: FORMAT,
        ...extra,
      },
      route,
    );

  it('greedy speculative, cloud-only and edge give schema-valid JSON; speculative equals cloud', async () => {
    const texts: Record<string, string> = {};
    for (const route of ['edge', 'speculative', 'cloud']) {
      const r = await complete(route);
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expect(r.body.edgectl.route, r.body.edgectl.reason).toBe(route);
      const choice = r.body.choices[0];
      texts[route] = choice?.text ?? '';
      expect(r.body.edgectl.structured, texts[route]).toEqual({ valid: true });
      expect(choice?.finish_reason).toBe('stop');
      const value = JSON.parse(texts[route]) as Record<string, unknown>;
      expect(Object.keys(value).sort()).toEqual(['intent', 'note', 'priority', 'urgent']);
    }
    expect(texts.speculative).toBe(texts.cloud);
    // The masks travelled with the verify rounds, and the cloud route asked for the same format.
    const bodyOf = (b: unknown) => (typeof b === 'string' ? JSON.parse(b) : b) as Record<string, unknown>;
    const verifies = proxy.requests.filter((q) => q.path.endsWith('/verify')).map((q) => bodyOf(q.body));
    expect(verifies.length).toBeGreaterThan(0);
    for (const v of verifies) {
      expect((v.token_masks as unknown[]).length).toBe((v.draft_ids as unknown[]).length + 1);
    }
    const cloud = proxy.requests.find((q) => q.path === '/v1/completions');
    expect(bodyOf(cloud?.body).response_format).toEqual(FORMAT);
  });

  it('an invalid JSON schema is a 400 naming the JSON path', async () => {
    const bad = {
      ...FORMAT,
      json_schema: { name: 'ticket', schema: { type: 'object', properties: { age: { type: 'integr' } } } },
    };
    const r = await complete('edge', { response_format: bad });
    expect(r.status).toBe(400);
    expect(r.body.error?.param).toBe('response_format');
    expect(r.body.error?.message).toMatch(/^response_format\.json_schema\.schema\/properties\/age\/type: /);
    const badName = await complete('edge', {
      response_format: { type: 'json_schema', json_schema: { name: 'a b', schema: TICKET } },
    });
    expect(badName.status).toBe(400);
    expect(badName.body.error?.message).toMatch(/response_format\.json_schema\.name/);
  });

  it('a schema xgrammar cannot compile is a 400, and the next request is served', async () => {
    const schema = {
      type: 'object',
      properties: { a: { type: 'string', pattern: '(?<=x)y' } },
      required: ['a'],
    };
    const r = await complete('edge', {
      response_format: { type: 'json_schema', json_schema: { name: 'x', schema } },
    });
    expect(r.status).toBe(400);
    expect(r.body.error?.code).toBe('unsupported_schema');
    expect(r.body.error?.message).toMatch(/Lookbehind is not supported/);
    const next = await complete('edge');
    expect(next.status).toBe(200);
    expect(next.body.edgectl.structured).toEqual({ valid: true });
  });

  it('a schema the model cannot finish within max_tokens ends with length, flagged', async () => {
    for (const route of ['edge', 'speculative']) {
      const r = await complete(route, { max_tokens: 4 });
      expect(r.status).toBe(200);
      expect(r.body.choices[0]?.finish_reason).toBe('length');
      expect(r.body.edgectl.structured?.valid).toBe(false);
      expect(r.body.edgectl.structured?.reason).toMatch(/max_tokens reached before the output was complete/);
    }
  });

  it('json_object on chat gives a JSON object (or length, flagged)', async () => {
    const r = await post(
      `${rt.server.url}/v1/chat/completions`,
      {
        model: 'draft',
        messages: [{ role: 'user', content: 'Reply with JSON.' }],
        max_tokens: 60,
        temperature: 0,
        response_format: { type: 'json_object' },
      },
      'edge',
    );
    expect(r.status).toBe(200);
    const choice = r.body.choices[0];
    if (choice?.finish_reason === 'stop') {
      expect(r.body.edgectl.structured).toEqual({ valid: true });
      expect(typeof JSON.parse(choice.message?.content ?? '')).toBe('object');
    } else expect(r.body.edgectl.structured?.valid).toBe(false);
  });

  it('the official openai client gets schema-valid JSON from chat with json_schema', async () => {
    const client = new OpenAI({ baseURL: `${rt.server.url}/v1`, apiKey: 'unused' });
    const res = await client.chat.completions.create({
      model: 'draft',
      messages: [{ role: 'user', content: 'Classify: I want my money back.' }],
      temperature: 0,
      max_tokens: 100,
      response_format: { type: 'json_schema', json_schema: { name: 'ticket', schema: TICKET, strict: true } },
    });
    const value = JSON.parse(res.choices[0]?.message.content ?? '') as { intent: string; priority: number };
    expect(['refund', 'billing', 'other']).toContain(value.intent);
    expect(Number.isInteger(value.priority)).toBe(true);
  });

  it('the openai client streams the same JSON on the speculative route', async () => {
    const client = new OpenAI({ baseURL: `${rt.server.url}/v1`, apiKey: 'unused' });
    const body = {
      model: 'draft',
      messages: [{ role: 'user' as const, content: 'Classify: I want my money back.' }],
      temperature: 0,
      max_tokens: 100,
      response_format: { type: 'json_schema' as const, json_schema: { name: 'ticket', schema: TICKET } },
    };
    const headers = { headers: { 'x-edgectl-route': 'speculative' } };
    const whole = await client.chat.completions.create(body, headers);
    let streamed = '';
    for await (const c of await client.chat.completions.create({ ...body, stream: true }, headers)) {
      streamed += c.choices[0]?.delta.content ?? '';
    }
    expect(streamed).toBe(whole.choices[0]?.message.content);
    expect(Object.keys(JSON.parse(streamed) as object)).toHaveLength(4);
  });

  it("LangChain's withStructuredOutput(zod) parses the site's answer", async () => {
    const model = new ChatOpenAI({
      model: 'draft',
      temperature: 0,
      maxTokens: 100,
      apiKey: 'unused',
      maxRetries: 0,
      configuration: { baseURL: `${rt.server.url}/v1` },
    });
    const Ticket = z.object({
      intent: z.enum(['refund', 'billing', 'other']),
      priority: z.number().int().min(1).max(5),
      urgent: z.boolean(),
    });
    const structured = model.withStructuredOutput(Ticket, { name: 'ticket' });
    const value = await structured.invoke('Classify: I want my money back.');
    expect(Ticket.parse(value)).toEqual(value);
  });
});
