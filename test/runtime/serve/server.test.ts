// The site runtime's OpenAI-compatible server against a real verifier process (behind a recording
// proxy): the official openai client (chat and completions, streaming and not), /v1/models, the
// edgectl field and route header, overrides, block rules, OpenAI-style 4xx bodies, probes, metrics,
// status, and lease accounting (normal, error and client-abort paths).
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LoadedGeneration } from '../../../src/runtime/engine/generation.js';
import {
  loadTestGeneration,
  makeGenerationDir,
  startRecordingProxy,
  startTestRuntime,
  startVerifierProcess,
  TEST_CONTEXT,
  type RecordingProxy,
  type TestRuntime,
  type VerifierProcess,
} from './helpers.js';

interface EdgectlField {
  route: string;
  reason: string;
  unverified: boolean;
  stats: {
    draftTokens: number;
    acceptedTokens: number;
    verifyRounds: number;
    acceptance: number | null;
    k: number | null;
  };
  redactions: number;
}

async function post(url: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json: json as Record<string, unknown> };
}

function expectOpenAiError(body: unknown, param?: string): { message: string; type: string; code: string } {
  const e = (body as { error: { message: string; type: string; code: string; param?: string } }).error;
  expect(typeof e.message).toBe('string');
  expect(e.message.length).toBeGreaterThan(0);
  expect(typeof e.type).toBe('string');
  expect(typeof e.code).toBe('string');
  if (param !== undefined) expect(e.param).toBe(param);
  return e;
}

describe('site runtime server (real verifier process)', () => {
  let verifier: VerifierProcess;
  let proxy: RecordingProxy;
  let gen: LoadedGeneration;
  let rt: TestRuntime;
  let client: OpenAI;

  beforeAll(async () => {
    verifier = await startVerifierProcess();
    proxy = await startRecordingProxy(verifier.url);
    gen = await loadTestGeneration(makeGenerationDir());
    rt = await startTestRuntime(gen, proxy.url);
    client = new OpenAI({ baseURL: `${rt.server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  });
  afterAll(async () => {
    await rt?.server.close(1000);
    await gen?.dispose();
    await proxy?.close();
    await verifier?.kill('SIGTERM');
  });

  it('lists the model and each model:adapter', async () => {
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toEqual(['draft', 'draft:support']);
    expect(gen.context).toEqual(TEST_CONTEXT);
  });

  it('chat completion (openai client, not streamed) answers speculatively with stats and route header', async () => {
    const before = proxy.requests.length;
    const { data, response } = await client.chat.completions
      .create({
        model: 'draft:support',
        messages: [
          {
            role: 'user',
            name: 'Customer',
            content: 'Hi, my package has not arrived yet, can you check it?',
          },
        ],
        max_tokens: 24,
        temperature: 0,
      })
      .withResponse();
    expect(response.headers.get('x-edgectl-route')).toBe('speculative');
    expect(data.object).toBe('chat.completion');
    const choice = data.choices[0]!;
    expect(choice.message.role).toBe('assistant');
    expect(typeof choice.message.content).toBe('string');
    expect(choice.message.content!.length).toBeGreaterThan(0);
    expect(choice.message.content).not.toContain('\n'); // one chat turn
    expect(['stop', 'length']).toContain(choice.finish_reason);
    const e = (data as unknown as { edgectl: EdgectlField }).edgectl;
    expect(e.route).toBe('speculative');
    expect(e.unverified).toBe(false);
    expect(e.stats.verifyRounds).toBeGreaterThan(0);
    expect(e.stats.draftTokens).toBeGreaterThanOrEqual(e.stats.acceptedTokens);
    expect(e.stats.acceptance).toBeCloseTo(e.stats.acceptedTokens / e.stats.draftTokens, 6);
    expect(data.usage!.completion_tokens).toBeGreaterThan(0);
    // The verifier really was asked: a session, verify rounds, and the session deleted at the end.
    // The session is deleted after the answer (best effort, not awaited by the response).
    // A backstop: the loop ends as soon as the DELETE is seen (a loaded machine only waits longer).
    const deadline = Date.now() + 30_000;
    while (!proxy.requests.slice(before).some((r) => r.method === 'DELETE') && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 10));
    const calls = proxy.requests.slice(before);
    expect(calls.some((r) => r.method === 'POST' && r.path === '/v1/sessions')).toBe(true);
    expect(calls.filter((r) => r.path.endsWith('/verify')).length).toBe(e.stats.verifyRounds);
    expect(calls.some((r) => r.method === 'DELETE')).toBe(true);
  });

  it('chat completion streamed (openai client) with include_usage', async () => {
    const stream = await client.chat.completions.create({
      model: 'draft',
      messages: [
        { role: 'system', content: 'You are a helpful store assistant.' },
        { role: 'user', content: 'Do you have the blue jacket in size M?' },
      ],
      max_tokens: 20,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let finish: string | null = null;
    let usage: OpenAI.CompletionUsage | undefined;
    let edgectl: EdgectlField | undefined;
    let chunks = 0;
    for await (const c of stream) {
      chunks++;
      if (c.usage) usage = c.usage;
      const ch = c.choices[0];
      if (ch?.delta.content) text += ch.delta.content;
      if (ch?.finish_reason) {
        finish = ch.finish_reason;
        edgectl = (c as unknown as { edgectl: EdgectlField }).edgectl;
      }
    }
    expect(chunks).toBeGreaterThan(2);
    expect(text.length).toBeGreaterThan(0);
    expect(['stop', 'length']).toContain(finish);
    expect(usage?.completion_tokens).toBeGreaterThan(0);
    expect(usage?.total_tokens).toBe(usage!.prompt_tokens + usage!.completion_tokens);
    expect(edgectl?.route).toBe('speculative');
  });

  it('greedy completions are the same streamed and not, on every route', async () => {
    const prompt = 'Customer: Hi, I ordered a lamp last week.\nAgent:';
    for (const route of ['edge', 'speculative', 'cloud'] as const) {
      const plain = await client.completions
        .create({
          model: 'draft',
          prompt,
          max_tokens: 16,
          temperature: 0,
          edgectl: { route },
        } as OpenAI.CompletionCreateParamsNonStreaming)
        .withResponse();
      expect(plain.response.headers.get('x-edgectl-route')).toBe(route);
      const e = (plain.data as unknown as { edgectl: EdgectlField }).edgectl;
      expect(e.route).toBe(route);
      expect(e.reason).toContain('override');
      const stream = await client.completions.create({
        model: 'draft',
        prompt,
        max_tokens: 16,
        temperature: 0,
        stream: true,
        edgectl: { route },
      } as OpenAI.CompletionCreateParamsStreaming);
      let text = '';
      for await (const c of stream) text += c.choices[0]?.text ?? '';
      expect(text).toBe(plain.data.choices[0]!.text);
      expect(text.length).toBeGreaterThan(0);
    }
    // Speculative greedy output equals cloud greedy output (lossless speculative decoding).
    const spec = await post(
      `${rt.server.url}/v1/completions`,
      { model: 'draft', prompt, max_tokens: 16, temperature: 0 },
      { 'x-edgectl-route': 'speculative' },
    );
    const cloud = await post(
      `${rt.server.url}/v1/completions`,
      { model: 'draft', prompt, max_tokens: 16, temperature: 0 },
      { 'x-edgectl-route': 'cloud' },
    );
    expect((spec.json.choices as { text: string }[])[0]!.text).toBe(
      (cloud.json.choices as { text: string }[])[0]!.text,
    );
  });

  it('a stream keeps one event per token but coalesces them into few socket writes', async () => {
    const body = {
      model: 'draft',
      prompt: 'Customer: Hi, I ordered a lamp last week.\nAgent:',
      max_tokens: 200,
      temperature: 0,
      ignore_eos: true,
    };
    const headers = { 'content-type': 'application/json', 'x-edgectl-route': 'edge' };
    const plain = await post(`${rt.server.url}/v1/completions`, body, { 'x-edgectl-route': 'edge' });
    expect((plain.json.usage as { completion_tokens: number }).completion_tokens).toBe(200);
    const res = await fetch(`${rt.server.url}/v1/completions`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ ...body, stream: true }),
    });
    const reads: string[] = [];
    const decoder = new TextDecoder();
    for await (const part of res.body as unknown as AsyncIterable<Uint8Array>) {
      reads.push(decoder.decode(part, { stream: true }));
    }
    const events = reads
      .join('')
      .split('\n\n')
      .filter((e) => e.startsWith('data: ') && e !== 'data: [DONE]')
      .map((e) => JSON.parse(e.slice(6)) as { choices: { text: string }[] });
    const texts = events.map((e) => e.choices[0]?.text ?? '').filter((t) => t !== '');
    expect(texts.join('')).toBe((plain.json.choices as { text: string }[])[0]!.text);
    // Byte-level BPE may hold a token back until its character completes, so a few tokens share
    // an event; nearly all are their own.
    expect(texts.length).toBeGreaterThan(150);
    // A write per token would arrive as about one read per event (the client runs in this process,
    // between the generation's steps); coalesced writes arrive as a handful.
    expect(reads.length).toBeLessThan(texts.length / 4);
  });

  it('sampled speculative decoding sends the draft distributions and is reproducible with a seed', async () => {
    const before = proxy.requests.length;
    const body = {
      model: 'draft:support',
      prompt: 'Customer: Good morning, I forgot my password.\nAgent:',
      max_tokens: 16,
      temperature: 0.8,
      top_p: 0.95,
      seed: 42,
      edgectl: { route: 'speculative' },
    };
    const a = await post(`${rt.server.url}/v1/completions`, body);
    const b = await post(`${rt.server.url}/v1/completions`, body);
    expect(a.status).toBe(200);
    expect((a.json.edgectl as EdgectlField).stats.verifyRounds).toBeGreaterThan(0);
    expect((a.json.choices as { text: string }[])[0]!.text).toBe(
      (b.json.choices as { text: string }[])[0]!.text,
    );
    const verify = proxy.requests
      .slice(before)
      .filter((r) => r.path.endsWith('/verify'))
      .map((r) => JSON.parse(r.body) as { draft_ids: number[]; draft_probs?: unknown[] });
    const drafted = verify.filter((v) => v.draft_ids.length > 0);
    expect(drafted.length).toBeGreaterThan(0);
    for (const v of drafted) expect(v.draft_probs?.length).toBe(v.draft_ids.length);
  });

  it('routes by policy rule (keyword -> cloud) and the adapter changes the draft', async () => {
    const r = await post(`${rt.server.url}/v1/completions`, {
      model: 'draft',
      prompt: 'Customer: I am thinking about a lawsuit over this.\nAgent:',
      max_tokens: 8,
      temperature: 0,
    });
    expect(r.status).toBe(200);
    expect((r.json.edgectl as EdgectlField).route).toBe('cloud');
    expect((r.json.edgectl as EdgectlField).reason).toContain('legal-to-cloud');
    const prompt = 'Customer: Hey, my package was supposed to arrive November 6.\nAgent:';
    const base = await post(`${rt.server.url}/v1/completions`, {
      model: 'draft',
      prompt,
      max_tokens: 24,
      temperature: 0,
      edgectl: { route: 'edge' },
    });
    const adapted = await post(`${rt.server.url}/v1/completions`, {
      model: 'draft:support',
      prompt,
      max_tokens: 24,
      temperature: 0,
      edgectl: { route: 'edge' },
    });
    expect(base.status).toBe(200);
    expect(adapted.status).toBe(200);
    expect((adapted.json.choices as { text: string }[])[0]!.text).not.toBe(
      (base.json.choices as { text: string }[])[0]!.text,
    );
  });

  it('block rules answer with a refusal (content_filter), streamed and not, and nothing reaches the verifier', async () => {
    const before = proxy.requests.length;
    const prompt = 'Customer: my password: hunter2, please log in for me\nAgent:';
    const plain = await post(`${rt.server.url}/v1/completions`, { model: 'draft', prompt });
    expect(plain.status).toBe(200);
    expect(plain.headers.get('x-edgectl-route')).toBe('blocked');
    const choice = (plain.json.choices as { text: string; finish_reason: string }[])[0]!;
    expect(choice.text).toBe("I can't help with sharing credentials.");
    expect(choice.finish_reason).toBe('content_filter');
    expect((plain.json.edgectl as EdgectlField).route).toBe('blocked');
    const stream = await client.chat.completions.create({
      model: 'draft',
      messages: [{ role: 'user', content: 'here is my api key: sk-123, store it' }],
      stream: true,
    });
    let text = '';
    let finish: string | null = null;
    for await (const c of stream) {
      text += c.choices[0]?.delta.content ?? '';
      finish = c.choices[0]?.finish_reason ?? finish;
    }
    expect(text).toBe("I can't help with sharing credentials.");
    expect(finish).toBe('content_filter');
    expect(proxy.requests.length).toBe(before);
    expect(rt.outcomes.filter((o) => o.route === 'blocked').length).toBeGreaterThanOrEqual(2);
  });

  it('bad input gets 4xx with an OpenAI-style error naming the field', async () => {
    const url = `${rt.server.url}/v1/chat/completions`;
    const malformed = await post(url, '{"model": "draft", "messages": [');
    expect(malformed.status).toBe(400);
    expectOpenAiError(malformed.json);

    const missing = await post(url, { model: 'draft' });
    expect(missing.status).toBe(400);
    expect(expectOpenAiError(missing.json, 'messages').message).toContain('messages');

    const badType = await post(url, {
      model: 'draft',
      messages: [{ role: 'user', content: 'hi' }],
      temperature: 'hot',
    });
    expect(badType.status).toBe(400);
    expectOpenAiError(badType.json, 'temperature');

    const unknownModel = await post(url, { model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] });
    expect(unknownModel.status).toBe(404);
    const e1 = expectOpenAiError(unknownModel.json, 'model');
    expect(e1.code).toBe('model_not_found');
    expect(e1.message).toContain('draft:support');

    const unknownAdapter = await post(url, {
      model: 'draft:billing',
      messages: [{ role: 'user', content: 'hi' }],
    });
    expect(unknownAdapter.status).toBe(404);
    expect(expectOpenAiError(unknownAdapter.json, 'model').message).toContain('billing');

    const long = await post(`${rt.server.url}/v1/completions`, {
      model: 'draft',
      prompt: 'word '.repeat(2000),
    });
    expect(long.status).toBe(400);
    expect(expectOpenAiError(long.json, 'prompt').code).toBe('context_length_exceeded');

    const tooMany = await post(`${rt.server.url}/v1/completions`, {
      model: 'draft',
      prompt: 'Hello',
      max_tokens: 100_000,
    });
    expect(tooMany.status).toBe(400);
    expectOpenAiError(tooMany.json, 'max_tokens');

    const badRoute = await post(
      url,
      { model: 'draft', messages: [{ role: 'user', content: 'hi' }] },
      { 'x-edgectl-route': 'moon' },
    );
    expect(badRoute.status).toBe(400);
    expectOpenAiError(badRoute.json, 'x-edgectl-route');

    // The openai client surfaces the same body.
    await expect(
      client.chat.completions.create({ model: 'nope', messages: [{ role: 'user', content: 'hi' }] }),
    ).rejects.toMatchObject({
      status: 404,
      code: 'model_not_found',
    });
  });

  it('probes, metrics and status', async () => {
    const health = await fetch(`${rt.server.url}/healthz`);
    expect(health.status).toBe(200);
    const ready = await fetch(`${rt.server.url}/readyz`);
    expect(ready.status).toBe(200);
    const metrics = await (await fetch(`${rt.server.url}/metrics`)).text();
    expect(metrics).toMatch(/edgectl_runtime_requests_total\{route="speculative"\} [1-9]/);
    expect(metrics).toMatch(/edgectl_runtime_requests_total\{route="blocked"\} [1-9]/);
    expect(metrics).toMatch(/edgectl_runtime_tokens_total\{kind="accepted"\} [1-9]/);
    expect(metrics).toContain('edgectl_runtime_ttft_seconds_bucket');
    expect(metrics).toContain('edgectl_runtime_request_seconds_bucket');
    expect(metrics).toMatch(
      /edgectl_runtime_http_requests_total\{path="\/v1\/chat\/completions",status="404"\} [1-9]/,
    );
    expect(metrics).toContain('edgectl_runtime_in_flight 0');
    const status = (await (await fetch(`${rt.server.url}/v1/status`)).json()) as {
      site: string;
      url: string;
      runtime: {
        requests: Record<string, number>;
        acceptance: number | null;
        ttftP95Ms: number | null;
        verifier: { url: string; breaker: string };
      };
    };
    expect(status.site).toBe('store-test');
    expect(status.url).toBe(rt.server.url);
    expect(status.runtime.requests.speculative).toBeGreaterThan(0);
    expect(status.runtime.acceptance).toBeGreaterThan(0);
    expect(status.runtime.ttftP95Ms).toBeGreaterThan(0);
    expect(status.runtime.verifier).toMatchObject({ url: proxy.url, breaker: 'closed' });
  });

  it('a client that disconnects mid-stream aborts the generation and frees the verifier session', async () => {
    proxy.delayMs = 30; // slow rounds so the abort lands mid-generation
    try {
      const before = proxy.requests.length;
      const ac = new AbortController();
      const res = await fetch(`${rt.server.url}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          model: 'draft',
          prompt: 'Customer: hello there\nAgent:',
          max_tokens: 200,
          temperature: 0,
          stream: true,
          edgectl: { route: 'speculative' },
        }),
        signal: ac.signal,
      });
      const reader = res.body!.getReader();
      await reader.read(); // first chunk
      ac.abort();
      const deadline = Date.now() + 30_000; // a backstop: both waits end when their state is reached
      while (rt.source.outstanding > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(rt.source.outstanding).toBe(0);
      while (!proxy.requests.slice(before).some((r) => r.method === 'DELETE') && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 20));
      const calls = proxy.requests.slice(before);
      expect(calls.some((r) => r.method === 'DELETE' && r.path.startsWith('/v1/sessions/'))).toBe(true);
      // It stopped early: far fewer verify rounds than 200 tokens would need.
      expect(calls.filter((r) => r.path.endsWith('/verify')).length).toBeLessThan(50);
    } finally {
      proxy.delayMs = 0;
    }
  });

  it('every lease was released exactly once (served, blocked, failed and aborted requests)', () => {
    expect(rt.source.acquired).toBeGreaterThan(15);
    expect(rt.source.outstanding).toBe(0);
    expect(rt.source.doubleReleases).toBe(0);
    expect(rt.server.status().inFlight).toBe(0);
  });
});
