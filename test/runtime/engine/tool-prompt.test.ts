/**
 * Tools in the prompt: a template with tool support (Qwen2.5's own, on the Qwen2 family fixture)
 * gets `tools` and assistant `tool_calls` with object arguments, and encodes with its control
 * tokens; the fixture draft's transcript template gets the one-line fallback system message and
 * earlier calls written into the assistant's content.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ChatTemplate, type ChatTurn } from '../../../src/inference/chat-template.js';
import { TextTokenizer } from '../../../src/inference/tokenizer.js';
import { redactToolCalls, templateToolSupport, toolTurns } from '../../../src/runtime/engine/tool-prompt.js';
import type { ToolFunction } from '../../../src/runtime/engine/tool-calls.js';
import { qwenToolsDir, ROOT } from './tool-fixtures.js';

const DRAFT = join(ROOT, 'artifacts/models/draft');

const TOOLS: ToolFunction[] = [
  {
    name: 'get_weather',
    description: 'Weather for a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  },
  { name: 'get_time' },
];

const CHAT: ChatTurn[] = [
  { role: 'user', content: 'Weather in Paris?' },
  {
    role: 'assistant',
    content: '',
    tool_calls: [
      { id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } },
    ],
  },
  { role: 'tool', content: '{"temp": 21}', tool_call_id: 'call_1' },
];

describe('tools in the prompt', () => {
  it('passes tools and object arguments to a template that supports them', () => {
    const dir = qwenToolsDir();
    const template = ChatTemplate.load(dir, TextTokenizer.load(dir));
    expect(templateToolSupport(template)).toEqual({ tools: true, calls: true });
    const t = toolTurns(template, CHAT, TOOLS);
    const text = template.render(t.turns, t.options);
    expect(text).toContain('<tools>\n{"type": "function", "function": {"name": "get_weather"');
    expect(text).toContain('{"name": "get_time", "parameters": {"type": "object", "properties": {}}}');
    expect(text).toContain(
      '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>',
    );
    expect(text).toContain('<|im_start|>user\n<tool_response>\n{"temp": 21}\n</tool_response><|im_end|>');
    expect(text.endsWith('<|im_start|>assistant\n')).toBe(true);
    const start = TextTokenizer.load(dir).tokenId('<|im_start|>');
    const { ids } = template.encode(t.turns, t.options);
    expect(ids.filter((id) => id === start)).toHaveLength(5);
  });

  it('gives a template without tool support the one-line fallback system message', () => {
    const template = ChatTemplate.load(DRAFT, TextTokenizer.load(DRAFT));
    expect(templateToolSupport(template)).toEqual({ tools: false, calls: false });
    const t = toolTurns(template, CHAT, TOOLS);
    expect(t.options).toEqual({});
    const lines = template.render(t.turns, t.options).split('\n');
    expect(lines).toHaveLength(5);
    expect(lines[0]).toMatch(/^System: Functions: \[\{"name":"get_weather",/);
    expect(lines[0]).toContain('answer <tool_call>{"name": <name>, "arguments": <object>}</tool_call>.');
    expect(lines[2]).toBe(
      'Assistant: <tool_call>{"name": "get_weather", "arguments": {"city":"Paris"}}</tool_call>',
    );
    expect(lines[3]).toBe('Tool: {"temp": 21}');
    expect(lines[4]).toBe('Assistant:');
  });

  it('appends the fallback to an existing system message, and leaves chats without tools alone', () => {
    const template = ChatTemplate.load(DRAFT, TextTokenizer.load(DRAFT));
    const sys: ChatTurn[] = [{ role: 'system', content: 'Be brief.' }, ...CHAT.slice(0, 1)];
    const t = toolTurns(template, sys, TOOLS);
    expect(t.turns).toHaveLength(2);
    expect(t.turns[0]?.content).toMatch(/^Be brief\. Functions: /);
    expect(toolTurns(template, sys, undefined).turns).toEqual(sys);
  });

  it("passes earlier calls' arguments through redaction", () => {
    const turn = redactToolCalls(CHAT[1] as ChatTurn, (t) => t.replace('Paris', '<CITY_1>'));
    expect(turn.tool_calls).toEqual([
      { id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"<CITY_1>"}' } },
    ]);
    expect(redactToolCalls(CHAT[0] as ChatTurn, () => 'x')).toBe(CHAT[0]);
  });
});
