/**
 * Token masks: bitsets over the vocabulary (bit i of word i>>5 set = token i allowed), applied to
 * logits as -Infinity, and their wire form for the verifier protocol (issue #18): the allowed ids
 * as a list or the bitset as base64 (little-endian 32-bit words), whichever is shorter, so a JSON
 * position allowing a handful of tokens costs a few bytes and a free-text position a fixed
 * vocab/8 bytes instead of a list of every id.
 */
import { UserError } from '../../foundation/errors.js';

export type TokenMaskWire = { allow: number[] } | { bitmask: string };

export function isAllowed(mask: Uint32Array, id: number): boolean {
  return (((mask[id >>> 5] ?? 0) >>> (id & 31)) & 1) === 1;
}

/** A copy of `row` with every token the mask forbids set to -Infinity (ids past the mask too). */
export function applyMask(row: Float32Array, mask: Uint32Array): Float32Array {
  const out = new Float32Array(row);
  for (let id = 0; id < out.length; id++) if (!isAllowed(mask, id)) out[id] = -Infinity;
  return out;
}

/** The number of allowed tokens. */
export function countAllowed(mask: Uint32Array): number {
  let n = 0;
  for (const word of mask) {
    let w = word;
    while (w !== 0) {
      w &= w - 1;
      n++;
    }
  }
  return n;
}

/** A mask allowing exactly `ids`. */
export function maskOf(ids: Iterable<number>, vocabSize: number): Uint32Array {
  const mask = new Uint32Array(Math.ceil(vocabSize / 32));
  for (const id of ids)
    if (id >= 0 && id < vocabSize) mask[id >>> 5] = ((mask[id >>> 5] ?? 0) | (1 << (id & 31))) >>> 0;
  return mask;
}

/** The shorter wire form of `mask`. */
export function encodeMask(mask: Uint32Array, vocabSize = mask.length * 32): TokenMaskWire {
  const allowed = countAllowed(mask);
  // A JSON id costs ~4-6 bytes with its comma; base64 costs 4/3 byte per mask byte.
  const bitmaskBytes = Math.ceil((Math.ceil(vocabSize / 32) * 4 * 4) / 3);
  if (allowed * 5 < bitmaskBytes) {
    const allow: number[] = [];
    for (let id = 0; id < vocabSize; id++) if (isAllowed(mask, id)) allow.push(id);
    return { allow };
  }
  const bytes = Buffer.alloc(mask.length * 4);
  mask.forEach((w, i) => bytes.writeUInt32LE(w, i * 4));
  return { bitmask: bytes.toString('base64') };
}

/** The bitset of a wire mask; malformed input is a UserError (400 at the verifier) naming `where`. */
export function decodeMask(wire: TokenMaskWire, vocabSize: number, where: string): Uint32Array {
  const words = Math.ceil(vocabSize / 32);
  if ('allow' in wire) {
    for (const id of wire.allow) {
      if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
        throw new UserError(
          `${where}.allow: token id ${id} is outside the vocabulary (0..${vocabSize - 1})`,
          {
            code: 'E_VERIFY_INPUT',
          },
        );
      }
    }
    return maskOf(wire.allow, vocabSize);
  }
  const bytes = Buffer.from(wire.bitmask, 'base64');
  // The site's vocabulary may be padded differently from ours: longer is fine when the extra
  // tokens are all forbidden, shorter forbids the tokens it does not cover.
  if (bytes.length % 4 !== 0 || bytes.length > (words + 64) * 4) {
    throw new UserError(`${where}.bitmask: ${bytes.length} bytes is not a bitmask of ${vocabSize} tokens`, {
      code: 'E_VERIFY_INPUT',
      suggestion: 'Send base64 of ceil(vocab/32) little-endian 32-bit words (bit i = token i allowed).',
    });
  }
  const mask = new Uint32Array(words);
  for (let i = 0; i * 4 < bytes.length; i++) {
    const w = bytes.readUInt32LE(i * 4);
    if (i < words) mask[i] = w;
    else if (w !== 0) {
      throw new UserError(`${where}.bitmask: allows token ids past the vocabulary (0..${vocabSize - 1})`, {
        code: 'E_VERIFY_INPUT',
      });
    }
  }
  if (vocabSize % 32 !== 0 && words > 0) {
    const tail = (mask[words - 1] ?? 0) >>> (vocabSize % 32);
    if (tail !== 0) {
      throw new UserError(`${where}.bitmask: allows token ids past the vocabulary (0..${vocabSize - 1})`, {
        code: 'E_VERIFY_INPUT',
      });
    }
  }
  return mask;
}
