/**
 * Tool calls at the site engine (issue #18 item 2; docs/running-sites.md, "Tools"): a request's
 * `tools` / `tool_choice` / `parallel_tool_calls` become a plan — the function schemas checked
 * with ajv (a 400 naming `tools[i].function.parameters`), the output shape and the grammar
 * constraint that makes the model produce calls — and the engine's text events become OpenAI
 * tool-call events (tool-call-stream.ts) with a finish that says whether every call is valid.
 *
 * Shapes, as vLLM builds them: a named `tool_choice` → one call object `{"name": <const>,
 * "arguments": <the function's parameters schema>}` (json_schema); `required` → one such object
 * for any of the tools, or with `parallel_tool_calls` (the default) a non-empty array of them;
 * `auto` → a structural tag: free text, and after the trigger `<tool_call>` a call object and
 * `</tool_call>` (Hermes/Qwen's format), as many times as the model likes — once when
 * `parallel_tool_calls` is false (`</tool_call>` then ends the answer); `none` → plain text.
 *
 * Arguments are checked after generation with ajv against their function's schema: the grammar
 * engine does not enforce every keyword (formats, `multipleOf`, ...) and an answer can be cut
 * short. `finish_reason` is `tool_calls` only when every call parsed and validated; otherwise it
 * is `length`, as for any constrained output that does not validate (structured.ts), the calls
 * are still returned as generated, and the finish's `tools.errors` says what failed (the
 * `edgectl.tool_calls` field of the response).
 */
import type { ValidateFunction } from 'ajv';
import { UserError } from '../../foundation/errors.js';
import { compileSchema, type GrammarConstraint } from '../../inference/grammar/index.js';
import { badRequest, HttpError } from '../../http/http.js';
import {
  TOOL_CALL_BEGIN,
  TOOL_CALL_END,
  ToolCallStream,
  type ToolCallDelta,
  type ToolOutputShape,
} from './tool-call-stream.js';
import type { EngineEvent } from './types.js';

export interface ToolFunction {
  name: string;
  description?: string | undefined;
  /** JSON Schema of the arguments object; absent: no parameters. */
  parameters?: Record<string, unknown> | undefined;
}

export type ToolChoice = 'none' | 'auto' | 'required' | { name: string };

/** A request's tools as plain data (the wire form is tools-wire.ts's). */
export interface ToolRequest {
  tools: ToolFunction[];
  choice: ToolChoice;
  parallel: boolean;
}

export interface ToolPlan extends ToolRequest {
  /** How calls appear in the output; undefined for `none` (plain text). */
  shape: ToolOutputShape | undefined;
  constraint: GrammarConstraint | undefined;
  /** Stop strings the plan adds (`</tool_call>` for one call under `auto`). */
  stops: string[];
  /**
   * The grammar alone ends the answer (forced calls: end-of-sequence only after a complete call),
   * so the model's turn stops (generation_config.json `stop_strings`, e.g. the fixtures' newline)
   * do not apply: they would cut a call whose JSON spans lines.
   */
  ownsEnd: boolean;
}

export interface ToolCallsOutcome {
  content: string | null;
  calls: { id: string; name: string; arguments: string }[];
  /** Every call parsed and validated against its function's schema (and there was one if forced). */
  valid: boolean;
  errors: string[];
}

const EMPTY_PARAMETERS = { type: 'object', properties: {} };

function parametersOf(t: ToolFunction): Record<string, unknown> {
  return t.parameters ?? EMPTY_PARAMETERS;
}

/** Checks every function schema with ajv; the validators by name. */
export function checkTools(tools: readonly ToolFunction[]): Map<string, ValidateFunction> {
  const out = new Map<string, ValidateFunction>();
  tools.forEach((t, i) => {
    if (out.has(t.name)) {
      throw badRequest(
        `tools[${i}].function.name: "${t.name}" is already the name of another tool; names must be unique`,
        'invalid_tools',
        `tools[${i}].function.name`,
      );
    }
    const where = `tools[${i}].function.parameters`;
    try {
      out.set(t.name, compileSchema(parametersOf(t), where));
    } catch (err) {
      if (err instanceof UserError) throw badRequest(err.message, 'invalid_tool_schema', where);
      throw err;
    }
  });
  return out;
}

/**
 * A schema embedded below `path` of a bigger one: its local `$ref`s (`#/$defs/X`) are re-rooted
 * there and its `$schema` dropped (only a root may carry one).
 */
function embed(schema: unknown, path: string): unknown {
  if (Array.isArray(schema)) return schema.map((s) => embed(s, path));
  if (schema === null || typeof schema !== 'object') return schema;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(schema)) {
    if (k === '$schema') continue;
    if (k === '$ref' && typeof v === 'string' && v.startsWith('#')) out[k] = `#${path}${v.slice(1)}`;
    else out[k] = embed(v, path);
  }
  return out;
}

/** `{"name": <const>, "arguments": <parameters>}` at JSON pointer `at` of the whole schema. */
function callSchema(t: ToolFunction, at: string): Record<string, unknown> {
  return {
    type: 'object',
    properties: { name: { const: t.name }, arguments: embed(parametersOf(t), `${at}/properties/arguments`) },
    required: ['name', 'arguments'],
    additionalProperties: false,
  };
}

/**
 * The calls' schema: one call object, or (several tools, or an array) each tool's call object in
 * the root `$defs` referenced by name, because xgrammar resolves `$ref` pointers through object
 * keys only (not `anyOf/1`).
 */
function callsSchema(tools: readonly ToolFunction[], array: boolean): Record<string, unknown> {
  if (tools.length === 1 && !array) return callSchema(tools[0] as ToolFunction, '');
  const defs = Object.fromEntries(tools.map((t, i) => [`call_${i}`, callSchema(t, `/$defs/call_${i}`)]));
  const refs = tools.map((_, i) => ({ $ref: `#/$defs/call_${i}` }));
  const one = refs.length === 1 ? (refs[0] as object) : { anyOf: refs };
  return { ...(array ? { type: 'array', items: one, minItems: 1 } : one), $defs: defs };
}

function dialect(tools: readonly ToolFunction[]): Record<string, unknown> {
  const s = tools.map((t) => t.parameters?.$schema).find((d) => typeof d === 'string');
  return s === undefined ? {} : { $schema: s };
}

/** The constraint and output shape of a checked request (module comment). */
function grammarFor(req: ToolRequest): Pick<ToolPlan, 'shape' | 'constraint' | 'stops' | 'ownsEnd'> {
  const { tools, choice, parallel } = req;
  if (choice === 'none') return { shape: undefined, constraint: undefined, stops: [], ownsEnd: false };
  if (choice === 'auto') {
    const tags = tools.map((t) => ({
      begin: `${TOOL_CALL_BEGIN}{"name": ${JSON.stringify(t.name)}, "arguments": `,
      schema: parametersOf(t),
      end: `}${TOOL_CALL_END}`,
    }));
    return {
      shape: 'tagged',
      constraint: { kind: 'structural_tag', tags, triggers: [TOOL_CALL_BEGIN] },
      stops: parallel ? [] : [TOOL_CALL_END],
      ownsEnd: false,
    };
  }
  const picked = choice === 'required' ? tools : tools.filter((t) => t.name === choice.name);
  const array = choice === 'required' && parallel;
  const schema = callsSchema(picked, array);
  const name = choice === 'required' ? 'tool_calls' : choice.name;
  return {
    shape: array ? 'array' : 'single',
    constraint: { kind: 'json_schema', schema: { ...dialect(picked), ...schema }, name, strict: true },
    stops: [],
    ownsEnd: true,
  };
}

/** Checks a request's tools and choice and builds its plan (400s name the field at fault). */
export function planTools(req: ToolRequest): ToolPlan {
  checkTools(req.tools);
  const choice = req.choice;
  if (typeof choice === 'object' && !req.tools.some((t) => t.name === choice.name)) {
    const known = req.tools.map((t) => `"${t.name}"`).join(', ');
    throw badRequest(
      `tool_choice: names the function "${choice.name}", which is not among tools (${known || 'none given'})`,
      'invalid_tool_choice',
      'tool_choice',
    );
  }
  if (choice !== 'none' && req.tools.length === 0) {
    throw badRequest('tool_choice: needs at least one tool in tools', 'invalid_tool_choice', 'tool_choice');
  }
  return { ...req, ...grammarFor(req) };
}

/** The calls checked against their functions (module comment). */
export function finishCalls(plan: ToolPlan, scanned: ReturnType<ToolCallStream['result']>): ToolCallsOutcome {
  const validators = checkTools(plan.tools);
  const errors: string[] = [];
  scanned.calls.forEach((c, i) => {
    const validate = validators.get(c.name);
    if (!c.complete) return void errors.push(`tool_calls[${i}]: cut short (max_tokens)`);
    if (!validate) return void errors.push(`tool_calls[${i}]: "${c.name}" is not a function in tools`);
    let args: unknown;
    try {
      args = JSON.parse(c.arguments);
    } catch (err) {
      return void errors.push(`tool_calls[${i}].arguments: not JSON (${(err as Error).message})`);
    }
    if (!validate(args)) {
      const e = validate.errors?.[0];
      errors.push(`tool_calls[${i}].arguments${e?.instancePath ?? ''}: ${e?.message ?? 'invalid'}`);
    }
  });
  if (scanned.calls.length === 0 && (plan.shape === 'single' || plan.shape === 'array')) {
    errors.push('tool_calls: the output holds no call although tool_choice requires one');
  }
  return {
    content: scanned.content,
    calls: scanned.calls.map(({ id, name, arguments: a }) => ({ id, name, arguments: a })),
    valid: errors.length === 0,
    errors,
  };
}

type Finish = Extract<EngineEvent, { type: 'finish' }>;

/**
 * The next event; a grammar the engine cannot compile is the tools' fault here, not
 * `response_format`'s (structured.ts names that field for every constraint it compiles).
 */
async function nextStep<R>(
  steps: AsyncGenerator<EngineEvent, R, undefined>,
  plan: ToolPlan,
): Promise<IteratorResult<EngineEvent, R>> {
  try {
    return await steps.next();
  } catch (err) {
    if (!(err instanceof HttpError) || err.param !== 'response_format' || plan.constraint === undefined) {
      throw err;
    }
    const message = err.message.replace(/^response_format(\.json_schema\.schema)?/, 'tools');
    throw new HttpError(err.status, message, err.code, err.type, err.headers, 'tools');
  }
}

/** `tool_calls` when every call is valid; an invalid answer finishes `length`, as structured outputs do. */
function finishReason(e: Finish, out: ToolCallsOutcome): Finish['reason'] {
  if (e.reason !== 'stop' && e.reason !== 'length') return e.reason;
  if (!out.valid) return 'length';
  return e.reason === 'stop' && out.calls.length > 0 ? 'tool_calls' : e.reason;
}

function* deltas(calls: readonly ToolCallDelta[]): Generator<EngineEvent> {
  for (const c of calls) yield { type: 'tool_call', ...c };
}

/**
 * The engine's events with the output read as tool calls: text after the route decision goes
 * through the scanner (a block rule's refusal comes before it and stays text).
 */
export async function* withToolCalls<R>(
  steps: AsyncGenerator<EngineEvent, R, undefined>,
  plan: ToolPlan,
): AsyncGenerator<EngineEvent, R, undefined> {
  const shape = plan.shape;
  const scanner = shape === undefined ? undefined : new ToolCallStream(shape);
  let routed = false;
  try {
    for (;;) {
      const n = await nextStep(steps, plan);
      if (n.done) return n.value;
      const e = n.value;
      if (e.type === 'route') routed = true;
      if (!scanner || !routed || (e.type !== 'text' && e.type !== 'finish')) {
        yield e;
        continue;
      }
      if (e.type === 'text') {
        const piece = scanner.push(e.text);
        if (piece.text !== '') yield { type: 'text', text: piece.text };
        yield* deltas(piece.calls);
        continue;
      }
      const tail = scanner.end();
      if (tail.text !== '') yield { type: 'text', text: tail.text };
      yield* deltas(tail.calls);
      const tools = finishCalls(plan, scanner.result());
      yield { ...e, reason: finishReason(e, tools), tools };
    }
  } finally {
    // A consumer that stops early (client gone) ends the request's steps too.
    await steps.return(undefined as R);
  }
}
