/**
 * The verifier's wire protocol (docs/running-sites.md): request schemas (zod, so the server
 * rejects bad input with a 400 naming the field) and response shapes, shared by the server and the
 * HTTP client in src/verifier/client/http-verifier.ts so the two cannot drift. Token ids travel as JSON
 * integers; field names are snake_case like the OpenAI API the completions endpoint mirrors.
 *
 * Session protocol (the engine's `Verifier` interface over HTTP): `POST /v1/sessions` prefills
 * the prompt and keeps its KV cache; each `POST /v1/sessions/{id}/verify` carries only the new
 * draft tokens d1..dk. The server runs ONE forward pass over the tokens it has not seen (the
 * previous round's verifier token) plus the draft, accepts a prefix, rolls the cache back to it and
 * returns the verifier's next token (a correction, or a bonus token when all k were accepted). The
 * first round scores the draft against the prompt's last logits kept from the prefill.
 */
import { z } from 'zod';

import { MAX_DRAFT_TOKENS } from '../inference/in-process-verifier.js';
import { MAX_TOP_LOGPROBS } from '../inference/logprobs.js';
import { neutralFieldNames } from '../http/openai-fields.js';
import { REPETITION_PENALTY_RANGE } from '../inference/sampling.js';

/**
 * The environment variable holding the verifier's bearer token: read by `verifier up` (the token
 * the server requires) and by its clients (`site up`, `generate --verifier`, the benchmark), which
 * send it as `Authorization: Bearer <token>` on every request and verify stream.
 */
export const VERIFIER_TOKEN_ENV = 'EDGECTL_VERIFIER_TOKEN';

const tokenId = z.number().int().nonnegative();
export const tokenIdsSchema = z.array(tokenId);
const repetitionPenalty = z.number().min(REPETITION_PENALTY_RANGE.min).max(REPETITION_PENALTY_RANGE.max);

export const samplingSchema = z
  .object({
    /** 0 = greedy (the default). */
    temperature: z.number().min(0).max(100).default(0),
    top_p: z.number().gt(0).max(1).optional(),
    top_k: z.number().int().min(0).optional(),
    /**
     * Hugging Face repetition penalty over the session's whole token history (1 = off). Servers
     * that list `repetition_penalty` in /v1/identity `features` accept it; older ones refuse the
     * field (400), which is right: ignoring it would break speculative exactness.
     */
    repetition_penalty: repetitionPenalty.optional(),
    /** Seeds the server's accept/reject and bonus-token draws, for reproducible sampling. */
    seed: z.number().int().optional(),
  })
  .strict();
export type SamplingWire = z.input<typeof samplingSchema>;

/**
 * The draft's sampling distribution for one drafted token: dense (one probability per vocabulary
 * id) or sparse (ids with their probabilities; the rest are 0). Absent = the draft picked its
 * tokens deterministically (greedy), which the server treats as a one-hot q.
 */
export const draftProbsRowSchema = z.union([
  z.array(z.number().min(0).max(1)),
  z.object({ ids: tokenIdsSchema, probs: z.array(z.number().min(0).max(1)) }).strict(),
]);
export type DraftProbsRow = z.infer<typeof draftProbsRowSchema>;

export const createSessionSchema = z
  .object({
    prompt_ids: tokenIdsSchema.min(1).optional(),
    prompt: z.string().min(1).optional(),
    /** LoRA adapter to apply on the verifier side (refused: this verifier serves its base model). */
    adapter: z.string().optional(),
    sampling: samplingSchema.optional(),
    /**
     * Also return the verifier's first token (from the prefill pass): the session then holds
     * prompt + first_token and the first verify drafts after it. Saves a round trip before the
     * first token. Servers that list `first_token` in /v1/identity `features` accept it.
     */
    first_token: z.boolean().optional(),
    /**
     * Return each emitted token's logprob in the verifier's distribution with this many top
     * alternatives (src/inference/logprobs.ts): `first_token_logprob`, and `logprobs` on every
     * verify answer. Servers that list `logprobs` in /v1/identity `features` accept it.
     */
    logprobs: z.number().int().min(0).max(MAX_TOP_LOGPROBS).optional(),
  })
  .strict()
  .refine((b) => (b.prompt_ids === undefined) !== (b.prompt === undefined), {
    message: 'give exactly one of prompt_ids or prompt',
    path: ['prompt_ids'],
  });
export type CreateSessionRequest = z.input<typeof createSessionSchema>;

export interface CreateSessionResponse {
  session_id: string;
  /** Tokens in the prompt (now in the server's KV cache). */
  prompt_tokens: number;
  /** Longest context (prompt + generated) the model accepts. */
  max_context: number;
  /** Idle seconds after which the server releases the session. */
  expires_in_s: number;
  /** With `first_token: true`: the verifier's token after the prompt (now part of the session). */
  first_token?: number;
  /** With `first_token: true`: whether first_token is an end-of-sequence id. */
  eos?: boolean;
  /** With `first_token: true`: tokens the session holds (prompt + first_token). */
  context_tokens?: number;
  /** With `first_token: true` and `logprobs`: first_token's logprob and top alternatives. */
  first_token_logprob?: WireLogprob;
}

/** A token's logprob with its top alternatives (ids), as sessions with `logprobs` return them. */
export interface WireLogprob {
  token: number;
  logprob: number;
  top: { token: number; logprob: number }[];
}

/**
 * Optional protocol features a server announces in /v1/identity (clients use them when listed):
 * `first_token` (POST /v1/sessions returns the verifier's first token), `verify_stream` (verify
 * rounds over kept-alive WebSockets at /v1/stream, verify-stream.ts), `repetition_penalty`
 * (`sampling.repetition_penalty` on sessions and stateless verify, `repetition_penalty` on
 * /v1/completions; a client needing a penalty refuses a server that does not list it),
 * `token_masks` (grammar-constrained decoding, issue #18: `token_masks` on verify rounds, stateless
 * verify and stream frames, `response_format` on /v1/completions; a site refuses constrained
 * speculative or cloud requests against a server that does not list it), `logprobs` (`logprobs` on
 * POST /v1/sessions: verify answers carry each emitted token's logprob).
 */
export const VERIFIER_FEATURES = [
  'first_token',
  'verify_stream',
  'repetition_penalty',
  'token_masks',
  'logprobs',
] as const;
export type VerifierFeature = (typeof VERIFIER_FEATURES)[number];

/**
 * One position's grammar mask: the allowed ids, or a base64 bitset of little-endian 32-bit words
 * (bit i = token i allowed); the site sends whichever is shorter (src/inference/grammar/mask.ts).
 */
export const tokenMaskSchema = z.union([
  z.object({ allow: tokenIdsSchema }).strict(),
  z.object({ bitmask: z.string().max(1 << 20) }).strict(),
]);
/** Constrained rounds: one mask per scored position (draft_ids.length + 1), applied before acceptance. */
const tokenMasks = z
  .array(tokenMaskSchema)
  .max(MAX_DRAFT_TOKENS + 1)
  .optional();

const verifyFields = {
  draft_ids: tokenIdsSchema.max(MAX_DRAFT_TOKENS),
  draft_probs: z.array(draftProbsRowSchema).optional(),
  token_masks: tokenMasks,
};
const onePerDraft = (b: { draft_ids: number[]; draft_probs?: unknown[] | undefined }): boolean =>
  b.draft_probs === undefined || b.draft_probs.length === b.draft_ids.length;
const onePerDraftError = { message: 'needs one row per drafted token', path: ['draft_probs'] };

export const verifySchema = z.object(verifyFields).strict().refine(onePerDraft, onePerDraftError);
export type VerifyRequest = z.input<typeof verifySchema>;

/** A frame on the verify stream (/v1/stream): a verify request naming its session. */
export const verifyFrameSchema = z
  .object({ session_id: z.string().min(1), ...verifyFields })
  .strict()
  .refine(onePerDraft, onePerDraftError);

export interface VerifyResponse {
  /** Drafted tokens kept (a prefix of draft_ids). */
  accepted: number;
  drafted: number;
  /** The verifier's token after the kept prefix (correction or bonus). */
  next_token: number;
  /** True when next_token is an end-of-sequence id. */
  eos: boolean;
  /** Tokens the session now holds: prompt, everything accepted so far, and next_token. */
  context_tokens: number;
  /** Positions the forward pass computed (k + 1; k on the first round; 0 when nothing was fed). */
  positions: number;
  /** Server time for the round (forward pass and acceptance), queueing excluded. */
  verifier_ms: number;
  /** Sessions created with `logprobs`: one per emitted token (accepted drafts, then next_token). */
  logprobs?: WireLogprob[];
}

export const statelessVerifySchema = z
  .object({
    /** The whole context so far (prompt, accepted tokens and the last verifier token). */
    prefix_ids: tokenIdsSchema.min(1),
    draft_ids: tokenIdsSchema.max(MAX_DRAFT_TOKENS),
    draft_probs: z.array(draftProbsRowSchema).optional(),
    token_masks: tokenMasks,
    sampling: samplingSchema.optional(),
  })
  .strict()
  .refine((b) => b.draft_probs === undefined || b.draft_probs.length === b.draft_ids.length, {
    message: 'needs one row per drafted token',
    path: ['draft_probs'],
  });
export type StatelessVerifyRequest = z.input<typeof statelessVerifySchema>;

export type StatelessVerifyResponse = Omit<VerifyResponse, 'context_tokens'>;

/**
 * OpenAI `POST /v1/completions` plus `top_k` and `repetition_penalty` (as vLLM takes them).
 * Strict like the site's: an unknown field is a 400 `unknown_parameter`, OpenAI fields this server
 * does not act on (penalties, `n`, `best_of`, `logit_bias`, `suffix`, `echo`) are accepted only at
 * their neutral value (src/http/openai-fields.ts). `logprobs` goes up to 20 here (OpenAI: 5), so a
 * site can serve a chat's `top_logprobs` from it.
 */
export const completionSchema = z.strictObject({
  ...Object.fromEntries(neutralFieldNames('completion').map((name) => [name, z.unknown().optional()])),
  model: z.string().optional(),
  user: z.string().nullable().optional(),
  prompt: z.union([z.string(), tokenIdsSchema.min(1), z.array(z.string()).length(1)]),
  max_tokens: z.number().int().min(1).default(16),
  temperature: z.number().min(0).max(2).default(1),
  top_p: z.number().gt(0).max(1).default(1),
  top_k: z.number().int().min(0).optional(),
  repetition_penalty: repetitionPenalty.optional(),
  stop: z.union([z.string(), z.array(z.string()).max(4)]).optional(),
  stream: z.boolean().default(false),
  stream_options: z.object({ include_usage: z.boolean().optional() }).nullable().optional(),
  seed: z.number().int().nullable().optional(),
  /** vLLM extension: keep generating past EOS (fixed-length outputs for benchmarks). */
  ignore_eos: z.boolean().default(false),
  logprobs: z.number().int().min(0).max(MAX_TOP_LOGPROBS).nullable().optional(),
  /** OpenAI structured outputs (servers listing `token_masks`): `text`, `json_object`, `json_schema`. */
  response_format: z.unknown().optional(),
});
export type CompletionRequest = z.input<typeof completionSchema>;

export interface CompletionUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

/** OpenAI's completions logprobs (per response, or per chunk for the tokens it carries). */
export interface CompletionLogprobs {
  tokens: string[];
  token_logprobs: number[];
  top_logprobs: Record<string, number>[];
  /** Characters of the token texts before each token, from the start of the completion. */
  text_offset: number[];
}

export interface CompletionChoice {
  index: 0;
  text: string;
  finish_reason: 'stop' | 'length' | null;
  logprobs: CompletionLogprobs | null;
  /** Extension: the generated token ids of this response or chunk. */
  token_ids: number[];
}

export interface CompletionResponse {
  id: string;
  object: 'text_completion';
  created: number;
  model: string;
  choices: CompletionChoice[];
  usage?: CompletionUsage | null;
}

export interface IdentityPayload {
  model: { name: string; files: Record<string, string>; digest: string };
  tokenizer: { sha256: string; vocab_size: number };
  max_context: number;
  eos_token_ids: number[];
}

export interface IdentityResponse extends IdentityPayload {
  /** Optional protocol features this server supports (absent on older servers). */
  features?: VerifierFeature[];
  /** DSSE envelope over the payload above, when the verifier has an identity key. */
  signed?: { payloadType: string; payload: string; signatures: { keyid: string; sig: string }[] };
}

export interface HealthResponse {
  status: 'ok';
  model: string;
}
