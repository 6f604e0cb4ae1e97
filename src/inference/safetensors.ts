/**
 * A reader for the safetensors format (PEFT's `adapter_model.safetensors`).
 *
 * The format is an 8-byte little-endian header length, a JSON header mapping tensor names to
 * `{dtype, shape, data_offsets}` (offsets relative to the end of the header), then raw
 * little-endian tensor bytes. There is no maintained pure-JS npm reader (the official package is a
 * Python/Rust binding), and the format is small enough to parse here with full validation: every
 * offset and size is checked against the file so a truncated or hostile file is refused with a
 * clear error instead of reading garbage. F32 is read as is; F16 and BF16 are widened to F32.
 */
import { UserError } from '../foundation/errors.js';

export interface F32Tensor {
  shape: number[];
  data: Float32Array;
}

interface HeaderEntry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

const BYTES: Record<string, number> = { F32: 4, F16: 2, BF16: 2 };
const MAX_HEADER = 100 * 1024 * 1024;

function invalid(file: string, why: string): UserError {
  return new UserError(`${file}: not a valid safetensors file: ${why}`, {
    code: 'E_SAFETENSORS',
    suggestion: 'Re-export the adapter with PEFT (save_pretrained with safe_serialization=True).',
  });
}

/** Parses every tensor in `bytes` to float32; `file` is used in error messages. */
export function readSafetensors(bytes: Uint8Array, file: string): Map<string, F32Tensor> {
  if (bytes.length < 8) throw invalid(file, 'shorter than its 8-byte header length');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = Number(view.getBigUint64(0, true));
  if (headerLen > MAX_HEADER || 8 + headerLen > bytes.length) {
    throw invalid(file, `header length ${headerLen} exceeds the file size ${bytes.length}`);
  }
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLen)));
  } catch (err) {
    throw invalid(file, `header is not JSON (${(err as Error).message})`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header))
    throw invalid(file, 'header is not an object');
  const dataStart = 8 + headerLen;
  const dataLen = bytes.length - dataStart;
  const tensors = new Map<string, F32Tensor>();
  for (const [name, raw] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const entry = checkEntry(raw, name, file);
    const width = BYTES[entry.dtype];
    if (width === undefined) {
      throw new UserError(
        `${file}: tensor ${name}: dtype ${entry.dtype} is not supported (F32, F16, BF16 are)`,
        {
          code: 'E_SAFETENSORS',
          suggestion: 'Save the adapter in float32, float16 or bfloat16.',
        },
      );
    }
    const count = entry.shape.reduce((a, b) => a * b, 1);
    const [begin, end] = entry.data_offsets;
    if (!(begin <= end && end <= dataLen && end - begin === count * width)) {
      throw invalid(
        file,
        `tensor ${name}: data_offsets [${begin}, ${end}] do not match shape [${entry.shape}] of ${entry.dtype} within ${dataLen} data bytes`,
      );
    }
    tensors.set(name, {
      shape: entry.shape,
      data: toF32(bytes.subarray(dataStart + begin, dataStart + end), entry.dtype, count),
    });
  }
  return tensors;
}

function checkEntry(raw: unknown, name: string, file: string): HeaderEntry {
  const e = raw as Partial<HeaderEntry> | null;
  const ok =
    e !== null &&
    typeof e === 'object' &&
    typeof e.dtype === 'string' &&
    Array.isArray(e.shape) &&
    e.shape.every((d) => Number.isInteger(d) && d >= 0) &&
    Array.isArray(e.data_offsets) &&
    e.data_offsets.length === 2 &&
    e.data_offsets.every((o) => Number.isInteger(o) && o >= 0);
  if (!ok) throw invalid(file, `tensor ${name}: header entry needs dtype, shape and data_offsets`);
  return e as HeaderEntry;
}

function toF32(src: Uint8Array, dtype: string, count: number): Float32Array {
  const view = new DataView(src.buffer, src.byteOffset, src.byteLength);
  const out = new Float32Array(count);
  if (dtype === 'F32') {
    for (let i = 0; i < count; i++) out[i] = view.getFloat32(i * 4, true);
  } else if (dtype === 'BF16') {
    const u32 = new Uint32Array(out.buffer);
    for (let i = 0; i < count; i++) u32[i] = view.getUint16(i * 2, true) << 16;
  } else {
    for (let i = 0; i < count; i++) out[i] = halfToFloat(view.getUint16(i * 2, true));
  }
  return out;
}

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}
