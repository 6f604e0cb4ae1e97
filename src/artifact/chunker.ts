/**
 * Content-defined chunking (FastCDC, Xia et al. 2016/2020) and per-chunk SHA-256: owns where files
 * are cut into chunks, so that an edit costs only the chunks around it (docs/formats.md "Artifacts").
 *
 * Algorithm: a Gear rolling hash (`h = (h << 1) + G[byte]`, 32-bit), with FastCDC's three tricks:
 * cut points below `min` are never examined (the hash starts at `min`), normalised chunking with a
 * stricter mask below `avg` (avg bits + 2) and a looser one above (avg bits - 2), and the 2020
 * "two bytes per step" unrolling. The masks use bits 30..(31-n): Gear's low bits only depend on
 * the last few bytes, so high bits give better-spread cut points; bit 31 is left out so the
 * left-shifted mask of the unrolled odd step still fits in 32 bits.
 *
 * Parameters 16 / 64 / 256 KiB: the casync/desync default (min = avg/4, max = 4*avg). The
 * reference measured 99.5% reuse after 16 scattered single-byte edits in 256 MiB at 64 KiB
 * average versus 86% at 2 MiB; the request cost of small chunks is paid by packing them into pack
 * blobs (pack.ts), not by making chunks big.
 *
 * Why our own code rather than a package: on npm, `fastcdc` (Rust bindings) is not published,
 * `@dstanesc/wasm-chunking-fastcdc-node` is a 2022 0.1.x wrapper that copies every buffer into WASM,
 * and `@ronomon/deduplication` is an unmaintained native addon. The loop below is ~40 lines, runs
 * faster than node:crypto's SHA-256, and its exact boundaries are part of our format, so we
 * want them pinned by our own tests rather than by a dependency's release.
 *
 * The Gear table and masks are part of the on-registry format (`fastcdc-gear32-v1`): changing them
 * changes every cut point (old artifacts stay valid, only dedup against them is lost).
 */
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';

export const CHUNKING_ALGORITHM = 'fastcdc-gear32-v1';

export interface ChunkerParams {
  min: number;
  avg: number;
  max: number;
}

export const DEFAULT_CHUNKER: ChunkerParams = { min: 16 * 1024, avg: 64 * 1024, max: 256 * 1024 };

/** One chunk of a file: where it is and what it hashes to (`sha256:<hex>`). */
export interface ChunkRef {
  offset: number;
  size: number;
  digest: string;
}

/** The Gear table: 256 fixed pseudo-random 32-bit values derived from a public seed. */
function gearTable(): Int32Array {
  const table = new Int32Array(256);
  for (let i = 0; i < 256; i++) {
    table[i] = createHash('sha256').update(`edgectl-gear32-v1:${i}`).digest().readInt32BE(0);
  }
  return table;
}
const GEAR = gearTable();
const GEAR_LS = GEAR.map((v) => v << 1);

/** n one-bits ending at bit 30. */
function highMask(bits: number): number {
  return ((0xffffffff >>> (32 - bits)) << (31 - bits)) | 0;
}

interface CompiledParams {
  min: number;
  avg: number;
  max: number;
  maskS: number;
  maskL: number;
  maskSls: number;
  maskLls: number;
}

const compiledCache = new WeakMap<ChunkerParams, CompiledParams>();

function compile(p: ChunkerParams): CompiledParams {
  const hit = compiledCache.get(p);
  if (hit) return hit;
  if (!(Number.isInteger(p.min) && Number.isInteger(p.avg) && Number.isInteger(p.max))) {
    throw new RangeError('chunker sizes must be integers');
  }
  if (p.min < 64 || p.min >= p.avg || p.avg >= p.max || p.max > 2 ** 30) {
    throw new RangeError(`chunker sizes must satisfy 64 <= min < avg < max: got ${p.min}/${p.avg}/${p.max}`);
  }
  const bits = Math.round(Math.log2(p.avg));
  if (bits < 4 || bits > 26) throw new RangeError(`chunker avg size out of range: ${p.avg}`);
  const maskS = highMask(bits + 2);
  const maskL = highMask(bits - 2);
  const c = { ...p, maskS, maskL, maskSls: maskS << 1, maskLls: maskL << 1 };
  compiledCache.set(p, c);
  return c;
}

/**
 * Length of the next chunk of `data[start, end)`. `end - start` must be at least `max` unless the
 * data ends at `end` (a streaming caller passes `end` = end of what it has read so far only at EOF).
 */
function cutLength(data: Uint8Array, start: number, end: number, c: CompiledParams): number {
  let remaining = end - start;
  if (remaining <= c.min) return remaining;
  let center = c.avg;
  if (remaining > c.max) remaining = c.max;
  else if (remaining < center) center = remaining;
  // Indices are in units of two bytes (the 2020 unrolling); the hash starts fresh at `min`.
  let i = c.min >>> 1;
  let h = 0;
  const stopS = center >>> 1;
  const stopL = remaining >>> 1;
  const g = GEAR;
  const gls = GEAR_LS;
  const mS = c.maskS;
  const mSls = c.maskSls;
  const mL = c.maskL;
  const mLls = c.maskLls;
  for (; i < stopS; i++) {
    const a = start + (i << 1);
    h = ((h << 2) + gls[data[a]!]!) | 0;
    if ((h & mSls) === 0) return i << 1;
    h = (h + g[data[a + 1]!]!) | 0;
    if ((h & mS) === 0) return (i << 1) + 1;
  }
  for (; i < stopL; i++) {
    const a = start + (i << 1);
    h = ((h << 2) + gls[data[a]!]!) | 0;
    if ((h & mLls) === 0) return i << 1;
    h = (h + g[data[a + 1]!]!) | 0;
    if ((h & mL) === 0) return (i << 1) + 1;
  }
  return remaining;
}

/** Chunk end offsets (exclusive) of a whole buffer; the last one equals `data.length`. */
export function cutPoints(data: Uint8Array, params: ChunkerParams = DEFAULT_CHUNKER): number[] {
  const c = compile(params);
  const cuts: number[] = [];
  let pos = 0;
  while (pos < data.length) {
    pos += cutLength(data, pos, data.length, c);
    cuts.push(pos);
  }
  return cuts;
}

export function sha256Digest(data: Uint8Array): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** Chunks of a whole buffer with their SHA-256. */
export function chunkBuffer(data: Uint8Array, params: ChunkerParams = DEFAULT_CHUNKER): ChunkRef[] {
  const out: ChunkRef[] = [];
  let offset = 0;
  for (const cut of cutPoints(data, params)) {
    out.push({ offset, size: cut - offset, digest: sha256Digest(data.subarray(offset, cut)) });
    offset = cut;
  }
  return out;
}

/** A chunk with a view of its bytes; the view is only valid until the iterator advances. */
export interface ChunkWithData extends ChunkRef {
  data: Buffer;
}

export interface ChunkFileOptions {
  params?: ChunkerParams;
  /** Bytes read per syscall; the buffer holds this plus `max`. */
  readSize?: number;
  /** Also hash the whole file (the manifest's file sha256) in the same pass. */
  onFileDigest?: (digest: string, size: number) => void;
}

/**
 * Streams a file through the chunker with bounded memory (readSize + max bytes), yielding each
 * chunk with its digest and bytes. The whole-file SHA-256 comes out through `onFileDigest`.
 */
export async function* chunkFile(path: string, opts: ChunkFileOptions = {}): AsyncGenerator<ChunkWithData> {
  const c = compile(opts.params ?? DEFAULT_CHUNKER);
  const readSize = Math.max(opts.readSize ?? 8 * 1024 * 1024, c.max);
  const buf = Buffer.allocUnsafe(readSize + c.max);
  const fileHash = opts.onFileDigest ? createHash('sha256') : undefined;
  const fh = await open(path, 'r');
  try {
    let filled = 0; // valid bytes in buf
    let pos = 0; // start of the unchunked bytes in buf
    let fileOffset = 0; // file offset of buf[pos]
    let eof = false;
    for (;;) {
      if (!eof && filled - pos < c.max) {
        // Slide the tail to the front and refill.
        if (pos > 0) {
          buf.copy(buf, 0, pos, filled);
          filled -= pos;
          pos = 0;
        }
        while (!eof && filled < buf.length) {
          const { bytesRead } = await fh.read(buf, filled, buf.length - filled, null);
          if (bytesRead === 0) eof = true;
          else {
            fileHash?.update(buf.subarray(filled, filled + bytesRead));
            filled += bytesRead;
          }
        }
      }
      if (pos >= filled) break;
      const len = cutLength(buf, pos, filled, c);
      const data = buf.subarray(pos, pos + len);
      yield { offset: fileOffset, size: len, digest: sha256Digest(data), data };
      pos += len;
      fileOffset += len;
    }
    if (fileHash && opts.onFileDigest) opts.onFileDigest(`sha256:${fileHash.digest('hex')}`, fileOffset);
  } finally {
    await fh.close();
  }
}
