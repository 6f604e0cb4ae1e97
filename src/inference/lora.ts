/**
 * PEFT LoRA adapters (`adapter_config.json` + `adapter_model.safetensors`) turned into the feeds of
 * a draft graph's LoRA inputs, so one loaded model serves any adapter per request.
 *
 * Loading validates the adapter against the model's LoRA slots and refuses, with the file, the
 * tensor and the fix, anything that would silently compute the wrong thing: a module or layer the
 * model has no slot for, a rank above the model's `max_rank`, shapes that do not match the
 * projection, an A without its B, DoRA or trained biases (which the graph cannot apply). PEFT's
 * scaling (`lora_alpha / r`, or `/ sqrt(r)` with rsLoRA, per-module `alpha_pattern`) is folded into
 * B. Modules of different rank are zero-padded to one common rank (padding A with zero rows and B
 * with zero columns leaves B·A unchanged), since the graph has one rank axis.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tensor } from 'onnxruntime-node';
import { z } from 'zod';
import { UserError } from '../foundation/errors.js';
import { readYamlWithSchema } from '../config/yaml-file.js';
import { loraInputName, type LoraFeeds, type LoraSlot, type LoraSlots } from './lora-slots.js';
import { readSafetensors, type F32Tensor } from './safetensors.js';

export const ADAPTER_CONFIG_FILE = 'adapter_config.json';
export const ADAPTER_WEIGHTS_FILE = 'adapter_model.safetensors';

const adapterConfigSchema = z.looseObject({
  peft_type: z.literal('LORA').optional(),
  r: z.number().int().positive(),
  lora_alpha: z.number().positive(),
  target_modules: z
    .union([z.string(), z.array(z.string())])
    .nullable()
    .optional(),
  base_model_name_or_path: z.string().nullable().optional(),
  bias: z
    .literal('none', { message: 'only "none" is supported (the graph cannot add trained biases)' })
    .optional(),
  use_rslora: z.boolean().optional(),
  use_dora: z.literal(false, { message: 'DoRA adapters are not supported' }).optional(),
  rank_pattern: z.record(z.string(), z.number().int().positive()).nullable().optional(),
  alpha_pattern: z.record(z.string(), z.number().positive()).nullable().optional(),
});

export interface LoraAdapter {
  name: string;
  dir: string;
  /** Rank of the feeds (the largest module rank). */
  rank: number;
  baseModel: string | undefined;
  /** Module names the adapter changes, e.g. ["q_proj", "v_proj"]. */
  modules: string[];
  /** `<layer>.<module>` keys the adapter changes. */
  targets: string[];
  /** Ready to pass to `LmSession.forward`. */
  feeds: LoraFeeds;
  /** Bytes of the feeds. */
  bytes: number;
}

export interface LoadLoraOptions {
  /** Name used in errors and in `LoraAdapter.name`; default: the directory's base name. */
  name?: string;
}

/** `base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight` → layer 3, q_proj, A. */
const TENSOR =
  /(?:^|\.)layers\.(\d+)\.(?:[A-Za-z0-9_]+\.)*?([A-Za-z0-9_]+)\.lora_(A|B)(?:\.[A-Za-z0-9_-]+)?\.weight$/;

function adapterError(message: string, suggestion: string, details?: Record<string, unknown>): UserError {
  return new UserError(message, { code: 'E_ADAPTER', suggestion, ...(details ? { details } : {}) });
}

/** PEFT pattern keys match a module path by suffix (e.g. "q_proj" or "layers.0.self_attn.q_proj"). */
function patternValue(pattern: Record<string, number> | null | undefined, path: string): number | undefined {
  if (!pattern) return undefined;
  for (const [key, value] of Object.entries(pattern)) {
    if (path === key || path.endsWith(`.${key}`)) return value;
  }
  return undefined;
}

type Pair = { slot: LoraSlot; path: string; a?: F32Tensor; b?: F32Tensor };
type Module = { slot: LoraSlot; a: F32Tensor; b: F32Tensor; r: number; scale: number };
type AdapterConfig = z.infer<typeof adapterConfigSchema>;

/** Reads the adapter's weights; refuses a model without LoRA inputs first (nothing to feed). */
function readWeights(
  name: string,
  weightsFile: string,
  lora: LoraSlots | undefined,
): [LoraSlots, Map<string, F32Tensor>] {
  if (lora === undefined) {
    throw adapterError(
      `adapter ${name}: the model takes no LoRA inputs, so adapters cannot be applied to it`,
      'Serve adapters on a model with lora.<layer>.<module>.A|B inputs: prepare a downloaded export with ' +
        '`edgectl model prepare <dir> --lora-targets <modules> --rank-max <r> --out <dir>` (docs/operations.md).',
    );
  }
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(weightsFile);
  } catch (err) {
    throw adapterError(
      `${weightsFile}: cannot read file (${(err as NodeJS.ErrnoException).code ?? String(err)})`,
      'A PEFT adapter directory holds adapter_config.json and adapter_model.safetensors.',
    );
  }
  return [lora, readSafetensors(bytes, weightsFile)];
}

/** Pairs up A and B per layer/module, validating each against the model's slot. */
function pairTensors(
  tensors: Map<string, F32Tensor>,
  lora: LoraSlots,
  weightsFile: string,
): Map<string, Pair> {
  const pairs = new Map<string, Pair>();
  for (const [tensorName, tensor] of tensors) {
    const m = TENSOR.exec(tensorName);
    if (!m) {
      throw adapterError(
        `${weightsFile}: tensor ${tensorName} is not a LoRA A/B matrix of a decoder layer`,
        'Only LoRA weights (lora_A / lora_B of layers.<i>.<module>) are supported; remove modules_to_save or embedding adapters.',
      );
    }
    const layer = Number(m[1]);
    const module = m[2] as string;
    const key = `${layer}.${module}`;
    const slot = lora.slots.get(key);
    if (slot === undefined) {
      const known = lora.modules.join(', ');
      throw adapterError(
        `${weightsFile}: tensor ${tensorName} targets ${module} in layer ${layer}, but the model has LoRA inputs only for ${known} in layers 0..${Math.max(...[...lora.slots.values()].map((s) => s.layer))}`,
        `Train the adapter for this base model with target_modules within [${known}], or prepare the model with --lora-targets including ${module}.`,
        { tensor: tensorName, module, layer },
      );
    }
    const entry = pairs.get(key) ?? { slot, path: tensorName.slice(0, tensorName.indexOf('.lora_')) };
    if (m[3] === 'A') entry.a = tensor;
    else entry.b = tensor;
    pairs.set(key, entry);
  }
  if (pairs.size === 0) {
    throw adapterError(
      `${weightsFile}: contains no LoRA tensors`,
      'Re-export the adapter with PEFT save_pretrained().',
    );
  }
  return pairs;
}

interface ConfigRef {
  cfg: AdapterConfig;
  configFile: string;
  weightsFile: string;
  rLine: number | undefined;
}

/** One module's A and B checked against its slot, the config's rank and the model's max_rank. */
function checkPair({ slot, path, a, b }: Pair, lora: LoraSlots, c: ConfigRef): Module {
  const { cfg, configFile, weightsFile } = c;
  if (a === undefined || b === undefined) {
    throw adapterError(
      `${weightsFile}: ${path} has lora_${a ? 'A' : 'B'} but no lora_${a ? 'B' : 'A'}`,
      'The adapter file is incomplete; re-export it.',
    );
  }
  const [r, fanIn] = a.shape;
  const [fanOut, rB] = b.shape;
  if (
    a.shape.length !== 2 ||
    b.shape.length !== 2 ||
    r !== rB ||
    fanIn !== slot.inFeatures ||
    fanOut !== slot.outFeatures
  ) {
    throw adapterError(
      `${weightsFile}: ${path}: lora_A is [${a.shape}] and lora_B is [${b.shape}], but the model's ${slot.module} needs A [r, ${slot.inFeatures}] and B [${slot.outFeatures}, r]`,
      'The adapter was trained for a different base model; use an adapter made for this model.',
      { tensor: path, a: a.shape, b: b.shape, in: slot.inFeatures, out: slot.outFeatures },
    );
  }
  const rank = r as number;
  if (rank !== (patternValue(cfg.rank_pattern, path) ?? cfg.r)) {
    throw adapterError(
      `${configFile}:${c.rLine}: r: ${cfg.r} does not match the rank ${rank} of ${path} in ${ADAPTER_WEIGHTS_FILE}`,
      'Fix r (or rank_pattern) in adapter_config.json to match the weights.',
    );
  }
  if (lora.maxRank !== undefined && rank > lora.maxRank) {
    throw adapterError(
      `${configFile}:${c.rLine}: r: rank ${rank} of ${path} exceeds the model's max_rank ${lora.maxRank}`,
      `Retrain the adapter with r <= ${lora.maxRank}, or prepare the model with a larger --rank-max.`,
      { rank, maxRank: lora.maxRank },
    );
  }
  const alpha = patternValue(cfg.alpha_pattern, path) ?? cfg.lora_alpha;
  return { slot, a, b, r: rank, scale: cfg.use_rslora ? alpha / Math.sqrt(rank) : alpha / rank };
}

/** Feeds for every slot at the common rank: the adapter's modules (scale folded into B), zeros elsewhere. */
function buildFeeds(
  lora: LoraSlots,
  modules: Map<string, Module>,
  rank: number,
): { feeds: LoraFeeds; bytes: number } {
  const feeds: Record<string, Tensor> = {};
  let bytes = 0;
  for (const slot of lora.slots.values()) {
    const aData = new Float32Array(rank * slot.inFeatures);
    const bData = new Float32Array(slot.outFeatures * rank);
    const m = modules.get(`${slot.layer}.${slot.module}`);
    if (m !== undefined) {
      aData.set(m.a.data); // rows 0..r-1 of [rank, in]; the rest stay zero
      for (let o = 0; o < slot.outFeatures; o++) {
        for (let j = 0; j < m.r; j++) bData[o * rank + j] = (m.b.data[o * m.r + j] as number) * m.scale;
      }
    }
    feeds[loraInputName(slot.layer, slot.module, 'A')] = new Tensor('float32', aData, [
      rank,
      slot.inFeatures,
    ]);
    feeds[loraInputName(slot.layer, slot.module, 'B')] = new Tensor('float32', bData, [
      slot.outFeatures,
      rank,
    ]);
    bytes += (aData.length + bData.length) * 4;
  }
  return { feeds, bytes };
}

export function loadLoraAdapter(
  dir: string,
  lora: LoraSlots | undefined,
  opts: LoadLoraOptions = {},
): LoraAdapter {
  const name = opts.name ?? dir.split(/[\\/]/).filter(Boolean).pop() ?? dir;
  const configFile = join(dir, ADAPTER_CONFIG_FILE);
  const weightsFile = join(dir, ADAPTER_WEIGHTS_FILE);
  const parsed = readYamlWithSchema(configFile, adapterConfigSchema);
  const [slots, tensors] = readWeights(name, weightsFile, lora);
  const ref: ConfigRef = { cfg: parsed.value, configFile, weightsFile, rLine: parsed.lineOf(['r']) };
  const modules = new Map<string, Module>();
  for (const [key, pair] of pairTensors(tensors, slots, weightsFile))
    modules.set(key, checkPair(pair, slots, ref));
  const rank = Math.max(...[...modules.values()].map((m) => m.r));
  const { feeds, bytes } = buildFeeds(slots, modules, rank);
  return {
    name,
    dir,
    rank,
    baseModel: parsed.value.base_model_name_or_path ?? undefined,
    modules: [...new Set([...modules.values()].map((m) => m.slot.module))],
    targets: [...modules.keys()],
    feeds,
    bytes,
  };
}
