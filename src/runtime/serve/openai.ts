/**
 * The site runtime's OpenAI-compatible wire format (docs/running-sites.md): request schemas
 * for `POST /v1/chat/completions` and `POST /v1/completions` (strict zod objects, so a bad field
 * is a 400 naming it and a field the site would not honour is refused, never silently ignored:
 * unknown ones here, OpenAI fields accepted only at their neutral value in request-fields.ts;
 * `repetition_penalty` is applied), the chat
 * template, `model` name parsing and the response/chunk shapes with the `edgectl` extension field
 * that says how the answer was produced.
 *
 * Chat prompts are rendered by the model's own Jinja chat template (chat-prompt.ts). `renderChat`
 * below is the transcript format the fixture models are trained on (`<speaker>: <content>` lines,
 * then `<assistant speaker>:`); their tokenizer_config.json carries it as a Jinja `chat_template`
 * (and generation_config.json `stop_strings: ["\n"]` ends a turn), and the tests hold the two equal.
 * Completions send the prompt text as it is.
 *
 * Defaults for fields a request leaves out come from the model's generation_config.json (greedy
 * when it says `do_sample: false`, as the fixture models do; `max_new_tokens` for max_tokens), and
 * OpenAI's otherwise (temperature 1; max_tokens 128 here, capped by the context left).
 */
import { z } from 'zod';
import { REPETITION_PENALTY_RANGE } from '../../inference/sampling.js';
import { ROUTES, type Route } from '../../policy/schema.js';
import { toolMessageFields, toolRequestFields } from './tools-wire.js';
import { neutralFieldNames, type RequestKind } from '../../http/openai-fields.js';

/** OpenAI's bounds: chat `top_logprobs` 0..20, completions `logprobs` 0..5. */
export const MAX_TOP_LOGPROBS = 20;
export const MAX_COMPLETION_LOGPROBS = 5;
import { MAX_RETRIEVAL_K } from '../../policy/retrieval-policy.js';
import type { RetrievalInfo } from '../engine/retrieval.js';

/** `edgectl.retrieval`: attach the top `k` passages of a site index to a chat (docs/running-sites.md). */
const retrievalField = z.strictObject({
  index: z.string().min(1),
  k: z.number().int().min(1).max(MAX_RETRIEVAL_K).optional(),
});

const routeOverride = z
  .strictObject({ route: z.enum(ROUTES).optional(), retrieval: retrievalField.optional() })
  .optional();

const stopSchema = z
  .union([z.string(), z.array(z.string()).max(4)])
  .nullable()
  .optional();

/** Fields accepted at their neutral value only (request-fields.ts checks the value). */
const neutralFields = (kind: RequestKind) =>
  Object.fromEntries(neutralFieldNames(kind).map((name) => [name, z.unknown().optional()]));

/**
 * `response_format` is validated by response-format.ts (it needs ajv and the grammar engine):
 * declared here, permissively, so the strict schema lets it through to those checks.
 */
const delegatedFields = {
  response_format: z.unknown().optional(),
};

const commonFields = {
  model: z.string().min(1),
  /** End-user id for abuse tracking at OpenAI; accepted, carries no meaning here. */
  user: z.string().nullable().optional(),
  /** Caching hints and ids with no effect on the answer; accepted. */
  prompt_cache_key: z.string().nullable().optional(),
  safety_identifier: z.string().nullable().optional(),
  max_tokens: z.number().int().min(1).nullable().optional(),
  temperature: z.number().min(0).max(2).nullable().optional(),
  top_p: z.number().gt(0).max(1).nullable().optional(),
  seed: z.number().int().nullable().optional(),
  /**
   * Hugging Face / vLLM extension: penalise every token already in prompt + output (1 = off);
   * default from generation_config.json. Applied identically by draft and verifier.
   */
  repetition_penalty: z
    .number()
    .min(REPETITION_PENALTY_RANGE.min)
    .max(REPETITION_PENALTY_RANGE.max)
    .nullable()
    .optional(),
  stop: stopSchema,
  stream: z.boolean().nullable().optional(),
  stream_options: z.strictObject({ include_usage: z.boolean().nullable().optional() }).nullable().optional(),
  /** vLLM extension: keep generating past end-of-sequence (fixed-length outputs for benchmarks). */
  ignore_eos: z.boolean().optional(),
  /**
   * edgectl extension: `route` ("edge" | "speculative" | "cloud") asks for a route (policy
   * permitting); `retrieval: {index, k}` attaches passages of a site index (chats only).
   */
  edgectl: routeOverride,
};

const contentPart = z.looseObject({ type: z.literal('text'), text: z.string() });

export const chatMessageSchema = z.looseObject({
  role: z.enum(['system', 'developer', 'user', 'assistant', 'tool']),
  content: z
    .union([z.string(), z.array(contentPart)])
    .nullable()
    .optional(),
  name: z
    .string()
    .regex(/^[^\n:]{1,64}$/, 'a speaker name has 1-64 characters and no newline or colon')
    .optional(),
  ...toolMessageFields,
});
export type ChatMessage = z.infer<typeof chatMessageSchema>;

export const chatRequestSchema = z.strictObject({
  ...neutralFields('chat'),
  ...delegatedFields,
  ...commonFields,
  messages: z.array(chatMessageSchema).min(1, 'give at least one message'),
  /** OpenAI's newer name for max_tokens. */
  max_completion_tokens: z.number().int().min(1).nullable().optional(),
  /** tools, tool_choice, parallel_tool_calls (tools-wire.ts). */
  ...toolRequestFields,
  /** Per-token log probabilities of the output (logprobs.ts), with `top_logprobs` alternatives. */
  logprobs: z.boolean().nullable().optional(),
  top_logprobs: z.number().int().min(0).max(MAX_TOP_LOGPROBS).nullable().optional(),
  /** Stored-completion tags (only meaningful with `store`, which is refused): accepted. */
  metadata: z.record(z.string(), z.string()).nullable().optional(),
});
export type ChatRequest = z.infer<typeof chatRequestSchema>;

export const completionRequestSchema = z.strictObject({
  ...neutralFields('completion'),
  ...delegatedFields,
  ...commonFields,
  /** Text only: token-id prompts cannot be checked against block rules or redacted. */
  prompt: z.union([z.string(), z.array(z.string()).length(1, 'give exactly one prompt')]),
  /** Log probabilities of each token and of the `logprobs` most likely alternatives (0..5, as OpenAI). */
  logprobs: z.number().int().min(0).max(MAX_COMPLETION_LOGPROBS).nullable().optional(),
});
export type CompletionRequest = z.infer<typeof completionRequestSchema>;

/** Ends an assistant turn of the transcript format. */
export const CHAT_TURN_STOP = '\n';

const ROLE_SPEAKER: Record<ChatMessage['role'], string> = {
  system: 'System',
  developer: 'System',
  user: 'User',
  assistant: 'Assistant',
  tool: 'Tool',
};

function messageText(m: ChatMessage): string {
  if (m.content === null || m.content === undefined) return '';
  if (typeof m.content === 'string') return m.content;
  return m.content.map((p) => p.text).join('');
}

/** The transcript format (see the module comment); the served path renders the model's template. */
export function renderChat(messages: readonly ChatMessage[]): string {
  let assistant = 'Assistant';
  for (const m of messages) if (m.role === 'assistant' && m.name) assistant = m.name;
  const lines = messages.map((m) => `${m.name ?? ROLE_SPEAKER[m.role]}: ${messageText(m)}`);
  return `${lines.join('\n')}\n${assistant}:`;
}

/** `<model>` or `<model>:<adapter>`. */
export function parseModelName(model: string): { model: string; adapter: string | undefined } {
  const i = model.indexOf(':');
  return i < 0 ? { model, adapter: undefined } : { model: model.slice(0, i), adapter: model.slice(i + 1) };
}

export function stopList(stop: string | string[] | null | undefined): string[] {
  if (stop === null || stop === undefined) return [];
  return (Array.isArray(stop) ? stop : [stop]).filter((s) => s.length > 0);
}

export type OpenAiFinishReason = 'stop' | 'length' | 'content_filter' | 'tool_calls';

/** How an answer was produced: in every body, on the final stream chunk, and (route) as a header. */
export interface EdgectlInfo {
  route: Route | 'blocked';
  reason: string;
  /** True when the verifier should have checked the answer but could not (edge fallback). */
  unverified: boolean;
  stats: {
    draftTokens: number;
    acceptedTokens: number;
    verifyRounds: number;
    /** acceptedTokens / draftTokens, null without speculative rounds. */
    acceptance: number | null;
    /** Mean tokens drafted per verify round, null without rounds. */
    k: number | null;
  };
  /** PII values replaced by placeholders before anything left the site. */
  redactions: number;
  /** With tools: whether every call parsed and validated against its function, and what failed. */
  tool_calls?: { valid: boolean; errors: string[] };
  /** Constrained requests (`response_format`): whether the output validates, and why not. */
  structured?: { valid: boolean; reason?: string };
  /** With logprobs asked: which model's distribution they come from (logprobs-render.ts). */
  logprobs_source?: 'verifier' | 'draft' | 'mixed';
  /** When mixed: the source of each token, in order. */
  logprobs_sources?: ('verifier' | 'draft')[];
  /** Ids of the index passages attached to the prompt (retrieval, RAG); absent without retrieval. */
  citations?: string[];
  /** How retrieval went (index, passages, latency, index age, staleness warning). */
  retrieval?: RetrievalInfo;
}

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export function usage(promptTokens: number, completionTokens: number): Usage {
  return {
    prompt_tokens: promptTokens,
    completion_tokens: completionTokens,
    total_tokens: promptTokens + completionTokens,
  };
}

export interface ResponseBase {
  id: string;
  created: number;
  model: string;
}

export function chatResponse(
  base: ResponseBase,
  text: string,
  finish: OpenAiFinishReason,
  u: Usage,
  edgectl: EdgectlInfo,
  /** The message with tool calls (tools-wire.ts `toolMessage`) instead of `text`. */
  message?: Record<string, unknown>,
): Record<string, unknown> {
  return {
    ...base,
    object: 'chat.completion',
    choices: [
      {
        index: 0,
        message: message ?? { role: 'assistant', content: text, refusal: null },
        finish_reason: finish,
        logprobs: null,
      },
    ],
    usage: u,
    edgectl,
  };
}

export function completionResponse(
  base: ResponseBase,
  text: string,
  finish: OpenAiFinishReason,
  u: Usage,
  edgectl: EdgectlInfo,
): Record<string, unknown> {
  return {
    ...base,
    object: 'text_completion',
    choices: [{ index: 0, text, finish_reason: finish, logprobs: null }],
    usage: u,
    edgectl,
  };
}

/** One streamed chunk: a text delta (`first` adds the assistant role), or the final one. */
export function chunk(
  kind: 'chat' | 'completion',
  base: ResponseBase,
  delta: { text: string; first?: boolean; finish?: OpenAiFinishReason; edgectl?: EdgectlInfo },
): Record<string, unknown> {
  const finish_reason = delta.finish ?? null;
  const extra = delta.edgectl ? { edgectl: delta.edgectl } : {};
  if (kind === 'chat') {
    const d: Record<string, unknown> = delta.first ? { role: 'assistant', content: delta.text } : {};
    if (!delta.first && (delta.text !== '' || delta.finish === undefined)) d.content = delta.text;
    return {
      ...base,
      object: 'chat.completion.chunk',
      choices: [{ index: 0, delta: d, finish_reason, logprobs: null }],
      ...extra,
    };
  }
  return {
    ...base,
    object: 'text_completion',
    choices: [{ index: 0, text: delta.text, finish_reason, logprobs: null }],
    ...extra,
  };
}

/**
 * The serialized form of `chunk(kind, base, { text })` for a plain text delta, with the constant
 * parts serialized once per response: per-token streaming then costs one JSON.stringify of the text.
 */
export function deltaWriter(kind: 'chat' | 'completion', base: ResponseBase): (text: string) => string {
  const marker = '\u0000';
  const template = JSON.stringify(chunk(kind, base, { text: marker }));
  const at = template.indexOf(JSON.stringify(marker));
  const head = template.slice(0, at);
  const tail = template.slice(at + JSON.stringify(marker).length);
  return (text) => head + JSON.stringify(text) + tail;
}

/** The usage chunk of `stream_options.include_usage` (OpenAI sends it last, with no choices). */
export function usageChunk(
  kind: 'chat' | 'completion',
  base: ResponseBase,
  u: Usage,
): Record<string, unknown> {
  return {
    ...base,
    object: kind === 'chat' ? 'chat.completion.chunk' : 'text_completion',
    choices: [],
    usage: u,
  };
}
