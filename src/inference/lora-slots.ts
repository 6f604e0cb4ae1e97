/**
 * The LoRA inputs a draft graph exposes: `lora.<layer>.<module>.A` [r, in] and `.B` [out, r] with
 * a dynamic rank r (docs/running-sites.md). ONNX Runtime's Node binding has no adapter API,
 * so adapters are fed as ordinary inputs on every run; zeros mean "no adapter". This module finds
 * those slots from the session's input metadata (shapes, falling back to config.json sizes) and the
 * largest rank the model accepts (`lora.max_rank` in config.json), and builds the all-zero feeds.
 */
import type { InferenceSession } from 'onnxruntime-node';
import { Tensor } from 'onnxruntime-node';
import { UserError } from '../foundation/errors.js';
import type { ModelConfig } from './model-config.js';

/** Input tensors for every LoRA slot of a graph, keyed by input name. */
export type LoraFeeds = Readonly<Record<string, Tensor>>;

export interface LoraSlot {
  layer: number;
  module: string;
  inFeatures: number;
  outFeatures: number;
}

export interface LoraSlots {
  /** Keyed by `<layer>.<module>`, e.g. `0.q_proj`. */
  slots: ReadonlyMap<string, LoraSlot>;
  /** Module names with a slot in at least one layer. */
  modules: readonly string[];
  /** Largest rank the model declares it accepts (config.json `lora.max_rank`), if it declares one. */
  maxRank: number | undefined;
}

const INPUT = /^lora\.(\d+)\.([A-Za-z0-9_]+)\.(A|B)$/;

export function loraInputName(layer: number, module: string, which: 'A' | 'B'): string {
  return `lora.${layer}.${module}.${which}`;
}

/** Llama-family projection sizes (in, out), used when the graph's shapes are symbolic. */
function configShape(module: string, c: ModelConfig): [number, number] | undefined {
  const h = c.hiddenSize;
  const q = c.numAttentionHeads * c.headDim;
  const kv = c.numKeyValueHeads * c.headDim;
  const ffn = c.intermediateSize;
  const table: Record<string, [number, number] | undefined> = {
    q_proj: [h, q],
    k_proj: [h, kv],
    v_proj: [h, kv],
    o_proj: [q, h],
    gate_proj: ffn === undefined ? undefined : [h, ffn],
    up_proj: ffn === undefined ? undefined : [h, ffn],
    down_proj: ffn === undefined ? undefined : [ffn, h],
  };
  return table[module];
}

export function discoverLoraSlots(
  metadata: readonly InferenceSession.ValueMetadata[],
  config: ModelConfig,
  path: string,
): LoraSlots | undefined {
  const dims = new Map<string, { a?: readonly (number | string)[]; b?: readonly (number | string)[] }>();
  for (const meta of metadata) {
    const m = INPUT.exec(meta.name);
    if (!m) continue;
    const key = `${m[1]}.${m[2]}`;
    const entry = dims.get(key) ?? {};
    const shape = meta.isTensor ? meta.shape : [];
    if (m[3] === 'A') entry.a = shape;
    else entry.b = shape;
    dims.set(key, entry);
  }
  if (dims.size === 0) return undefined;
  const slots = new Map<string, LoraSlot>();
  for (const [key, { a, b }] of dims) {
    const [layerText, module] = key.split('.') as [string, string];
    const layer = Number(layerText);
    if (a === undefined || b === undefined) {
      throw new UserError(`${path}: LoRA input ${key} has ${a ? 'A' : 'B'} but not ${a ? 'B' : 'A'}`, {
        code: 'E_MODEL',
      });
    }
    const fallback = configShape(module, config);
    const inFeatures = typeof a[1] === 'number' ? a[1] : fallback?.[0];
    const outFeatures = typeof b[0] === 'number' ? b[0] : fallback?.[1];
    if (inFeatures === undefined || outFeatures === undefined) {
      throw new UserError(
        `${path}: cannot tell the size of LoRA slot ${key} (symbolic shape, unknown module)`,
        {
          code: 'E_MODEL',
          suggestion: 'Export LoRA inputs with static in/out dimensions.',
        },
      );
    }
    if (layer >= config.numLayers) {
      throw new UserError(
        `${path}: LoRA input for layer ${layer}, but the model has ${config.numLayers} layers`,
        {
          code: 'E_MODEL',
        },
      );
    }
    slots.set(key, { layer, module, inFeatures, outFeatures });
  }
  const lora = config.raw.lora as { max_rank?: unknown } | undefined;
  const maxRank = typeof lora?.max_rank === 'number' && lora.max_rank > 0 ? lora.max_rank : undefined;
  const modules = [...new Set([...slots.values()].map((s) => s.module))];
  return { slots, modules, maxRank };
}

/** Rank-`rank` zero matrices for every slot: B·A = 0, so the model computes its base output. */
export function zeroLoraFeeds(lora: LoraSlots, rank = 1): LoraFeeds {
  const feeds: Record<string, Tensor> = {};
  for (const s of lora.slots.values()) {
    feeds[loraInputName(s.layer, s.module, 'A')] = new Tensor(
      'float32',
      new Float32Array(rank * s.inFeatures),
      [rank, s.inFeatures],
    );
    feeds[loraInputName(s.layer, s.module, 'B')] = new Tensor(
      'float32',
      new Float32Array(s.outFeatures * rank),
      [s.outFeatures, rank],
    );
  }
  return feeds;
}
