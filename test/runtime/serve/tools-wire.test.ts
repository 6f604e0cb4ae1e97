/**
 * The wire side of tool calls: the request fields through the chat schema and into a plan
 * (defaults, refusals naming the field, response_format together with a tool grammar), and the
 * message and stream chunks in OpenAI's shape.
 */
import { describe, expect, it } from 'vitest';
import { HttpError, parseBody } from '../../../src/http/http.js';
import { chatRequestSchema } from '../../../src/runtime/serve/openai.js';
import {
  toolCallChunk,
  toolMessage,
  toolPlanOf,
  withToolConstraint,
} from '../../../src/runtime/serve/tools-wire.js';

const TOOL = {
  type: 'function',
  function: { name: 'get_time', parameters: { type: 'object', properties: {} } },
};
const USER = { role: 'user', content: 'time?' };

function plan(body: Record<string, unknown>) {
  return toolPlanOf(parseBody(chatRequestSchema, { model: 'draft', messages: [USER], ...body }));
}

function refusal(f: () => unknown): HttpError {
  try {
    f();
  } catch (err) {
    if (err instanceof HttpError) return err;
    throw err;
  }
  throw new Error('expected a refusal');
}

describe('tools on the wire', () => {
  it('defaults to auto with parallel calls, and has no plan without tools', () => {
    expect(plan({ tools: [TOOL] })).toMatchObject({ choice: 'auto', parallel: true, shape: 'tagged' });
    expect(
      plan({ tools: [TOOL], tool_choice: { type: 'function', function: { name: 'get_time' } } }),
    ).toMatchObject({
      choice: { name: 'get_time' },
      shape: 'single',
    });
    expect(plan({})).toBeUndefined();
    expect(plan({ tool_choice: 'none' })).toBeUndefined();
  });

  it('refuses bad fields, naming them', () => {
    expect(refusal(() => plan({ tool_choice: 'required' })).param).toBe('tool_choice');
    expect(refusal(() => plan({ tools: [] })).param).toBe('tools');
    const badName = { type: 'function', function: { name: 'get time' } };
    expect(refusal(() => plan({ tools: [badName] })).message).toMatch(
      /^tools\.0\.function\.name: a function name has 1-64/,
    );
    expect(refusal(() => plan({ tools: [TOOL], tool_choice: 'sometimes' })).param).toBe('tool_choice');
  });

  it('refuses response_format together with a tool grammar, but not with tool_choice none', () => {
    const format = { kind: 'json_object' } as const;
    const forced = plan({ tools: [TOOL], tool_choice: 'required' });
    const e = refusal(() => withToolConstraint(forced, format));
    expect([e.status, e.param]).toEqual([400, 'response_format']);
    expect(withToolConstraint(plan({ tools: [TOOL], tool_choice: 'none' }), format)).toBe(format);
    expect(withToolConstraint(forced, undefined)).toBe(forced?.constraint);
  });

  it('writes the message and the stream chunks as OpenAI does', () => {
    const out = {
      content: null,
      calls: [{ id: 'call_1', name: 'get_time', arguments: '{}' }],
      valid: true,
      errors: [],
    };
    expect(toolMessage(out)).toEqual({
      role: 'assistant',
      content: null,
      refusal: null,
      tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_time', arguments: '{}' } }],
    });
    const base = { id: 'chatcmpl-1', created: 1, model: 'draft' };
    const first = toolCallChunk(base, { index: 0, id: 'call_1', name: 'get_time', arguments: '' }, true);
    expect(first).toEqual({
      ...base,
      object: 'chat.completion.chunk',
      choices: [
        {
          index: 0,
          delta: {
            role: 'assistant',
            content: null,
            tool_calls: [
              { index: 0, id: 'call_1', type: 'function', function: { name: 'get_time', arguments: '' } },
            ],
          },
          finish_reason: null,
          logprobs: null,
        },
      ],
    });
    const later = toolCallChunk(base, { index: 0, arguments: '{}' }, false);
    expect((later.choices as { delta: unknown }[])[0]?.delta).toEqual({
      tool_calls: [{ index: 0, function: { arguments: '{}' } }],
    });
  });
});
