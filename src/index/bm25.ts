/**
 * BM25 over immutable segments with corpus-wide statistics. Each segment stores its own postings
 * (`bm25.json`: passage lengths in terms, and per term a flat [position, term frequency, ...] list);
 * document frequency, passage count and average length are computed over the live passages of all
 * segments when the index is opened, so scores are exactly those of one index over the live corpus,
 * whatever the segment layout and tombstones (a per-segment engine such as minisearch would score each
 * segment with its own IDF). k1 = 1.2, b = 0.75.
 */
import { analyze } from './text.js';
import { TopK } from './topk.js';

const K1 = 1.2;
const B = 0.75;

export interface Postings {
  lengths: Uint32Array;
  terms: Map<string, Uint32Array>;
}

/** The postings of a segment's passages, as the JSON stored in `bm25.json` (terms sorted). */
export function buildPostingsJson(texts: readonly string[]): string {
  const terms = new Map<string, number[]>();
  const lengths: number[] = [];
  texts.forEach((text, pos) => {
    const toks = analyze(text);
    lengths.push(toks.length);
    const tf = new Map<string, number>();
    for (const t of toks) tf.set(t, (tf.get(t) ?? 0) + 1);
    for (const [t, f] of tf) {
      let list = terms.get(t);
      if (!list) terms.set(t, (list = []));
      list.push(pos, f);
    }
  });
  const sorted: Record<string, number[]> = {};
  for (const t of [...terms.keys()].sort()) sorted[t] = terms.get(t) ?? [];
  return JSON.stringify({ lengths, terms: sorted });
}

/** Parses bm25.json; returns a reason string when it is not what buildPostingsJson writes. */
export function parsePostings(text: string, n: number): Postings | string {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    return `invalid JSON (${(err as Error).message})`;
  }
  const r = raw as { lengths?: unknown; terms?: unknown };
  if (!Array.isArray(r.lengths) || r.lengths.length !== n || typeof r.terms !== 'object' || r.terms === null)
    return `expected {lengths: [${n} numbers], terms: {...}}`;
  const terms = new Map<string, Uint32Array>();
  for (const [t, list] of Object.entries(r.terms as Record<string, unknown>)) {
    if (!Array.isArray(list) || list.length % 2 !== 0) return `term ${JSON.stringify(t)}: bad postings`;
    terms.set(t, Uint32Array.from(list as number[]));
  }
  return { lengths: Uint32Array.from(r.lengths as number[]), terms };
}

export interface Bm25Segment {
  base: number;
  postings: Postings;
}

export interface Bm25Stats {
  live: Uint8Array;
  liveCount: number;
  avgLength: number;
  /** Live passages per term, counted once at open (a query then walks each posting list once). */
  df: Map<string, number>;
}

/** Live passage count, average length and document frequencies over all segments. */
export function bm25Stats(segments: readonly Bm25Segment[], live: Uint8Array): Bm25Stats {
  let count = 0;
  let total = 0;
  for (const s of segments)
    s.postings.lengths.forEach((len, i) => {
      if (live[s.base + i] === 1) {
        count++;
        total += len;
      }
    });
  const df = new Map<string, number>();
  for (const s of segments)
    for (const [term, list] of s.postings.terms) {
      let n = 0;
      for (let i = 0; i < list.length; i += 2) if (live[s.base + (list[i] as number)] === 1) n++;
      if (n > 0) df.set(term, (df.get(term) ?? 0) + n);
    }
  return { live, liveCount: count, avgLength: count > 0 ? total / count : 1, df };
}

/**
 * The `k` best passages for `query` by BM25 (global positions). `scratch` is a score buffer as long
 * as the index (reused between queries; left zeroed).
 */
export function searchBm25(
  query: string,
  segments: readonly Bm25Segment[],
  stats: Bm25Stats,
  k: number,
  scratch: Float64Array,
): TopK {
  const touched: number[] = [];
  for (const term of new Set(analyze(query))) {
    const df = stats.df.get(term) ?? 0;
    if (df === 0) continue;
    const idf = Math.log(1 + (stats.liveCount - df + 0.5) / (df + 0.5));
    for (const s of segments) {
      const list = s.postings.terms.get(term);
      if (!list) continue;
      const lens = s.postings.lengths;
      for (let i = 0; i < list.length; i += 2) {
        const p = list[i] ?? 0;
        const g = s.base + p;
        if (stats.live[g] !== 1) continue;
        const tf = list[i + 1] ?? 0;
        const norm = K1 * (1 - B + (B * (lens[p] ?? 0)) / stats.avgLength);
        if (scratch[g] === 0) touched.push(g);
        scratch[g] = (scratch[g] ?? 0) + (idf * tf * (K1 + 1)) / (tf + norm);
      }
    }
  }
  const top = new TopK(k);
  for (const g of touched) {
    top.push(g, scratch[g] ?? 0);
    scratch[g] = 0;
  }
  return top;
}
