/**
 * Tool calls against a real site and a real verifier process, with clients we did not write: the
 * official `openai` client (tool_choice named / required / auto, streaming deltas reassembled by
 * the SDK, a conversation with a tool result) and `@langchain/openai` `bindTools` with two tools;
 * the faults (an unknown tool in tool_choice, an invalid parameters schema, arguments that fail
 * validation, a tool message answering no call); and a model whose own chat template renders the
 * tools (Qwen2.5's template on the Qwen2 family fixture, edge route).
 */
import { symlinkSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AIMessageChunk } from '@langchain/core/messages';
import { tool } from '@langchain/core/tools';
import { ChatOpenAI } from '@langchain/openai';
import { Ajv } from 'ajv';
import OpenAI from 'openai';
import type { ChatCompletionTool } from 'openai/resources/chat/completions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { LoadedGeneration } from '../../../src/runtime/engine/generation.js';
import { qwenToolsDir } from '../engine/tool-fixtures.js';
import {
  loadTestGeneration,
  makeGenerationDir,
  startRecordingProxy,
  startTestRuntime,
  startVerifierProcess,
  tempDir,
  type RecordingProxy,
  type TestRuntime,
  type VerifierProcess,
} from './helpers.js';

const WEATHER = {
  type: 'object',
  properties: { city: { type: 'string', enum: ['Paris', 'Lima'] } },
  required: ['city'],
  additionalProperties: false,
};
const TIME = {
  type: 'object',
  properties: { zone: { type: 'integer', minimum: -12, maximum: 14 } },
  required: ['zone'],
  additionalProperties: false,
};
// Short on purpose: the fallback lists them in the prompt, and the fixture's context is 512 tokens.
const TOOLS: ChatCompletionTool[] = [
  { type: 'function', function: { name: 'get_weather', parameters: WEATHER } },
  { type: 'function', function: { name: 'get_time', parameters: TIME } },
];
const SCHEMAS: Record<string, object> = { get_weather: WEATHER, get_time: TIME };
const ajv = new Ajv();

function expectValidCall(c: { id: string; type: string; function: { name: string; arguments: string } }) {
  expect(c.id).toMatch(/^call_[A-Za-z0-9]{24}$/);
  expect(c.type).toBe('function');
  const schema = SCHEMAS[c.function.name];
  expect(schema, c.function.name).toBeDefined();
  expect(ajv.validate(schema as object, JSON.parse(c.function.arguments)), c.function.arguments).toBe(true);
}

const ASK = [{ role: 'user' as const, content: 'What is the weather in Paris?' }];

describe('tool calls at the site (real verifier process)', () => {
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

  it('calls the named function, speculatively, with arguments valid for its schema', async () => {
    const before = proxy.requests.length;
    const r = await client.chat.completions.create({
      model: 'draft',
      messages: ASK,
      tools: TOOLS,
      tool_choice: { type: 'function', function: { name: 'get_weather' } },
      max_tokens: 100,
    });
    const choice = r.choices[0];
    expect(choice?.finish_reason).toBe('tool_calls');
    expect(choice?.message.content).toBeNull();
    const calls = choice?.message.tool_calls ?? [];
    expect(calls).toHaveLength(1);
    const call = calls[0] as { id: string; type: 'function'; function: { name: string; arguments: string } };
    expect(call.function.name).toBe('get_weather');
    expectValidCall(call);
    const info = (r as unknown as { edgectl: { route: string; tool_calls: unknown } }).edgectl;
    expect(info.route).toBe('speculative');
    expect(info.tool_calls).toEqual({ valid: true, errors: [] });
    // The fixture's template has no tool support: the fallback system message reached the verifier.
    const sent = proxy.requests
      .slice(before)
      .filter((q) => q.body !== '')
      .map((q) => JSON.parse(q.body) as { prompt_ids?: number[] });
    const prompt = sent.find((b) => Array.isArray(b.prompt_ids))?.prompt_ids ?? [];
    expect(gen.tokenizer.decode(prompt)).toMatch(/^System: Functions: \[\{"name":"get_weather"/);
  });

  it('calls one of the tools under required (one call without parallel_tool_calls, an array with)', async () => {
    const one = await client.chat.completions.create({
      model: 'draft',
      messages: ASK,
      tools: TOOLS,
      tool_choice: 'required',
      parallel_tool_calls: false,
      max_tokens: 100,
    });
    expect(one.choices[0]?.finish_reason).toBe('tool_calls');
    expect(one.choices[0]?.message.tool_calls).toHaveLength(1);
    for (const c of one.choices[0]?.message.tool_calls ?? []) expectValidCall(c as never);

    // With parallel calls a small model may keep adding calls until max_tokens: every complete
    // call is still valid, and only the last one can be cut short.
    const many = await client.chat.completions.create({
      model: 'draft',
      messages: ASK,
      tools: TOOLS,
      tool_choice: 'required',
      max_tokens: 150,
    });
    const calls = many.choices[0]?.message.tool_calls ?? [];
    const info = (many as unknown as { edgectl: { tool_calls: { valid: boolean; errors: string[] } } })
      .edgectl;
    expect(calls.length).toBeGreaterThanOrEqual(1);
    expect(new Set(calls.map((c) => c.id)).size).toBe(calls.length);
    if (many.choices[0]?.finish_reason === 'tool_calls') {
      expect(info.tool_calls).toEqual({ valid: true, errors: [] });
      for (const c of calls) expectValidCall(c as never);
    } else {
      expect(many.choices[0]?.finish_reason).toBe('length');
      expect(info.tool_calls.errors).toEqual([`tool_calls[${calls.length - 1}]: cut short (max_tokens)`]);
      for (const c of calls.slice(0, -1)) expectValidCall(c as never);
    }
  });

  it('streams tool-call deltas that the SDK reassembles into the same call', async () => {
    const params = {
      model: 'draft',
      messages: ASK,
      tools: TOOLS,
      tool_choice: { type: 'function' as const, function: { name: 'get_time' } },
      max_tokens: 100,
      temperature: 0,
    };
    const plain = await client.chat.completions.create(params);
    const stream = client.chat.completions.stream(params);
    const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
    stream.on('chunk', (c) => chunks.push(c));
    const final = await stream.finalChatCompletion();
    const deltas = chunks.flatMap((c) => c.choices[0]?.delta.tool_calls ?? []);
    expect(deltas.length).toBeGreaterThan(1);
    expect(deltas[0]).toMatchObject({ index: 0, type: 'function', function: { name: 'get_time' } });
    expect(deltas[0]?.id).toMatch(/^call_/);
    expect(chunks[0]?.choices[0]?.delta).toMatchObject({ role: 'assistant', content: null });
    expect(deltas.slice(1).every((d) => d.id === undefined && d.function?.name === undefined)).toBe(true);
    expect(chunks.at(-1)?.choices[0]?.finish_reason).toBe('tool_calls');
    const call = final.choices[0]?.message.tool_calls?.[0] as never;
    expectValidCall(call);
    // Greedy: the stream reassembles to the same arguments as the JSON answer.
    expect((call as { function: { arguments: string } }).function.arguments).toBe(
      (plain.choices[0]?.message.tool_calls?.[0] as { function: { arguments: string } }).function.arguments,
    );
  });

  it('answers in text under auto when the model does not call, and after a tool result', async () => {
    const auto = await client.chat.completions.create({
      model: 'draft',
      messages: ASK,
      tools: TOOLS,
      max_tokens: 16,
    });
    expect(auto.choices[0]?.finish_reason).toMatch(/^(stop|length)$/);
    expect(typeof auto.choices[0]?.message.content).toBe('string');
    expect(auto.choices[0]?.message.tool_calls).toBeUndefined();

    const after = await client.chat.completions.create({
      model: 'draft',
      max_tokens: 8,
      tools: TOOLS,
      tool_choice: 'none',
      messages: [
        ...ASK,
        {
          role: 'assistant',
          content: null,
          tool_calls: [
            {
              id: 'call_a',
              type: 'function',
              function: { name: 'get_weather', arguments: '{"city":"Paris"}' },
            },
          ],
        },
        { role: 'tool', tool_call_id: 'call_a', content: '{"temp": 21}' },
      ],
    });
    expect(after.choices[0]?.message.tool_calls).toBeUndefined();
    expect(typeof after.choices[0]?.message.content).toBe('string');
  });

  it('returns tool_calls to LangChain bindTools with two tools', async () => {
    const weather = tool(async () => 'sunny', {
      name: 'get_weather',
      description: 'Weather',
      schema: z.object({ city: z.enum(['Paris', 'Lima']) }),
    });
    const time = tool(async () => 'noon', {
      name: 'get_time',
      description: 'Time',
      schema: z.object({ zone: z.number().int().min(-12).max(14) }),
    });
    const model = new ChatOpenAI({
      model: 'draft',
      apiKey: 'unused',
      maxRetries: 0,
      maxTokens: 100,
      configuration: { baseURL: `${rt.server.url}/v1` },
    });
    const named = await model
      .bindTools([weather, time], { tool_choice: 'get_weather' })
      .invoke('Weather in Lima?');
    expect(named.tool_calls).toHaveLength(1);
    expect(named.tool_calls?.[0]?.name).toBe('get_weather');
    expect(named.tool_calls?.[0]?.id).toMatch(/^call_/);
    expect(() => weather.schema.parse(named.tool_calls?.[0]?.args)).not.toThrow();

    const any = await model
      .bindTools([weather, time], { tool_choice: 'any', parallel_tool_calls: false })
      .invoke('What time is it in zone 3?');
    expect(any.tool_calls).toHaveLength(1);
    expect(['get_weather', 'get_time']).toContain(any.tool_calls?.[0]?.name);
    expect(any.invalid_tool_calls ?? []).toHaveLength(0);

    // Streamed: LangChain merges the tool-call chunks into the same call.
    let merged: AIMessageChunk | undefined;
    for await (const c of await model
      .bindTools([weather, time], { tool_choice: 'get_time' })
      .stream('Time?')) {
      merged = merged ? merged.concat(c) : c;
    }
    expect(merged?.tool_calls?.[0]?.name).toBe('get_time');
    expect(() => time.schema.parse(merged?.tool_calls?.[0]?.args)).not.toThrow();
  });

  it('refuses an unknown tool in tool_choice, naming tool_choice', async () => {
    const err = await client.chat.completions
      .create({
        model: 'draft',
        messages: ASK,
        tools: TOOLS,
        tool_choice: { type: 'function', function: { name: 'nope' } },
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    const e = err as InstanceType<typeof OpenAI.BadRequestError>;
    expect(e.param).toBe('tool_choice');
    expect(e.message).toMatch(/"nope", which is not among tools \("get_weather", "get_time"\)/);
    const none = await client.chat.completions
      .create({ model: 'draft', messages: ASK, tool_choice: 'required' })
      .catch((x: unknown) => x);
    expect((none as { param?: string }).param).toBe('tool_choice');
  });

  it('refuses an invalid parameters schema, naming the tool and the path', async () => {
    const bad = [
      TOOLS[0] as ChatCompletionTool,
      {
        type: 'function' as const,
        function: {
          name: 'get_time',
          parameters: { type: 'object', properties: { zone: { type: 'integr' } } },
        },
      },
    ];
    const err = (await client.chat.completions
      .create({ model: 'draft', messages: ASK, tools: bad })
      .catch((e: unknown) => e)) as InstanceType<typeof OpenAI.BadRequestError>;
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect(err.param).toBe('tools[1].function.parameters');
    expect(err.message).toMatch(/tools\[1\]\.function\.parameters\/properties\/zone\/type: /);
    const dup = (await client.chat.completions
      .create({
        model: 'draft',
        messages: ASK,
        tools: [TOOLS[0] as ChatCompletionTool, TOOLS[0] as ChatCompletionTool],
      })
      .catch((e: unknown) => e)) as { param?: string };
    expect(dup.param).toBe('tools[1].function.name');
    // Valid JSON Schema that xgrammar cannot compile (a lookbehind pattern): the tools are at fault.
    const lookbehind = (await client.chat.completions
      .create({
        model: 'draft',
        messages: ASK,
        tool_choice: 'required',
        tools: [
          {
            type: 'function',
            function: {
              name: 'f',
              parameters: { type: 'object', properties: { s: { type: 'string', pattern: '(?<=a)b' } } },
            },
          },
        ],
      })
      .catch((e: unknown) => e)) as InstanceType<typeof OpenAI.BadRequestError>;
    expect([lookbehind.status, lookbehind.param, lookbehind.code]).toEqual([
      400,
      'tools',
      'unsupported_schema',
    ]);
    expect(lookbehind.message).toMatch(/tools: the grammar engine cannot compile this schema: .*Lookbehind/);
  });

  it('refuses a tool message that answers no earlier call', async () => {
    const err = (await client.chat.completions
      .create({
        model: 'draft',
        messages: [...ASK, { role: 'tool', tool_call_id: 'call_x', content: '1' }],
      })
      .catch((e: unknown) => e)) as { status?: number; param?: string };
    expect(err.status).toBe(400);
    expect(err.param).toBe('messages[1].tool_call_id');
  });

  it('flags arguments that fail validation: finish length, not tool_calls, with the error', async () => {
    // xgrammar does not enforce multipleOf; ajv does, so the call is generated but fails the check.
    const strict = {
      type: 'object',
      properties: { n: { type: 'integer', minimum: 1, maximum: 9, multipleOf: 10 } },
      required: ['n'],
      additionalProperties: false,
    };
    const r = await client.chat.completions.create({
      model: 'draft',
      messages: ASK,
      tools: [{ type: 'function', function: { name: 'pick', parameters: strict } }],
      tool_choice: 'required',
      parallel_tool_calls: false,
      max_tokens: 100,
    });
    const choice = r.choices[0];
    expect(choice?.finish_reason).toBe('length');
    expect((choice?.message.tool_calls?.[0] as { function: { name: string } }).function.name).toBe('pick');
    const info = (r as unknown as { edgectl: { tool_calls: { valid: boolean; errors: string[] } } }).edgectl;
    expect(info.tool_calls.valid).toBe(false);
    expect(info.tool_calls.errors[0]).toMatch(/^tool_calls\[0\]\.arguments\/n: must be multiple of 10/);
  });
});

describe('tool calls through a template with tool support (Qwen2.5 template, edge route)', () => {
  let gen: LoadedGeneration;
  let rt: TestRuntime;
  let client: OpenAI;

  beforeAll(async () => {
    const dir = tempDir('edgectl-gen-');
    symlinkSync(qwenToolsDir(), join(dir, 'model'));
    mkdirSync(join(dir, 'adapters'));
    mkdirSync(join(dir, 'policy'));
    writeFileSync(join(dir, 'policy', 'policy.yaml'), 'version: 1\nrouting:\n  default: edge\n');
    gen = await loadTestGeneration(dir);
    rt = await startTestRuntime(gen, undefined);
    client = new OpenAI({ baseURL: `${rt.server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  });
  afterAll(async () => {
    await rt?.server.close(1000);
    await gen?.dispose();
  });

  it('renders the tools with the model template and returns the call', async () => {
    const r = await client.chat.completions.create({
      model: gen.modelName,
      messages: ASK,
      tools: TOOLS,
      tool_choice: { type: 'function', function: { name: 'get_weather' } },
      max_tokens: 100,
    });
    expect(r.choices[0]?.finish_reason).toBe('tool_calls');
    expectValidCall(r.choices[0]?.message.tool_calls?.[0] as never);
  });
});
