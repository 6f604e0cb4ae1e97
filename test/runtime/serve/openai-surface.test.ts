// The OpenAI surface of issue #18 items 3-4 against a real site runtime and a real verifier process,
// driven by clients we did not write (the official `openai` client, @langchain/openai's ChatOpenAI):
// logprobs (chat and completions, streaming and not) equal to a direct log-softmax of the model that
// produced each token, strict request fields (unknown -> 400 naming it, neutral defaults accepted),
// /v1/models/{id} with a stable `created`, the verifier's /v1/models and /readyz, and one error code
// for an over-long prompt on both servers.
import { ChatOpenAI } from '@langchain/openai';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DecodeState } from '../../../src/inference/decode-state.js';
import { LmSession } from '../../../src/inference/model-session.js';
import type { LoadedGeneration } from '../../../src/runtime/engine/generation.js';
import {
  DRAFT_DIR,
  loadTestGeneration,
  makeGenerationDir,
  startTestRuntime,
  startVerifierProcess,
  VERIFIER_DIR,
  type TestRuntime,
  type VerifierProcess,
} from './helpers.js';

const PROMPT = 'Customer: where is my parcel?\nAgent:';

type ApiError = InstanceType<typeof OpenAI.APIError>;

/** The APIError a call was refused with (fails the test when it succeeded). */
async function refusal(call: Promise<unknown>): Promise<ApiError> {
  const err = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(OpenAI.APIError);
  return err as ApiError;
}

/** Greedy decoding by hand: each step's log-softmax at the argmax and its top 3 (the expected logprobs). */
async function directGreedy(dir: string, promptIds: number[], steps: number) {
  const lm = await LmSession.load(dir, { intraOpThreads: 1 });
  try {
    const state = new DecodeState(lm, promptIds);
    const out: { token: number; logprob: number; top: number[] }[] = [];
    for (let i = 0; i < steps; i++) {
      const row = await state.nextLogits();
      let max = -Infinity;
      for (const v of row) max = Math.max(max, v);
      let sum = 0;
      for (const v of row) sum += Math.exp(v - max);
      const lse = max + Math.log(sum);
      const order = [...row.keys()].sort((a, b) => (row[b] as number) - (row[a] as number) || a - b);
      const token = order[0] as number;
      out.push({
        token,
        logprob: (row[token] as number) - lse,
        top: order.slice(0, 3).map((t) => (row[t] as number) - lse),
      });
      state.append(token);
    }
    return out;
  } finally {
    await lm.release();
  }
}

describe('OpenAI surface: logprobs, strict fields, models (site + verifier)', () => {
  let verifier: VerifierProcess;
  let gen: LoadedGeneration;
  let rt: TestRuntime;
  let client: (route: string) => OpenAI;

  beforeAll(async () => {
    verifier = await startVerifierProcess();
    gen = await loadTestGeneration(makeGenerationDir());
    rt = await startTestRuntime(gen, verifier.url);
    client = (route) =>
      new OpenAI({
        baseURL: `${rt.server.url}/v1`,
        apiKey: 'unused',
        maxRetries: 0,
        defaultHeaders: { 'x-edgectl-route': route },
      });
  });
  afterAll(async () => {
    await rt?.server.close(1000);
    await gen?.dispose();
    await verifier?.kill('SIGTERM');
  });

  it.each([
    ['speculative', VERIFIER_DIR, 'verifier'],
    ['cloud', VERIFIER_DIR, 'verifier'],
    ['edge', DRAFT_DIR, 'draft'],
  ])(
    'completions logprobs on the %s route equal log-softmax of the producing model',
    async (route, dir, source) => {
      const steps = 10;
      const res = await client(route).completions.create({
        model: 'draft',
        prompt: PROMPT,
        max_tokens: steps,
        temperature: 0,
        logprobs: 3,
        // @ts-expect-error edgectl (vLLM) extension
        ignore_eos: true,
      });
      const lp = res.choices[0]?.logprobs;
      const expected = await directGreedy(dir, gen.tokenizer.encode(PROMPT), steps);
      expect(lp?.token_logprobs).toHaveLength(steps);
      expected.forEach((e, i) => {
        expect(lp?.token_logprobs?.[i]).toBeCloseTo(e.logprob, 4);
        const top = Object.values(lp?.top_logprobs?.[i] ?? {}).sort((a, b) => b - a);
        top.forEach((v, j) => expect(v).toBeCloseTo(e.top[j] as number, 4));
      });
      expect(lp?.tokens?.join('')).toBe(res.choices[0]?.text);
      expect(lp?.text_offset?.[0]).toBe(0);
      expect((res as unknown as { edgectl: { logprobs_source: string } }).edgectl.logprobs_source).toBe(
        source,
      );
    },
  );

  it('chat logprobs with top_logprobs, streaming and not, through the openai client', async () => {
    const body = {
      model: 'draft',
      messages: [{ role: 'user' as const, content: 'where is my parcel?' }],
      max_tokens: 8,
      temperature: 0,
      logprobs: true,
      top_logprobs: 2,
    };
    const whole = await client('speculative').chat.completions.create(body);
    const content = whole.choices[0]?.logprobs?.content ?? [];
    expect(content.length).toBeGreaterThan(0);
    for (const t of content) {
      expect(t.top_logprobs).toHaveLength(2);
      expect(t.logprob).toBeLessThanOrEqual(0);
      expect(Buffer.from(t.bytes ?? []).toString('utf8')).toBe(t.token);
    }
    const streamed: typeof content = [];
    let text = '';
    for await (const c of await client('speculative').chat.completions.create({ ...body, stream: true })) {
      streamed.push(...(c.choices[0]?.logprobs?.content ?? []));
      text += c.choices[0]?.delta?.content ?? '';
    }
    expect(streamed).toEqual(content);
    expect(text).toBe(whole.choices[0]?.message.content);

    const chunks: number[] = [];
    for await (const c of await client('speculative').completions.create({
      model: 'draft',
      prompt: PROMPT,
      max_tokens: 6,
      temperature: 0,
      logprobs: 1,
      stream: true,
    })) {
      chunks.push(...(c.choices[0]?.logprobs?.token_logprobs ?? []));
    }
    expect(chunks.length).toBeGreaterThan(0);
  });

  it('top_logprobs over 20 and unsupported fields are 400s naming the field', async () => {
    const chat = client('edge').chat.completions;
    const base = { model: 'draft', messages: [{ role: 'user' as const, content: 'hi' }], max_tokens: 2 };
    const refused = (extra: Record<string, unknown>) => refusal(chat.create({ ...base, ...extra }));
    const tooMany = await refused({ logprobs: true, top_logprobs: 21 });
    expect([tooMany.status, tooMany.param]).toEqual([400, 'top_logprobs']);
    const penalty = await refused({ presence_penalty: 0.5 });
    expect([penalty.status, penalty.param, penalty.code]).toEqual([
      400,
      'presence_penalty',
      'unsupported_value',
    ]);
    const unknown = await refused({ frobnicate: true });
    expect([unknown.status, unknown.param, unknown.code]).toEqual([400, 'frobnicate', 'unknown_parameter']);
    const bestOf = await refusal(
      client('edge').completions.create({ model: 'draft', prompt: 'x', max_tokens: 2, best_of: 3 }),
    );
    expect([bestOf.status, bestOf.param]).toEqual([400, 'best_of']);
  });

  it('accepts the neutral values clients send by default (openai client, LangChain ChatOpenAI)', async () => {
    const r = await client('edge').chat.completions.create({
      model: 'draft',
      messages: [{ role: 'user', content: 'hi' }],
      max_tokens: 2,
      n: 1,
      presence_penalty: 0,
      frequency_penalty: 0,
      logit_bias: {},
      user: 'u-1',
      store: false,
      metadata: { team: 'a' },
      stream_options: null,
    });
    expect(r.choices[0]?.finish_reason).toBeDefined();
    const lc = new ChatOpenAI({
      model: 'draft',
      apiKey: 'unused',
      maxRetries: 0,
      maxTokens: 4,
      configuration: { baseURL: `${rt.server.url}/v1`, defaultHeaders: { 'x-edgectl-route': 'edge' } },
    });
    const msg = await lc.invoke('where is my parcel?');
    expect(typeof msg.content).toBe('string');
    let streamed = '';
    for await (const c of await lc.stream('hello')) streamed += String(c.content);
    expect(typeof streamed).toBe('string');
  });

  it('GET /v1/models/{id}: found, 404 model_not_found, created stable across calls and restarts', async () => {
    const list = (await (await fetch(`${rt.server.url}/v1/models`)).json()) as {
      data: { id: string; created: number }[];
    };
    const one = await client('edge').models.retrieve('draft:support');
    expect(one).toMatchObject({ id: 'draft:support', object: 'model', created: list.data[0]?.created });
    const missing = await refusal(client('edge').models.retrieve('nope'));
    expect([missing.status, missing.code, missing.param]).toEqual([404, 'model_not_found', 'model']);
    // A restart (a new load of the same generation, a new server) reports the same created.
    await new Promise((r) => setTimeout(r, 1100));
    const gen2 = await loadTestGeneration(makeGenerationDir());
    const rt2 = await startTestRuntime(gen2, undefined);
    try {
      const again = (await (await fetch(`${rt2.server.url}/v1/models/draft`)).json()) as { created: number };
      expect(again.created).toBe(list.data[0]?.created);
    } finally {
      await rt2.server.close(1000);
      await gen2.dispose();
    }
  });

  it('verifier: /v1/models, /v1/models/{id}, /readyz', async () => {
    const models = (await (await fetch(`${verifier.url}/v1/models`)).json()) as {
      data: { id: string; created: number }[];
    };
    const id = models.data[0]?.id as string;
    expect(models.data).toHaveLength(1);
    const one = (await (await fetch(`${verifier.url}/v1/models/${id}`)).json()) as { created: number };
    expect(one.created).toBe(models.data[0]?.created);
    const missing = await fetch(`${verifier.url}/v1/models/nope`);
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: { code: string } }).error.code).toBe('model_not_found');
    const ready = await fetch(`${verifier.url}/readyz`);
    expect(ready.status).toBe(200);
  });

  it("verifier /v1/completions: logprobs are the verifier's log-softmax, strict fields", async () => {
    const v = new OpenAI({ baseURL: `${verifier.url}/v1`, apiKey: 'unused', maxRetries: 0 });
    const steps = 6;
    const res = await v.completions.create({
      model: 'any',
      prompt: PROMPT,
      max_tokens: steps,
      temperature: 0,
      logprobs: 2,
      // @ts-expect-error edgectl (vLLM) extension
      ignore_eos: true,
    });
    const expected = await directGreedy(VERIFIER_DIR, gen.tokenizer.encode(PROMPT), steps);
    const lp = res.choices[0]?.logprobs;
    expected.forEach((e, i) => expect(lp?.token_logprobs?.[i]).toBeCloseTo(e.logprob, 4));
    expect(lp?.tokens?.join('')).toBe(res.choices[0]?.text);
    let streamed = 0;
    for await (const c of await v.completions.create({
      prompt: PROMPT,
      max_tokens: 4,
      logprobs: 0,
      stream: true,
      model: 'any',
    }))
      streamed += c.choices[0]?.logprobs?.token_logprobs?.length ?? 0;
    expect(streamed).toBe(4);
    const unknown = await refusal(
      v.completions.create({ model: 'any', prompt: 'x', max_tokens: 2, suffix: 'y' }),
    );
    expect([unknown.status, unknown.param, unknown.code]).toEqual([400, 'suffix', 'unsupported_value']);
  });

  it('the same over-long prompt gives the same code and param on the site and the verifier', async () => {
    const prompt = 'word '.repeat(4000);
    const site = await fetch(`${rt.server.url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'draft', prompt, max_tokens: 4 }),
    });
    const ver = await fetch(`${verifier.url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt, max_tokens: 4 }),
    });
    const a = ((await site.json()) as { error: { code: string; param: string } }).error;
    const b = ((await ver.json()) as { error: { code: string; param: string } }).error;
    expect([site.status, ver.status]).toEqual([400, 400]);
    expect({ code: a.code, param: a.param }).toEqual({ code: 'context_length_exceeded', param: 'prompt' });
    expect({ code: b.code, param: b.param }).toEqual({ code: a.code, param: a.param });
  });
});
