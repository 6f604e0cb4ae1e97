/**
 * Tool plans and checks: the grammar each tool_choice builds (and that xgrammar compiles it and
 * its matcher accepts a call and refuses a wrong one), `$ref`s re-rooted when a schema is embedded,
 * the 400s, and the finish that says whether every call is valid.
 */
import { describe, expect, it } from 'vitest';
import { grammarEngine } from '../../../src/inference/grammar/index.js';
import { TextTokenizer } from '../../../src/inference/tokenizer.js';
import { ToolCallStream } from '../../../src/runtime/engine/tool-call-stream.js';
import {
  finishCalls,
  planTools,
  withToolCalls,
  type ToolFunction,
  type ToolPlan,
} from '../../../src/runtime/engine/tool-calls.js';
import type { EngineEvent } from '../../../src/runtime/engine/types.js';
import { HttpError } from '../../../src/http/http.js';
import { ROOT } from './tool-fixtures.js';
import { join } from 'node:path';

const WEATHER: ToolFunction = {
  name: 'get_weather',
  parameters: {
    type: 'object',
    properties: { city: { type: 'string', enum: ['Paris', 'Lima'] } },
    required: ['city'],
    additionalProperties: false,
  },
};
const TREE: ToolFunction = {
  name: 'plant',
  parameters: {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    type: 'object',
    properties: { tree: { $ref: '#/$defs/tree' } },
    required: ['tree'],
    $defs: { tree: { type: 'object', properties: { height: { type: 'integer' } }, required: ['height'] } },
  },
};
const NOARGS: ToolFunction = { name: 'ping' };

function refusal(f: () => unknown): HttpError {
  try {
    f();
  } catch (err) {
    if (err instanceof HttpError) return err;
    throw err;
  }
  throw new Error('expected a refusal');
}

describe('planTools', () => {
  it('builds one call object for a named function, an array for required + parallel, tags for auto', () => {
    const named = planTools({ tools: [WEATHER, TREE], choice: { name: 'plant' }, parallel: true });
    expect(named.shape).toBe('single');
    expect(named.constraint).toMatchObject({
      kind: 'json_schema',
      name: 'plant',
      schema: {
        $schema: 'https://json-schema.org/draft/2020-12/schema',
        properties: {
          name: { const: 'plant' },
          arguments: { properties: { tree: { $ref: '#/properties/arguments/$defs/tree' } } },
        },
      },
    });
    const req = planTools({ tools: [WEATHER, TREE], choice: 'required', parallel: true });
    expect(req.shape).toBe('array');
    expect(req.constraint).toMatchObject({
      kind: 'json_schema',
      schema: {
        type: 'array',
        minItems: 1,
        items: { anyOf: [{ $ref: '#/$defs/call_0' }, { $ref: '#/$defs/call_1' }] },
        $defs: {
          call_1: {
            properties: {
              arguments: { properties: { tree: { $ref: '#/$defs/call_1/properties/arguments/$defs/tree' } } },
            },
          },
        },
      },
    });
    const one = planTools({ tools: [WEATHER], choice: 'required', parallel: false });
    expect(one.shape).toBe('single');
    const auto = planTools({ tools: [WEATHER, NOARGS], choice: 'auto', parallel: false });
    expect(auto.shape).toBe('tagged');
    expect(auto.stops).toEqual(['</tool_call>']);
    expect(auto.constraint).toEqual({
      kind: 'structural_tag',
      triggers: ['<tool_call>'],
      tags: [
        {
          begin: '<tool_call>{"name": "get_weather", "arguments": ',
          schema: WEATHER.parameters,
          end: '}</tool_call>',
        },
        {
          begin: '<tool_call>{"name": "ping", "arguments": ',
          schema: { type: 'object', properties: {} },
          end: '}</tool_call>',
        },
      ],
    });
    expect(planTools({ tools: [WEATHER], choice: 'none', parallel: true }).constraint).toBeUndefined();
  });

  it('refuses an unknown tool_choice, duplicate names and invalid schemas, naming the field', () => {
    const unknown = refusal(() => planTools({ tools: [WEATHER], choice: { name: 'nope' }, parallel: true }));
    expect([unknown.status, unknown.param, unknown.code]).toEqual([
      400,
      'tool_choice',
      'invalid_tool_choice',
    ]);
    const dup = refusal(() => planTools({ tools: [WEATHER, WEATHER], choice: 'auto', parallel: true }));
    expect(dup.param).toBe('tools[1].function.name');
    const bad = refusal(() =>
      planTools({
        tools: [NOARGS, { name: 'x', parameters: { type: 'object', required: 'city' } }],
        choice: 'auto',
        parallel: true,
      }),
    );
    expect(bad.param).toBe('tools[1].function.parameters');
    expect(bad.message).toMatch(/^tools\[1\]\.function\.parameters\/required: must be array/);
  });

  it('compiles every shape with xgrammar; the matcher takes a valid call and refuses another name', async () => {
    const tokenizer = TextTokenizer.load(join(ROOT, 'artifacts/models/draft'));
    const vocabSize = tokenizer.vocabSize;
    const call = (name: string) => ({ name, arguments: { tree: { height: 3 } } });
    // The grammar fixes the layout of JSON; accept the call if one of the usual layouts passes.
    const layouts = [
      (v: unknown) => JSON.stringify(v),
      (v: unknown) => JSON.stringify(v).replaceAll('":', '": ').replaceAll(',"', ', "'),
      (v: unknown) => JSON.stringify(v, null, 2),
    ];
    async function accepts(plan: ToolPlan, name: string): Promise<boolean> {
      const compiled = await grammarEngine().compile(tokenizer, plan.constraint as never, {
        vocabSize,
        eosTokenIds: [0],
      });
      for (const layout of layouts) {
        const text =
          plan.shape === 'tagged'
            ? `Sure.<tool_call>{"name": "${name}", "arguments": ${layout(call(name).arguments)}}</tool_call>`
            : layout(plan.shape === 'array' ? [call(name)] : call(name));
        const m = await compiled.matcher();
        if (tokenizer.encode(text, { addSpecialTokens: false }).every((id) => m.accept(id))) return true;
      }
      return false;
    }
    for (const choice of ['required', 'auto', { name: 'plant' }] as const) {
      for (const parallel of [true, false]) {
        const plan = planTools({ tools: [WEATHER, TREE, NOARGS], choice, parallel });
        expect(await accepts(plan, 'plant'), JSON.stringify({ choice, parallel })).toBe(true);
        expect(await accepts(plan, 'plank'), JSON.stringify({ choice, parallel })).toBe(false);
      }
    }
  });
});

describe('finishCalls and withToolCalls', () => {
  const plan: ToolPlan = planTools({ tools: [WEATHER, NOARGS], choice: 'required', parallel: true });

  function scanned(text: string) {
    const s = new ToolCallStream('array');
    s.push(text);
    s.end();
    return s.result();
  }

  it('is valid only when every call parses and validates', () => {
    expect(
      finishCalls(
        plan,
        scanned(
          '[{"name": "get_weather", "arguments": {"city": "Lima"}}, {"name": "ping", "arguments": {}}]',
        ),
      ),
    ).toMatchObject({
      valid: true,
      errors: [],
      content: null,
    });
    const bad = finishCalls(
      plan,
      scanned('[{"name": "get_weather", "arguments": {"city": "Rome"}}, {"name": "pong", "arguments": {}}]'),
    );
    expect(bad.valid).toBe(false);
    expect(bad.errors).toEqual([
      'tool_calls[0].arguments/city: must be equal to one of the allowed values',
      'tool_calls[1]: "pong" is not a function in tools',
    ]);
    expect(finishCalls(plan, scanned('[{"name": "get_weather", "arguments": {"ci')).errors).toEqual([
      'tool_calls[0]: cut short (max_tokens)',
    ]);
    expect(finishCalls(plan, scanned('no')).errors).toEqual([
      'tool_calls: the output holds no call although tool_choice requires one',
    ]);
  });

  it('turns text events after the route into call deltas and a tool_calls finish', async () => {
    const info = {
      route: 'edge',
      reason: '',
      unverified: false,
      stats: { draftTokens: 0, acceptedTokens: 0, verifyRounds: 0, acceptance: null, k: null },
      redactions: 0,
    } as const;
    async function* steps(): AsyncGenerator<EngineEvent, string, undefined> {
      yield { type: 'route', route: 'edge', reason: 'default', escalated: false };
      yield { type: 'text', text: '[{"name": "ping", "argu' };
      yield { type: 'text', text: 'ments": {}}]' };
      yield {
        type: 'finish',
        reason: 'stop',
        route: 'edge',
        unverified: false,
        promptTokens: 1,
        completionTokens: 9,
        info,
      };
      return 'outcome';
    }
    const events: EngineEvent[] = [];
    const gen = withToolCalls(steps(), plan);
    let n = await gen.next();
    while (!n.done) {
      events.push(n.value);
      n = await gen.next();
    }
    expect(n.value).toBe('outcome');
    expect(events.map((e) => e.type)).toEqual(['route', 'tool_call', 'finish']);
    const finish = events.at(-1) as Extract<EngineEvent, { type: 'finish' }>;
    expect(finish.reason).toBe('tool_calls');
    expect(finish.tools?.calls).toEqual([
      { id: expect.stringMatching(/^call_/), name: 'ping', arguments: '{}' },
    ]);
  });
});
