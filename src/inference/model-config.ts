/**
 * The parts of a model directory's `config.json` and `generation_config.json` the runtime needs:
 * layer, head and KV-head counts (grouped-query attention), head size, vocabulary size and the
 * end-of-sequence ids (docs/running-sites.md). Files are validated with zod through
 * `readYamlWithSchema` (JSON is YAML), so a bad field is reported as `file:line: field: message`.
 * Unknown fields are allowed: real Hugging Face configs carry dozens we do not use. A multimodal
 * wrapper's `text_config` (Gemma 3) is read as the language model's config.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { UserError } from '../foundation/errors.js';
import { readYamlWithSchema } from '../config/yaml-file.js';
import { REPETITION_PENALTY_RANGE } from './sampling.js';

export const CONFIG_FILE = 'config.json';
export const GENERATION_CONFIG_FILE = 'generation_config.json';

const positiveInt = z.number().int().positive();
const tokenIds = z.union([z.number().int().nonnegative(), z.array(z.number().int().nonnegative())]);

const innerSchema = z.looseObject({
  model_type: z.string().optional(),
  vocab_size: positiveInt,
  hidden_size: positiveInt,
  num_hidden_layers: positiveInt,
  num_attention_heads: positiveInt,
  num_key_value_heads: positiveInt.optional(),
  head_dim: positiveInt.optional(),
  intermediate_size: positiveInt.optional(),
  max_position_embeddings: positiveInt.optional(),
  bos_token_id: tokenIds.nullable().optional(),
  eos_token_id: tokenIds.nullable().optional(),
});

/**
 * Multimodal wrappers (Gemma 3, Llava, ...) keep the language model's fields under `text_config`;
 * its fields win, the top level supplies the rest (token ids, edgectl and lora sections).
 */
function unwrapTextConfig(value: unknown): unknown {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return value;
  const { text_config: text, ...top } = value as Record<string, unknown>;
  if (typeof text !== 'object' || text === null || Array.isArray(text)) return value;
  return { ...top, ...(text as Record<string, unknown>) };
}

const configSchema = z.preprocess(unwrapTextConfig, innerSchema);

const generationConfigSchema = z.looseObject({
  bos_token_id: tokenIds.nullable().optional(),
  eos_token_id: tokenIds.nullable().optional(),
  pad_token_id: tokenIds.nullable().optional(),
  temperature: z.number().nonnegative().optional(),
  top_p: z.number().positive().max(1).optional(),
  top_k: z.number().int().nonnegative().optional(),
  do_sample: z.boolean().optional(),
  max_new_tokens: positiveInt.optional(),
  repetition_penalty: z
    .number()
    .min(REPETITION_PENALTY_RANGE.min)
    .max(REPETITION_PENALTY_RANGE.max)
    .optional(),
});

export interface ModelConfig {
  modelType: string | undefined;
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numAttentionHeads: number;
  /** KV heads (grouped-query attention); equals numAttentionHeads for classic multi-head attention. */
  numKeyValueHeads: number;
  headDim: number;
  intermediateSize: number | undefined;
  maxPositions: number | undefined;
  bosTokenId: number | undefined;
  /** Generation ends at any of these (generation_config.json wins over config.json). */
  eosTokenIds: number[];
  /** Sampling defaults from generation_config.json, when it sets them. */
  defaults: {
    temperature?: number;
    topP?: number;
    topK?: number;
    maxNewTokens?: number;
    repetitionPenalty?: number;
  };
  /** The raw config.json object, for model-specific fields (e.g. LoRA settings). */
  raw: Record<string, unknown>;
}

function ids(v: number | number[] | null | undefined): number[] {
  if (v === null || v === undefined) return [];
  return Array.isArray(v) ? v : [v];
}

export function loadModelConfig(dir: string): ModelConfig {
  const file = join(dir, CONFIG_FILE);
  const parsed = readYamlWithSchema(file, configSchema);
  const c = parsed.value;
  const kvHeads = c.num_key_value_heads ?? c.num_attention_heads;
  const field = (name: string, message: string, fix: string): UserError =>
    new UserError(`${file}:${parsed.lineOf([name])}: ${name}: ${message}`, {
      code: 'E_MODEL_CONFIG',
      suggestion: fix,
    });
  if (c.num_attention_heads % kvHeads !== 0) {
    throw field(
      'num_key_value_heads',
      `${kvHeads} does not divide num_attention_heads (${c.num_attention_heads})`,
      'Grouped-query attention needs num_attention_heads to be a multiple of num_key_value_heads.',
    );
  }
  if (c.head_dim === undefined && c.hidden_size % c.num_attention_heads !== 0) {
    throw field(
      'hidden_size',
      `${c.hidden_size} is not a multiple of num_attention_heads (${c.num_attention_heads})`,
      'Set head_dim explicitly in config.json.',
    );
  }

  const genFile = join(dir, GENERATION_CONFIG_FILE);
  const gen = existsSync(genFile) ? readYamlWithSchema(genFile, generationConfigSchema).value : undefined;
  const eos = ids(gen?.eos_token_id).length > 0 ? ids(gen?.eos_token_id) : ids(c.eos_token_id);
  const bos = ids(gen?.bos_token_id)[0] ?? ids(c.bos_token_id)[0];
  for (const id of [...eos, ...(bos === undefined ? [] : [bos])]) {
    if (id >= c.vocab_size) {
      throw new UserError(
        `${file}: special token id ${id} is outside the vocabulary (vocab_size ${c.vocab_size})`,
        {
          code: 'E_MODEL_CONFIG',
          suggestion: 'Check eos_token_id / bos_token_id in config.json and generation_config.json.',
        },
      );
    }
  }
  const defaults: ModelConfig['defaults'] = {};
  if (gen?.temperature !== undefined) defaults.temperature = gen.do_sample === false ? 0 : gen.temperature;
  if (gen?.top_p !== undefined) defaults.topP = gen.top_p;
  if (gen?.top_k !== undefined) defaults.topK = gen.top_k;
  if (gen?.max_new_tokens !== undefined) defaults.maxNewTokens = gen.max_new_tokens;
  if (gen?.repetition_penalty !== undefined) defaults.repetitionPenalty = gen.repetition_penalty;

  return {
    modelType: c.model_type,
    vocabSize: c.vocab_size,
    hiddenSize: c.hidden_size,
    numLayers: c.num_hidden_layers,
    numAttentionHeads: c.num_attention_heads,
    numKeyValueHeads: kvHeads,
    headDim: c.head_dim ?? c.hidden_size / c.num_attention_heads,
    intermediateSize: c.intermediate_size,
    maxPositions: c.max_position_embeddings,
    bosTokenId: bos,
    eosTokenIds: eos,
    defaults,
    raw: c as Record<string, unknown>,
  };
}
