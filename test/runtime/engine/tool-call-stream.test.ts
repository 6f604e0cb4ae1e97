/**
 * The tool-call scanner: the three output shapes split into text and OpenAI call deltas, the same
 * whatever the chunking (one character at a time or all at once), and cut-short calls kept.
 */
import { describe, expect, it } from 'vitest';
import {
  newCallId,
  ToolCallStream,
  type ToolCallDelta,
  type ToolOutputShape,
} from '../../../src/runtime/engine/tool-call-stream.js';

function ids(): () => string {
  let n = 0;
  return () => `call_${n++}`;
}

/** Feeds `text` in chunks of `size`; returns the text, the deltas and the result. */
function scan(shape: ToolOutputShape, text: string, size: number) {
  const s = new ToolCallStream(shape, ids());
  let out = '';
  const deltas: ToolCallDelta[] = [];
  for (let i = 0; i < text.length; i += size) {
    const p = s.push(text.slice(i, i + size));
    out += p.text;
    deltas.push(...p.calls);
  }
  const end = s.end();
  out += end.text;
  deltas.push(...end.calls);
  return { text: out, deltas, result: s.result() };
}

/** What a client rebuilds from the deltas (as the openai SDK's stream helper does). */
function reassemble(deltas: ToolCallDelta[]): { id: string; name: string; arguments: string }[] {
  const calls: { id: string; name: string; arguments: string }[] = [];
  for (const d of deltas) {
    if (d.id !== undefined) calls[d.index] = { id: d.id, name: d.name ?? '', arguments: '' };
    const c = calls[d.index];
    if (!c) throw new Error(`delta for call ${d.index} before its header`);
    c.arguments += d.arguments;
  }
  return calls;
}

const SIZES = [1, 3, 1000];

describe('ToolCallStream', () => {
  it.each(SIZES)('reads one call object (chunks of %i)', (size) => {
    const args = '{"city": "Paris, {FR}", "days": [1, 2], "q": "a\\"}"}';
    const r = scan('single', `{"name": "get_weather", "arguments": ${args}}`, size);
    expect(r.text).toBe('');
    expect(r.result).toEqual({
      content: null,
      calls: [{ id: 'call_0', name: 'get_weather', arguments: args, complete: true }],
    });
    expect(reassemble(r.deltas)).toEqual([{ id: 'call_0', name: 'get_weather', arguments: args }]);
    // The header goes out as soon as the name is complete, the arguments in pieces after it.
    if (size === 1) expect(r.deltas.length).toBeGreaterThan(args.length / 2);
  });

  it.each(SIZES)('reads an array of calls (chunks of %i)', (size) => {
    const r = scan('array', '[{"name":"a","arguments":{"x":1}}, {"name":"b","arguments":{}}]', size);
    expect(reassemble(r.deltas)).toEqual([
      { id: 'call_0', name: 'a', arguments: '{"x":1}' },
      { id: 'call_1', name: 'b', arguments: '{}' },
    ]);
    expect(r.result.calls.map((c) => c.complete)).toEqual([true, true]);
    expect(r.deltas.filter((d) => d.id !== undefined).map((d) => d.index)).toEqual([0, 1]);
  });

  it.each(SIZES)('reads tagged calls between text (chunks of %i)', (size) => {
    const out =
      'Let me check <the> weather.<tool_call>{"name": "w", "arguments": {"c": "<tool_call>"}}</tool_call>' +
      '<tool_call>\n{"name": "t", "arguments": {}}\n</tool_call> done <tool';
    const r = scan('tagged', out, size);
    expect(r.text).toBe('Let me check <the> weather. done <tool');
    expect(r.result.content).toBe('Let me check <the> weather. done <tool');
    expect(reassemble(r.deltas)).toEqual([
      { id: 'call_0', name: 'w', arguments: '{"c": "<tool_call>"}' },
      { id: 'call_1', name: 't', arguments: '{}' },
    ]);
  });

  it('has null content when the tagged output is only calls', () => {
    const r = scan('tagged', ' <tool_call>{"name": "w", "arguments": {}}</tool_call>', 4);
    expect(r.result.content).toBeNull();
    expect(r.result.calls).toHaveLength(1);
  });

  it('keeps a call cut short, marked incomplete, with the arguments so far', () => {
    const r = scan('single', '{"name": "w", "arguments": {"city": "Par', 5);
    expect(r.result.calls).toEqual([
      { id: 'call_0', name: 'w', arguments: '{"city": "Par', complete: false },
    ]);
    expect(reassemble(r.deltas)[0]?.arguments).toBe('{"city": "Par');
  });

  it('reads a call whose keys come in another order when it closes', () => {
    const r = scan('single', '{"arguments": {"x": [1]}, "name": "w"}', 2);
    expect(reassemble(r.deltas)).toEqual([{ id: 'call_0', name: 'w', arguments: '{"x":[1]}' }]);
  });

  it('turns output that is not a call into text', () => {
    const r = scan('single', 'I would rather not.', 3);
    expect(r.text).toBe('I would rather not.');
    expect(r.result).toEqual({ content: 'I would rather not.', calls: [] });
  });

  it('makes OpenAI-like ids', () => {
    const a = newCallId();
    expect(a).toMatch(/^call_[A-Za-z0-9]{24}$/);
    expect(newCallId()).not.toBe(a);
  });
});
