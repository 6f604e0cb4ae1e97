/**
 * The I/O variants of downloaded exports that `LmSession` adapts to at its boundary, so the rest of
 * the engine (KV caches, sampling, speculative decoding) keeps working in float32:
 * - float16 KV caches and logits (`model_fp16.onnx`, `model_q4f16.onnx`): past tensors are
 *   converted float32 -> float16 when fed and `present`/`logits` float16 -> float32 when read.
 *   bfloat16 is refused: onnxruntime-node (1.30) has no bfloat16 tensor type to feed.
 * - `num_logits_to_keep` / `logits_to_keep` (newer Optimum and transformers exports): fed with the
 *   input length, because speculative verification needs a logits row for every input token.
 * - `position_ids` offsets per model type: Gemma 3 text exports number positions from 1, not 0.
 * The conversions use a 64 Ki-entry table for float16 -> float32 and a branch-light rounding
 * conversion for float32 -> float16 (round to nearest even, as ONNX Runtime's own Cast does).
 */
import type { InferenceSession } from 'onnxruntime-node';
import { Tensor } from 'onnxruntime-node';
import { UserError } from '../foundation/errors.js';

export type FloatType = 'float32' | 'float16';

export interface IoVariant {
  /** Element type of past_key_values / present. */
  cacheType: FloatType;
  /** Element type of logits. */
  logitsType: FloatType;
  /** Name of the logits-to-keep input the graph takes, if any. */
  logitsToKeep: string | undefined;
  /** Added to every position id (1 for Gemma 3 text). */
  positionOffset: number;
}

const LOGITS_TO_KEEP = ['num_logits_to_keep', 'logits_to_keep'];
/** Model types whose exports number positions from 1 (transformers.js does the same). */
const POSITION_OFFSET: Record<string, number> = { gemma3_text: 1, gemma3: 1 };

function floatType(type: string, what: string, path: string): FloatType {
  if (type === 'float32' || type === 'float16') return type;
  throw new UserError(`${path}: ${what} has type ${type} (float32 and float16 are supported)`, {
    code: 'E_MODEL',
    suggestion:
      type === 'bfloat16'
        ? 'onnxruntime-node cannot feed bfloat16 tensors; use the fp32, fp16 or q4 variant of the export.'
        : 'Use an export with float32 or float16 KV caches and logits.',
  });
}

/** Reads the I/O variant from the session's metadata (names and element types). */
export function ioVariantOf(
  session: InferenceSession,
  modelType: string | undefined,
  path: string,
): IoVariant {
  let cacheType: FloatType = 'float32';
  let logitsType: FloatType = 'float32';
  for (const meta of session.inputMetadata) {
    if (meta.isTensor && meta.name.startsWith('past_key_values.'))
      cacheType = floatType(meta.type, `input ${meta.name}`, path);
  }
  for (const meta of session.outputMetadata) {
    if (meta.isTensor && meta.name === 'logits') logitsType = floatType(meta.type, 'output logits', path);
  }
  return {
    cacheType,
    logitsType,
    logitsToKeep: LOGITS_TO_KEEP.find((n) => session.inputNames.includes(n)),
    positionOffset: POSITION_OFFSET[modelType ?? ''] ?? 0,
  };
}

const F16_TO_F32 = (() => {
  const table = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const frac = h & 0x3ff;
    table[h] =
      exp === 0
        ? sign * frac * 2 ** -24
        : exp === 31
          ? frac === 0
            ? sign * Infinity
            : NaN
          : sign * (1 + frac / 1024) * 2 ** (exp - 15);
  }
  return table;
})();

export function f16ToF32(src: Uint16Array): Float32Array {
  const out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = F16_TO_F32[src[i] as number] as number;
  return out;
}

const scratch = new Float32Array(1);
const scratchBits = new Uint32Array(scratch.buffer);

function f32ToF16Bits(value: number): number {
  scratch[0] = value;
  const x = scratchBits[0] as number;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rounded = mant + half - 1 + ((mant >>> shift) & 1);
    return sign | (rounded >>> shift);
  }
  const rounded = mant + 0xfff + ((mant >>> 13) & 1);
  // A carry out of the mantissa bumps the exponent, which is exactly right (and may give Inf).
  return (sign | ((e << 10) + (rounded >>> 13))) & 0xffff;
}

export function f32ToF16(src: Float32Array): Uint16Array {
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = f32ToF16Bits(src[i] as number);
  return out;
}

/** A float32 tensor as the graph's type (float16 graphs get a converted copy). */
export function toGraphType(t: Tensor, type: FloatType): Tensor {
  if (type === 'float32') return t;
  return new Tensor('float16', f32ToF16(t.data as Float32Array), t.dims);
}

/** A graph output as float32 data (float16 outputs are converted). */
export function toFloat32(t: Tensor): Float32Array {
  return t.type === 'float16' ? f16ToF32(t.data as Uint16Array) : (t.data as Float32Array);
}

/** A graph output as a float32 tensor (float16 outputs are converted). */
export function toFloat32Tensor(t: Tensor): Tensor {
  return t.type === 'float16' ? new Tensor('float32', f16ToF32(t.data as Uint16Array), t.dims) : t;
}
