/**
 * How tools reach the prompt (issue #18 item 2; docs/running-sites.md, "Tools"). A chat template
 * that uses a `tools` variable gets the request's functions in the form transformers passes
 * (`{type: "function", function: {name, description, parameters}}`), and one that reads
 * `tool_calls` gets an assistant message's calls with `arguments` as an object (what Hugging Face
 * templates expect; a string that is not JSON stays a string). A template without tool support —
 * the fixture models' transcript template among them — gets the fallback many servers use: a system
 * message (added, or appended to the first one) listing the functions as JSON on one line and
 * saying how to call them (`<tool_call>{"name": ..., "arguments": ...}</tool_call>`, the format the
 * `auto` grammar allows), and earlier calls written into the assistant's content in that format.
 * `tool` messages are passed to the template as they are (role `tool`, `tool_call_id`): a
 * template that refuses them answers 400 as for any chat it cannot render.
 */
import type { ChatTemplate, ChatTurn, RenderOptions } from '../../inference/chat-template.js';
import { TOOL_CALL_BEGIN, TOOL_CALL_END } from './tool-call-stream.js';
import type { ToolFunction } from './tool-calls.js';

interface WireCall {
  id?: string;
  type?: string;
  function: { name: string; arguments: string };
}

/** Whether the template reads `tools` / `tool_calls` (a word in its source). */
export function templateToolSupport(template: ChatTemplate): { tools: boolean; calls: boolean } {
  const text = template.source.text;
  return { tools: /\btools\b/.test(text), calls: /\btool_calls\b/.test(text) };
}

function argumentsValue(args: string): unknown {
  try {
    return JSON.parse(args) as unknown;
  } catch {
    return args;
  }
}

/** `<tool_call>{"name": "f", "arguments": {...}}</tool_call>` (the fallback's and `auto`'s format). */
export function taggedCall(name: string, args: string): string {
  const json = JSON.stringify(argumentsValue(args));
  return `${TOOL_CALL_BEGIN}{"name": ${JSON.stringify(name)}, "arguments": ${json}}${TOOL_CALL_END}`;
}

/**
 * The fallback system text: one line, so transcript templates keep one line per turn, and short
 * (`$schema` dropped), because small models have small contexts.
 */
export function fallbackToolsText(tools: readonly ToolFunction[]): string {
  const list = tools.map((t) => {
    const { $schema: _dialect, ...parameters } = t.parameters ?? { type: 'object', properties: {} };
    return {
      name: t.name,
      ...(t.description === undefined ? {} : { description: t.description }),
      parameters,
    };
  });
  return (
    `Functions: ${JSON.stringify(list)}. To call one, answer ` +
    `${TOOL_CALL_BEGIN}{"name": <name>, "arguments": <object>}${TOOL_CALL_END}.`
  );
}

function withFallbackSystem(turns: ChatTurn[], text: string): ChatTurn[] {
  const first = turns[0];
  if (first?.role === 'system') return [{ ...first, content: `${first.content} ${text}` }, ...turns.slice(1)];
  return [{ role: 'system', content: text }, ...turns];
}

function callsOf(turn: ChatTurn): WireCall[] {
  const calls = turn.tool_calls;
  return Array.isArray(calls) ? (calls as WireCall[]) : [];
}

/** An assistant turn's calls in the template's form, or written into its content (module comment). */
function assistantCalls(turn: ChatTurn, templateReadsCalls: boolean): ChatTurn {
  const calls = callsOf(turn);
  const { tool_calls: _drop, ...rest } = turn;
  if (calls.length === 0) return rest;
  if (templateReadsCalls) {
    return {
      ...rest,
      tool_calls: calls.map((c) => ({
        ...(c.id === undefined ? {} : { id: c.id }),
        type: 'function',
        function: { name: c.function.name, arguments: argumentsValue(c.function.arguments) },
      })),
    };
  }
  const written = calls.map((c) => taggedCall(c.function.name, c.function.arguments)).join('');
  return { ...rest, content: `${rest.content}${written}` };
}

/** An assistant turn with each call's arguments text passed through `redact` (PII redaction). */
export function redactToolCalls(turn: ChatTurn, redact: (text: string) => string): ChatTurn {
  const calls = callsOf(turn);
  if (calls.length === 0) return turn;
  return {
    ...turn,
    tool_calls: calls.map((c) => ({
      ...c,
      function: { ...c.function, arguments: redact(c.function.arguments) },
    })),
  };
}

/** The turns and render options of a chat with tools (module comment). */
export function toolTurns(
  template: ChatTemplate,
  turns: readonly ChatTurn[],
  tools: readonly ToolFunction[] | undefined,
): { turns: ChatTurn[]; options: RenderOptions } {
  const support = templateToolSupport(template);
  let out = turns.map((t) => (t.role === 'assistant' ? assistantCalls(t, support.calls) : t));
  if (tools === undefined || tools.length === 0) return { turns: out, options: {} };
  if (!support.tools) {
    out = withFallbackSystem(out, fallbackToolsText(tools));
    return { turns: out, options: {} };
  }
  const list = tools.map((t) => ({
    type: 'function',
    function: {
      name: t.name,
      ...(t.description === undefined ? {} : { description: t.description }),
      parameters: t.parameters ?? { type: 'object', properties: {} },
    },
  }));
  return { turns: out, options: { tools: list } };
}
