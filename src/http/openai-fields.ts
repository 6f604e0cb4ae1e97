/**
 * Which OpenAI request fields edgectl's OpenAI-compatible endpoints (the site's chat and
 * completions, the verifier's completions) accept although they do not act on them (issue #18
 * item 4, "every field honoured or refused"). The request schemas (src/runtime/serve/openai.ts,
 * src/verifier/protocol.ts) are strict: a field they do not declare is a 400 `unknown_parameter`
 * naming it. The fields here are declared because clients
 * send them with neutral values by default (LangChain's ChatOpenAI puts `n`, penalties, `logit_bias`
 * and `user` into every call when they are set, the official `openai` client passes whatever the
 * caller gives): a neutral value (the one that changes nothing, e.g. `presence_penalty: 0`,
 * `n: 1`, `logit_bias: {}`, `store: false`) is accepted, anything else is a 400 `unsupported_value`
 * naming the field and saying why, rather than an answer that silently ignores it.
 *
 * The table is also what docs/running-sites.md ("Request fields") lists; keep the two in step.
 */
import { unsupportedValue } from './http.js';

export type RequestKind = 'chat' | 'completion';

interface NeutralField {
  kinds: readonly RequestKind[];
  /** Whether the value changes nothing (absent and null always do). */
  neutral: (v: unknown) => boolean;
  /** Why other values are refused, and what to use instead. */
  why: string;
}

/** Only absence (or null) is neutral: every value asks for something not done here. */
const onlyAbsent = (): boolean => false;
const isZero = (v: unknown): boolean => v === 0;
const isOne = (v: unknown): boolean => v === 1;
const isEmptyObject = (v: unknown): boolean =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && Object.keys(v).length === 0;
const BOTH = ['chat', 'completion'] as const;

export const NEUTRAL_FIELDS: Readonly<Record<string, NeutralField>> = {
  frequency_penalty: {
    kinds: BOTH,
    neutral: isZero,
    why: 'only 0 is accepted: frequency penalties are not applied here (repetition_penalty is)',
  },
  presence_penalty: {
    kinds: BOTH,
    neutral: isZero,
    why: 'only 0 is accepted: presence penalties are not applied here (repetition_penalty is)',
  },
  n: { kinds: BOTH, neutral: isOne, why: 'only 1 is accepted: one choice per request' },
  best_of: { kinds: ['completion'], neutral: isOne, why: 'only 1 is accepted: one candidate per request' },
  logit_bias: {
    kinds: BOTH,
    neutral: isEmptyObject,
    why: 'only {} is accepted: logit biases would change what the verifier checks and are not applied',
  },
  suffix: {
    kinds: ['completion'],
    neutral: (v) => v === '',
    why: 'insertion (text after the completion) is not supported; leave suffix out',
  },
  echo: {
    kinds: ['completion'],
    neutral: (v) => v === false,
    why: 'the prompt is not echoed; leave echo out',
  },
  store: { kinds: ['chat'], neutral: (v) => v === false, why: 'completions are not stored here' },
  service_tier: {
    kinds: ['chat'],
    neutral: (v) => v === 'auto' || v === 'default',
    why: 'a site has one service tier: only "auto" or "default"',
  },
  modalities: {
    kinds: ['chat'],
    neutral: (v) => Array.isArray(v) && v.length === 1 && v[0] === 'text',
    why: 'text is the only output modality: only ["text"]',
  },
  audio: { kinds: ['chat'], neutral: onlyAbsent, why: 'audio output is not supported' },
  prediction: { kinds: ['chat'], neutral: onlyAbsent, why: 'predicted outputs are not supported' },
  reasoning_effort: { kinds: ['chat'], neutral: onlyAbsent, why: 'the served models do not reason' },
  verbosity: { kinds: ['chat'], neutral: onlyAbsent, why: 'verbosity is not supported' },
  web_search_options: { kinds: ['chat'], neutral: onlyAbsent, why: 'web search is not supported' },
  prompt_cache_retention: { kinds: ['chat'], neutral: onlyAbsent, why: 'prompt caches are not retained' },
  functions: {
    kinds: ['chat'],
    neutral: onlyAbsent,
    why: 'the deprecated `functions` API is not supported; use tools',
  },
  function_call: {
    kinds: ['chat'],
    neutral: onlyAbsent,
    why: 'the deprecated `function_call` API is not supported; use tool_choice',
  },
};

/** Field names of `kind` checked here (the schemas declare them as `z.unknown()`). */
export function neutralFieldNames(kind: RequestKind): string[] {
  return Object.entries(NEUTRAL_FIELDS)
    .filter(([, f]) => f.kinds.includes(kind))
    .map(([name]) => name);
}

/** Throws a 400 `unsupported_value` naming the first field of `body` set to a non-neutral value. */
export function checkNeutralFields(kind: RequestKind, body: Readonly<Record<string, unknown>>): void {
  for (const [name, field] of Object.entries(NEUTRAL_FIELDS)) {
    if (!field.kinds.includes(kind)) continue;
    const v = body[name];
    if (v === undefined || v === null || field.neutral(v)) continue;
    throw unsupportedValue(name, `${JSON.stringify(v)}: ${field.why}`);
  }
}
