/**
 * BM25 over immutable segments with corpus-wide statistics. Each segment stores its own postings
 * (`bm25.json`: passage lengths in terms, and per term a flat [position, term frequency, ...] list,
 * positions ascending); document frequency, passage count and average length are computed over the
 * live passages of all segments when the index is opened, so scores are exactly those of one index
 * over the live corpus, whatever the segment layout and tombstones (a per-segment engine such as
 * minisearch would score each segment with its own IDF). k1 = 1.2, b = 0.75. This module owns the
 * format, the statistics, the scoring formula and the exhaustive (term-at-a-time) search, which is
 * the reference the pruned search in bm25-search.ts must equal.
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
    const arr = Uint32Array.from(list as number[]);
    // Searches binary-search positions and trust them to be in range: check once here.
    for (let i = 0; i < arr.length; i += 2)
      if (
        (arr[i] as number) >= n ||
        (i > 0 && (arr[i] as number) <= (arr[i - 2] as number)) ||
        arr[i + 1] === 0
      )
        return `term ${JSON.stringify(t)}: postings out of order or out of range`;
    terms.set(t, arr);
  }
  return { lengths: Uint32Array.from(r.lengths as number[]), terms };
}

/** Inverse document frequency of a term found in `df` of `n` live passages. */
export const bm25Idf = (df: number, n: number): number => Math.log(1 + (n - df + 0.5) / (df + 0.5));

/**
 * A term's contribution to a passage's score. Every search computes it with this one expression, and
 * sums a passage's contributions in query-term order, so pruned and exhaustive scores are bit-equal.
 */
export const bm25TermScore = (idf: number, tf: number, len: number, avgLength: number): number =>
  (idf * tf * (K1 + 1)) / (tf + K1 * (1 - B + (B * len) / avgLength));

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

/** The query's distinct BM25 terms that occur in a live passage, in query order, with their IDF. */
export function queryTerms(query: string, stats: Bm25Stats): { term: string; idf: number }[] {
  const out: { term: string; idf: number }[] = [];
  for (const term of new Set(analyze(query))) {
    const df = stats.df.get(term) ?? 0;
    if (df > 0) out.push({ term, idf: bm25Idf(df, stats.liveCount) });
  }
  return out;
}

/**
 * Per-reader buffers as long as the index, reused by every query and left zeroed: growing a fresh
 * array of touched positions per query cost ten times the scoring itself (allocation is slow on
 * small VMs; measured on the 100k-passage benchmark).
 */
export interface Bm25Scratch {
  scores: Float64Array;
  touched: Int32Array;
}

export const bm25Scratch = (n: number): Bm25Scratch => ({
  scores: new Float64Array(n),
  touched: new Int32Array(n),
});

/** The `k` best passages for `terms` by BM25 (global positions), scoring every posting of every term (term at a time). */
export function searchBm25Exhaustive(
  terms: readonly { term: string; idf: number }[],
  segments: readonly Bm25Segment[],
  stats: Bm25Stats,
  k: number,
  scratch: Bm25Scratch,
): TopK {
  const { scores, touched } = scratch;
  let nt = 0;
  const avg = stats.avgLength;
  // Hot loop: positions are in range (parsePostings checked them), so casts stand in for `?? 0`,
  // which costs about twice as much here (dense.ts measured the same).
  for (const { term, idf } of terms) {
    for (const s of segments) {
      const list = s.postings.terms.get(term);
      if (!list) continue;
      const lens = s.postings.lengths;
      for (let i = 0; i < list.length; i += 2) {
        const p = list[i] as number;
        const g = s.base + p;
        if (stats.live[g] !== 1) continue;
        const prev = scores[g] as number;
        if (prev === 0) touched[nt++] = g;
        scores[g] = prev + bm25TermScore(idf, list[i + 1] as number, lens[p] as number, avg);
      }
    }
  }
  const top = new TopK(k);
  for (let j = 0; j < nt; j++) {
    const g = touched[j] as number;
    top.push(g, scores[g] as number);
    scores[g] = 0;
  }
  return top;
}
