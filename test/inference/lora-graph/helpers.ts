/**
 * Helpers of the `model prepare` tests: a seeded PEFT adapter writer (adapter_config.json +
 * adapter_model.safetensors named as PEFT saves a Llama-family adapter) and the merged-weights
 * reference model, built by rewriting the fp32 export's projection initializers in place to
 * W + (alpha / r)·(B·A)ᵀ (the export stores W as [in, out], MatMul's layout).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { readModel } from '../../../src/inference/lora-graph/onnx-wire.js';
import {
  concat,
  lenField,
  readFields,
  varintField,
} from '../../../src/inference/lora-graph/protobuf-wire.js';
import { safetensorsBytes, type TensorSpec } from '../helpers.js';

export const FAMILIES_DIR = join(import.meta.dirname, '..', '..', 'fixtures', 'families');

/** Which sub-module holds a projection in Llama-family checkpoints. */
const PARENT: Record<string, string> = {
  q_proj: 'self_attn',
  k_proj: 'self_attn',
  v_proj: 'self_attn',
  o_proj: 'self_attn',
  gate_proj: 'mlp',
  up_proj: 'mlp',
  down_proj: 'mlp',
};

export interface LoraWeights {
  /** `<layer>.<module>` → A [r, in] and B [out, r], row-major. */
  pairs: Map<string, { a: Float32Array; b: Float32Array; in: number; out: number }>;
  r: number;
  alpha: number;
}

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  };
}

export interface AdapterSpec {
  layers: number;
  /** Module → [in, out]. */
  modules: Record<string, [number, number]>;
  r: number;
  alpha: number;
  seed?: number;
}

/** Writes a PEFT adapter directory and returns its weights. */
export function writePeftAdapter(dir: string, spec: AdapterSpec): LoraWeights {
  const next = rng(spec.seed ?? 7);
  const tensors: Record<string, TensorSpec> = {};
  const pairs: LoraWeights['pairs'] = new Map();
  for (let layer = 0; layer < spec.layers; layer++) {
    for (const [module, [fanIn, fanOut]] of Object.entries(spec.modules)) {
      const a = Float32Array.from({ length: spec.r * fanIn }, () => next() * 0.5);
      const b = Float32Array.from({ length: fanOut * spec.r }, () => next() * 0.5);
      const path = `base_model.model.model.layers.${layer}.${PARENT[module] ?? 'self_attn'}.${module}`;
      tensors[`${path}.lora_A.weight`] = { dtype: 'F32', shape: [spec.r, fanIn], values: a };
      tensors[`${path}.lora_B.weight`] = { dtype: 'F32', shape: [fanOut, spec.r], values: b };
      pairs.set(`${layer}.${module}`, { a, b, in: fanIn, out: fanOut });
    }
  }
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'adapter_model.safetensors'), safetensorsBytes(tensors));
  const config = {
    peft_type: 'LORA',
    r: spec.r,
    lora_alpha: spec.alpha,
    target_modules: Object.keys(spec.modules),
    bias: 'none',
    base_model_name_or_path: null,
  };
  writeFileSync(join(dir, 'adapter_config.json'), `${JSON.stringify(config, null, 2)}\n`);
  return { pairs, r: spec.r, alpha: spec.alpha };
}

/** The fp32 graph at `file` with every adapted projection's weight merged, as new bytes. */
export function mergedModel(file: string, lora: LoraWeights): Uint8Array {
  const buf = new Uint8Array(readFileSync(file));
  const model = readModel(buf);
  const scale = lora.alpha / lora.r;
  for (const [key, { a, b, in: fanIn, out: fanOut }] of lora.pairs) {
    const [layer, module] = key.split('.') as [string, string];
    const name = `model.layers.${layer}.${PARENT[module]}.${module}.weight`;
    const init = model.graph.initializers.get(name);
    if (!init?.rawData) throw new Error(`${file}: no inline initializer ${name}`);
    const w = new Float32Array(buf.buffer.slice(init.rawData.start, init.rawData.end));
    if (w.length !== fanIn * fanOut)
      throw new Error(`${name}: ${w.length} values, expected ${fanIn}x${fanOut}`);
    for (let i = 0; i < fanIn; i++) {
      for (let o = 0; o < fanOut; o++) {
        let d = 0;
        for (let j = 0; j < lora.r; j++) d += (b[o * lora.r + j] as number) * (a[j * fanIn + i] as number);
        w[i * fanOut + o] = (w[i * fanOut + o] as number) + scale * d;
      }
    }
    buf.set(new Uint8Array(w.buffer), init.rawData.start);
  }
  return buf;
}

/**
 * The model at `file` with its inline initializers moved to `<name>_data` next to it, as large
 * exports ship (TensorProto.data_location = EXTERNAL, external_data location/offset/length).
 */
export function toExternalData(file: string): void {
  const buf = new Uint8Array(readFileSync(file));
  const model = readModel(buf);
  const location = `${basename(file)}_data`;
  const data: Uint8Array[] = [];
  let offset = 0;
  const entry = (key: string, value: string) => lenField(13, concat([lenField(1, key), lenField(2, value)]));
  const graph = concat(
    model.graph.fields.map((f) => {
      if (f.field !== 5) return buf.subarray(f.start, f.end);
      const fields = readFields(buf, f.valueStart, f.end);
      const raw = fields.find((x) => x.field === 9);
      if (!raw) return buf.subarray(f.start, f.end);
      const bytes = buf.subarray(raw.valueStart, raw.end);
      data.push(bytes);
      const kept = fields.filter((x) => x.field !== 9).map((x) => buf.subarray(x.start, x.end));
      const ext = [
        entry('location', location),
        entry('offset', String(offset)),
        entry('length', String(bytes.length)),
      ];
      offset += bytes.length;
      return lenField(5, concat([...kept, ...ext, varintField(14, 1)]));
    }),
  );
  const out = concat(
    model.fields.map((f) => (f.field === 7 ? lenField(7, graph) : buf.subarray(f.start, f.end))),
  );
  writeFileSync(file, out);
  writeFileSync(join(dirname(file), location), concat(data));
}
