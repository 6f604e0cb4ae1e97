import { describe, expect, it } from 'vitest';
import { UserError } from '../../src/foundation/errors.js';
import { readSafetensors } from '../../src/inference/safetensors.js';
import { safetensorsBytes } from './helpers.js';

describe('safetensors reader', () => {
  it('reads F32, F16 and BF16 tensors as float32', () => {
    const bytes = safetensorsBytes({
      a: { dtype: 'F32', shape: [2, 2], values: [1, -2.5, 3.25, 0] },
      h: { dtype: 'F16', shape: [3], values: [1, -0.5, 65504] },
      b: { dtype: 'BF16', shape: [2], values: [1.5, -3] },
    });
    const t = readSafetensors(bytes, 'x.safetensors');
    expect(t.get('a')).toEqual({ shape: [2, 2], data: Float32Array.from([1, -2.5, 3.25, 0]) });
    expect(Array.from(t.get('h')?.data ?? [])).toEqual([1, -0.5, 65504]);
    expect(Array.from(t.get('b')?.data ?? [])).toEqual([1.5, -3]);
  });

  it('refuses truncated files, bad headers and unsupported dtypes with the file name', () => {
    const good = safetensorsBytes({ a: { dtype: 'F32', shape: [4], values: [1, 2, 3, 4] } });
    expect(() => readSafetensors(good.subarray(0, 5), 'w.safetensors')).toThrow(/w\.safetensors.*8-byte/);
    expect(() => readSafetensors(good.subarray(0, good.length - 4), 'w.safetensors')).toThrow(/data_offsets/);
    const huge = Uint8Array.from(good);
    new DataView(huge.buffer).setBigUint64(0, 1n << 40n, true);
    expect(() => readSafetensors(huge, 'w.safetensors')).toThrow(/header length/);
    const garbage = Uint8Array.from(good);
    garbage[9] = 0x7b; // break the JSON
    garbage[10] = 0x7b;
    expect(() => readSafetensors(garbage, 'w.safetensors')).toThrow(UserError);
    const i8 = safetensorsBytes({ a: { dtype: 'I8', shape: [4], values: [1, 2, 3, 4] } });
    expect(() => readSafetensors(i8, 'w.safetensors')).toThrow(/dtype I8 is not supported/);
  });
});
