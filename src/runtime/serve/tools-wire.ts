/**
 * The OpenAI wire form of tool calls on `POST /v1/chat/completions` (issue #18 item 2;
 * docs/running-sites.md, "Tools"): the request fields (`tools`, `tool_choice`,
 * `parallel_tool_calls`; assistant `tool_calls` and `tool` messages' `tool_call_id`) as zod
 * schemas openai.ts spreads into its own, their conversion to the engine's plan (tool-calls.ts,
 * where the schemas are checked and the grammar built), and the answer's side: the message with
 * `tool_calls` (arguments as a JSON string, `content` null when there are only calls) and the
 * stream chunks OpenAI sends for calls — `index`, `id`, `type` and `function.name` on a call's
 * first delta, `function.arguments` fragments after it.
 *
 * This module imports nothing from openai.ts at run time, so openai.ts can import it.
 */
import { z } from 'zod';
import { badRequest } from '../../http/http.js';
import type { GrammarConstraint } from '../../inference/grammar/index.js';
import type { ToolCallDelta } from '../engine/tool-call-stream.js';
import type { ResponseBase } from './openai.js';
import { planTools, type ToolCallsOutcome, type ToolChoice, type ToolPlan } from '../engine/tool-calls.js';

/** OpenAI's rule for function names. */
const NAME = /^[a-zA-Z0-9_-]{1,64}$/;
const NAME_RULE = 'a function name has 1-64 letters, digits, underscores or dashes';

const functionSchema = z.looseObject({
  name: z.string().regex(NAME, NAME_RULE),
  description: z.string().nullable().optional(),
  parameters: z.record(z.string(), z.unknown()).nullable().optional(),
  /** Accepted: calls are always generated under the schema's grammar and checked with ajv. */
  strict: z.boolean().nullable().optional(),
});

const toolSchema = z.looseObject({ type: z.literal('function'), function: functionSchema });

const toolChoiceSchema = z.union([
  z.enum(['none', 'auto', 'required']),
  z.looseObject({ type: z.literal('function'), function: z.looseObject({ name: z.string() }) }),
]);

/** Request fields of a chat (spread into chatRequestSchema). */
export const toolRequestFields = {
  tools: z
    .array(toolSchema)
    .min(1, 'give at least one tool, or leave tools out')
    .max(128)
    .nullable()
    .optional(),
  tool_choice: toolChoiceSchema.nullable().optional(),
  parallel_tool_calls: z.boolean().nullable().optional(),
};

const toolCallSchema = z.looseObject({
  id: z.string().min(1),
  type: z.literal('function'),
  function: z.looseObject({ name: z.string().min(1), arguments: z.string() }),
});

/** Message fields (spread into chatMessageSchema): an assistant's calls, a tool result's call id. */
export const toolMessageFields = {
  tool_calls: z.array(toolCallSchema).nullable().optional(),
  tool_call_id: z.string().min(1).optional(),
};

interface ToolBody {
  tools?: z.infer<typeof toolSchema>[] | null | undefined;
  tool_choice?: z.infer<typeof toolChoiceSchema> | null | undefined;
  parallel_tool_calls?: boolean | null | undefined;
  messages: {
    role: string;
    tool_calls?: { id: string }[] | null | undefined;
    tool_call_id?: string | undefined;
  }[];
}

/** Every `tool` message answers a call of an earlier assistant message (as OpenAI requires). */
function checkToolMessages(messages: ToolBody['messages']): void {
  const ids = new Set<string>();
  messages.forEach((m, i) => {
    for (const c of m.tool_calls ?? []) ids.add(c.id);
    if (m.role !== 'tool') return;
    const param = `messages[${i}].tool_call_id`;
    if (m.tool_call_id === undefined) {
      throw badRequest(`${param}: a tool message needs the id of the call it answers`, 'invalid_body', param);
    }
    if (!ids.has(m.tool_call_id)) {
      throw badRequest(
        `${param}: "${m.tool_call_id}" is not the id of a tool call in an earlier assistant message`,
        'invalid_body',
        param,
      );
    }
  });
}

/** The engine's tool plan of a chat body, or undefined without tools (400s name the field). */
export function toolPlanOf(body: ToolBody): ToolPlan | undefined {
  checkToolMessages(body.messages);
  const tools = body.tools ?? [];
  const wire = body.tool_choice ?? undefined;
  if (tools.length === 0) {
    if (wire !== undefined && wire !== 'none') {
      throw badRequest(
        'tool_choice: is only allowed when tools are given',
        'invalid_tool_choice',
        'tool_choice',
      );
    }
    return undefined;
  }
  const choice: ToolChoice =
    wire === undefined ? 'auto' : typeof wire === 'string' ? wire : { name: wire.function.name };
  return planTools({
    tools: tools.map((t) => ({
      name: t.function.name,
      description: t.function.description ?? undefined,
      parameters: t.function.parameters ?? undefined,
    })),
    choice,
    parallel: body.parallel_tool_calls ?? true,
  });
}

/**
 * The request's grammar: the tool plan's, or `response_format`'s; both at once is a 400 (the calls
 * have their own grammar; `tool_choice: "none"` keeps the tools out of it).
 */
export function withToolConstraint(
  plan: ToolPlan | undefined,
  format: GrammarConstraint | undefined,
): GrammarConstraint | undefined {
  if (plan?.constraint !== undefined && format !== undefined) {
    throw badRequest(
      `response_format: cannot be combined with tool_choice ${JSON.stringify(plan.choice)}: tool calls have their own grammar; use tool_choice "none" or leave response_format out`,
      'invalid_request',
      'response_format',
    );
  }
  return plan?.constraint ?? format;
}

/** The answer's message with tool calls (OpenAI's shape). */
export function toolMessage(out: ToolCallsOutcome): Record<string, unknown> {
  return {
    role: 'assistant',
    content: out.content,
    refusal: null,
    ...(out.calls.length === 0
      ? {}
      : {
          tool_calls: out.calls.map((c) => ({
            id: c.id,
            type: 'function',
            function: { name: c.name, arguments: c.arguments },
          })),
        }),
  };
}

/** What the `edgectl` field says about the calls: whether all are valid, and what failed. */
export function toolCallsInfo(out: ToolCallsOutcome): { valid: boolean; errors: string[] } {
  return { valid: out.valid, errors: out.errors };
}

/** The stream chunk of one piece of a call (`first`: the stream's first chunk, with the role). */
export function toolCallChunk(base: ResponseBase, d: ToolCallDelta, first: boolean): Record<string, unknown> {
  return {
    ...base,
    object: 'chat.completion.chunk',
    choices: [{ index: 0, delta: toolCallDelta(d, first), finish_reason: null, logprobs: null }],
  };
}

function toolCallDelta(d: ToolCallDelta, first: boolean): Record<string, unknown> {
  const call: Record<string, unknown> = { index: d.index };
  if (d.id !== undefined) {
    call.id = d.id;
    call.type = 'function';
    call.function = { name: d.name ?? '', arguments: d.arguments };
  } else call.function = { arguments: d.arguments };
  return { ...(first ? { role: 'assistant', content: null } : {}), tool_calls: [call] };
}
