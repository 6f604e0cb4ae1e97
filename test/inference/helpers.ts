/**
 * Shared helpers of the inference tests: where the fixture models are, a safetensors writer (to
 * build valid and deliberately broken adapters in temp dirs) and logits comparison.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const ARTIFACTS =
  process.env.EDGECTL_FIXTURES_DIR ?? join(import.meta.dirname, '..', '..', 'artifacts');
export const DRAFT_DIR = join(ARTIFACTS, 'models', 'draft');
export const VERIFIER_DIR = join(ARTIFACTS, 'models', 'verifier');
export const TINY_HF_DIR = join(ARTIFACTS, 'models', 'tiny-hf');
export const SUPPORT_ADAPTER_DIR = join(ARTIFACTS, 'adapters', 'support');
export const BAD_ADAPTER_DIR = join(ARTIFACTS, 'adapters', 'support-bad');
export const PROMPTS_DIR = join(ARTIFACTS, 'prompts');

export interface TensorSpec {
  dtype: 'F32' | 'F16' | 'BF16' | 'I8';
  shape: number[];
  values: ArrayLike<number>;
}

function f16(x: number): number {
  const f = new Float32Array([x]);
  const u = new Uint32Array(f.buffer)[0] as number;
  const sign = (u >>> 16) & 0x8000;
  const exp = ((u >>> 23) & 0xff) - 127 + 15;
  const mant = (u >>> 13) & 0x3ff;
  if (exp <= 0) return sign;
  if (exp >= 31) return sign | 0x7c00;
  return sign | (exp << 10) | mant;
}

/** Encodes tensors in the safetensors layout (8-byte header length, JSON header, data). */
export function safetensorsBytes(tensors: Record<string, TensorSpec>): Uint8Array {
  const width = { F32: 4, F16: 2, BF16: 2, I8: 1 };
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    const n = t.values.length;
    const buf = new Uint8Array(n * width[t.dtype]);
    const view = new DataView(buf.buffer);
    for (let i = 0; i < n; i++) {
      const v = t.values[i] as number;
      if (t.dtype === 'F32') view.setFloat32(i * 4, v, true);
      else if (t.dtype === 'F16') view.setUint16(i * 2, f16(v), true);
      else if (t.dtype === 'BF16')
        view.setUint16(i * 2, new Uint32Array(new Float32Array([v]).buffer)[0]! >>> 16, true);
      else view.setInt8(i, v);
    }
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + buf.length] };
    chunks.push(buf);
    offset += buf.length;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let at = 8 + json.length;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

const tempDirs: string[] = [];

/** A writable copy of a fixture directory in a temp dir (removed by `removeTempDirs`). */
export function copyToTemp(dir: string, prefix = 'edgectl-inf-'): string {
  const dest = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.push(dest);
  cpSync(dir, dest, { recursive: true });
  return dest;
}

export function removeTempDirs(): void {
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs((a[i] as number) - (b[i] as number)));
  return max;
}

/** The first `n` held-out prompts of a domain (`general` or `support`). */
export function prompts(domain: string, n: number): string[] {
  return readFileSync(join(PROMPTS_DIR, `${domain}.jsonl`), 'utf8')
    .split('\n')
    .filter(Boolean)
    .slice(0, n)
    .map((line) => (JSON.parse(line) as { prompt: string }).prompt);
}
