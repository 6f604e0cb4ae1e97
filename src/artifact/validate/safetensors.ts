/**
 * Reads the header of a safetensors file (8-byte little-endian header length, then a JSON object
 * mapping tensor names to `{dtype, shape, data_offsets}`), enough to check an adapter's tensors
 * without loading their data. Written here because the format is tiny and the npm readers load the
 * whole file.
 */
import { open } from 'node:fs/promises';
import { invalidFile } from './common.js';

export interface TensorInfo {
  dtype: string;
  shape: number[];
  dataOffsets: [number, number];
}

const MAX_HEADER = 100 * 1024 * 1024;

export async function readSafetensorsHeader(file: string): Promise<Map<string, TensorInfo>> {
  const fh = await open(file, 'r');
  try {
    const { size } = await fh.stat();
    const lenBuf = Buffer.alloc(8);
    if (size < 8 || (await fh.read(lenBuf, 0, 8, 0)).bytesRead !== 8)
      throw invalidFile(file, '', 'too short for safetensors');
    const len = Number(lenBuf.readBigUInt64LE(0));
    if (len > MAX_HEADER || 8 + len > size)
      throw invalidFile(file, '', `header length ${len} does not fit the file`);
    const headerBuf = Buffer.alloc(len);
    await fh.read(headerBuf, 0, len, 8);
    let header: unknown;
    try {
      header = JSON.parse(headerBuf.toString('utf8'));
    } catch {
      throw invalidFile(file, '', 'the safetensors header is not JSON');
    }
    if (typeof header !== 'object' || header === null || Array.isArray(header)) {
      throw invalidFile(file, '', 'the safetensors header is not a JSON object');
    }
    const dataSize = size - 8 - len;
    const out = new Map<string, TensorInfo>();
    for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
      if (name === '__metadata__') continue;
      const t = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
      const shape = t.shape;
      const offsets = t.data_offsets;
      if (
        typeof t.dtype !== 'string' ||
        !Array.isArray(shape) ||
        !shape.every((d) => Number.isInteger(d) && d >= 0) ||
        !Array.isArray(offsets) ||
        offsets.length !== 2 ||
        !offsets.every((o) => Number.isInteger(o) && o >= 0 && o <= dataSize) ||
        offsets[0] > offsets[1]
      ) {
        throw invalidFile(file, name, 'malformed tensor entry (dtype, shape, data_offsets)');
      }
      out.set(name, { dtype: t.dtype, shape: shape as number[], dataOffsets: [offsets[0], offsets[1]] });
    }
    return out;
  } finally {
    await fh.close();
  }
}
