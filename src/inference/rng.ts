/**
 * Seeded pseudo-random numbers for sampling (xoshiro128**, seeded through splitmix32).
 *
 * Sampling must be reproducible: a request's `seed` has to give the same tokens on every run, and
 * the verifier's accept/reject draws must be replayable in tests. `Math.random` cannot be seeded
 * and `crypto.getRandomValues` is neither reproducible nor cheap per draw, so we carry a tiny
 * generator ourselves. xoshiro128** was chosen over mulberry32 because its 128-bit state gives a
 * period of 2^128 − 1 and it passes BigCrush, while mulberry32's 32-bit state repeats after 2^32
 * draws; it uses only 32-bit integer operations, which are fast in JavaScript. No maintained npm
 * package offers this as a small, dependency-free, typed class, so it is written here (30 lines).
 */

export interface Rng {
  /** Uniform float in [0, 1) with 53 random bits. */
  next(): number;
}

function splitmix32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

export class Xoshiro128 implements Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    // Mix the seed so nearby seeds (0, 1, 2, ...) give unrelated streams, and never all-zero state.
    const mix = splitmix32(Math.floor(seed) ^ Math.floor(seed / 0x100000000));
    this.a = mix();
    this.b = mix();
    this.c = mix();
    this.d = mix() | 1;
  }

  /** Next 32-bit unsigned integer. */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.b, 5), 7), 9) >>> 0;
    const t = this.b << 9;
    this.c ^= this.a;
    this.d ^= this.b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = rotl(this.d, 11);
    return result;
  }

  next(): number {
    const hi = this.nextUint32() >>> 5; // 27 bits
    const lo = this.nextUint32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** A generator for `seed`, or a randomly seeded one when no seed is given. */
export function createRng(seed?: number): Rng {
  return new Xoshiro128(seed ?? Math.floor(Math.random() * 0x100000000));
}
