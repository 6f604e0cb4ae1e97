/**
 * Dense retrieval over a segment's vectors (L2-normalized float32, dot product = cosine): an exact
 * scan, and an inverted-file index (IVF) for large segments: spherical k-means centroids (about
 * √n lists), each vector filed under its nearest centroid, a query scanning only the `nprobe` lists
 * whose centroids are nearest to it. Building is deterministic (seeded sampling, fixed iteration
 * count), so the same passages give the same bytes. The binary layout (`ivf.bin`, little endian):
 * int32 nlist, int32 dim, float32 centroids [nlist·dim], int32 offsets [nlist+1], int32 members [n].
 */
import type { TopK } from './topk.js';

export const IVF_MIN_PASSAGES = 4096;
const KMEANS_ITERS = 6;

export interface Ivf {
  nlist: number;
  centroids: Float32Array;
  offsets: Int32Array;
  members: Int32Array;
}

// Hot loop: indexes are in range by construction, so the casts stand in for `?? 0` (which costs ~2x here).
function dot(a: Float32Array, ao: number, b: Float32Array, bo: number, dim: number): number {
  let s = 0;
  for (let j = 0; j < dim; j++) s += (a[ao + j] as number) * (b[bo + j] as number);
  return s;
}

function nearest(c: Float32Array, nlist: number, v: Float32Array, vo: number, dim: number): number {
  let best = 0;
  let bestS = -Infinity;
  for (let l = 0; l < nlist; l++) {
    const s = dot(c, l * dim, v, vo, dim);
    if (s > bestS) {
      bestS = s;
      best = l;
    }
  }
  return best;
}

/** Builds the IVF of `n` vectors (deterministic). */
export function buildIvf(vectors: Float32Array, n: number, dim: number): Ivf {
  const nlist = Math.max(1, Math.round(Math.sqrt(n)));
  // A deterministic sample: every step-th vector (k-means on ~40 points per list is plenty).
  const step = Math.max(1, Math.floor(n / (nlist * 40)));
  const sample: number[] = [];
  for (let i = 0; i < n; i += step) sample.push(i);
  const c = new Float32Array(nlist * dim);
  for (let l = 0; l < nlist; l++) {
    const src = sample[Math.floor((l * sample.length) / nlist)] ?? 0;
    c.set(vectors.subarray(src * dim, src * dim + dim), l * dim);
  }
  for (let it = 0; it < KMEANS_ITERS; it++) {
    const sum = new Float32Array(nlist * dim);
    for (const i of sample) {
      const l = nearest(c, nlist, vectors, i * dim, dim);
      for (let j = 0; j < dim; j++) sum[l * dim + j] = (sum[l * dim + j] ?? 0) + (vectors[i * dim + j] ?? 0);
    }
    for (let l = 0; l < nlist; l++) {
      let norm = 0;
      for (let j = 0; j < dim; j++) norm += (sum[l * dim + j] ?? 0) ** 2;
      if (norm === 0) continue; // an empty list keeps its centroid
      const inv = 1 / Math.sqrt(norm);
      for (let j = 0; j < dim; j++) c[l * dim + j] = (sum[l * dim + j] ?? 0) * inv;
    }
  }
  const assign = new Int32Array(n);
  const counts = new Int32Array(nlist);
  for (let i = 0; i < n; i++) {
    const l = nearest(c, nlist, vectors, i * dim, dim);
    assign[i] = l;
    counts[l] = (counts[l] ?? 0) + 1;
  }
  const offsets = new Int32Array(nlist + 1);
  for (let l = 0; l < nlist; l++) offsets[l + 1] = (offsets[l] ?? 0) + (counts[l] ?? 0);
  const fill = offsets.slice(0, nlist);
  const members = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const l = assign[i] ?? 0;
    members[fill[l] ?? 0] = i;
    fill[l] = (fill[l] ?? 0) + 1;
  }
  return { nlist, centroids: c, offsets, members };
}

export function encodeIvf(ivf: Ivf, dim: number): Uint8Array {
  const n = ivf.members.length;
  const buf = new ArrayBuffer(8 + ivf.centroids.byteLength + (ivf.nlist + 1) * 4 + n * 4);
  const view = new DataView(buf);
  view.setInt32(0, ivf.nlist, true);
  view.setInt32(4, dim, true);
  let o = 8;
  for (const x of ivf.centroids) {
    view.setFloat32(o, x, true);
    o += 4;
  }
  for (const x of [...ivf.offsets, ...ivf.members]) {
    view.setInt32(o, x, true);
    o += 4;
  }
  return new Uint8Array(buf);
}

/** Parses ivf.bin; returns a reason string when the layout does not add up (the caller names the file). */
export function decodeIvf(bytes: Uint8Array, n: number, dim: number): Ivf | string {
  if (bytes.length < 8) return 'shorter than its header';
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const nlist = view.getInt32(0, true);
  if (view.getInt32(4, true) !== dim) return `dimension ${view.getInt32(4, true)}, expected ${dim}`;
  if (nlist < 1 || bytes.length !== 8 + nlist * dim * 4 + (nlist + 1) * 4 + n * 4)
    return 'size does not match its header';
  // A fresh, aligned copy: Buffer#slice is a view, and a Buffer's ArrayBuffer may not start at its first byte.
  const copy = new Uint8Array(bytes.subarray(8));
  const centroids = new Float32Array(copy.buffer, 0, nlist * dim);
  const offsets = new Int32Array(copy.buffer, nlist * dim * 4, nlist + 1);
  const members = new Int32Array(copy.buffer, nlist * dim * 4 + (nlist + 1) * 4, n);
  return { nlist, centroids, offsets, members };
}

/** Scores every vector of a segment (exact). `base` maps a segment position to a global one. */
export function scanExact(
  q: Float32Array,
  vectors: Float32Array,
  n: number,
  dim: number,
  base: number,
  live: Uint8Array,
  top: TopK,
): void {
  for (let i = 0; i < n; i++) {
    if (live[base + i] !== 1) continue;
    top.push(base + i, dot(vectors, i * dim, q, 0, dim));
  }
}

/** Scores the vectors in the `nprobe` lists nearest to the query. */
export function scanIvf(
  q: Float32Array,
  vectors: Float32Array,
  ivf: Ivf,
  dim: number,
  nprobe: number,
  base: number,
  live: Uint8Array,
  top: TopK,
): void {
  const order = Array.from({ length: ivf.nlist }, (_, l) => ({
    l,
    s: dot(ivf.centroids, l * dim, q, 0, dim),
  }));
  order.sort((a, b) => b.s - a.s);
  for (let p = 0; p < Math.min(nprobe, ivf.nlist); p++) {
    const l = order[p]?.l ?? 0;
    for (let m = ivf.offsets[l] ?? 0; m < (ivf.offsets[l + 1] ?? 0); m++) {
      const i = ivf.members[m] ?? 0;
      if (live[base + i] !== 1) continue;
      top.push(base + i, dot(vectors, i * dim, q, 0, dim));
    }
  }
}
