/**
 * BM25 top-k at query time (docs/architecture.md "Index"). Small queries score every posting
 * (bm25.ts, term at a time). A query whose posting lists are long (a term found in most passages,
 * such as "ticket" in a ticket archive) runs Fagin's threshold algorithm instead, over each term's
 * postings in impact order: passages are visited best contribution first, each visited passage is
 * scored in full by binary search in the other terms' position-ordered lists, and the search stops
 * once the k-th best score beats the most any unvisited passage could still get (the sum of each
 * term's next contribution). The result equals the exhaustive search's, scores bit for bit and ties
 * by position (test/index/bm25-search.test.ts); a query the threshold cannot cut early falls back to
 * the exhaustive search after a bounded number of steps, so it never costs much more than that.
 *
 * Impact order without knowing the average length: a contribution rises with term frequency and falls
 * with passage length for any average length, so each term's postings are grouped by frequency
 * (descending) and ordered by length within a group; a group's next contribution bounds the rest of
 * it. The order is computed when an index is opened (one sort per posting list) and is the same
 * whatever the tombstones, which only skip passages. (WAND and block-max WAND, the usual
 * document-at-a-time pruning, do not help here: when every passage holds the query's terms, every
 * passage is a candidate; ordering by impact is what lets the search stop early.)
 */
import {
  bm25TermScore,
  queryTerms,
  searchBm25Exhaustive,
  type Bm25Scratch,
  type Bm25Segment,
  type Bm25Stats,
} from './bm25.js';
import type { Postings } from './bm25.js';
import { TopK } from './topk.js';

/** A term's postings in impact order: keys ascend as (frequency desc, length asc, position asc). */
export interface ImpactList {
  keys: Float64Array;
  /** Start of each frequency group in `keys`, then keys.length. */
  groups: Uint32Array;
}

// Key layout (exact in a float64's 53-bit mantissa): (TF_MAX − tf)·2^40 + length·2^24 + position.
const POS_BITS = 2 ** 24;
const LEN_BITS = 2 ** 16;
const TF_MAX = 4095;
const TF_SHIFT = POS_BITS * LEN_BITS;

/** Below this many postings a query is scored exhaustively: the threshold's bookkeeping is not worth it. */
export const THRESHOLD_MIN_POSTINGS = 8192;
/** A term in at least this share of the live passages is read in impact order rather than in full. */
export const LONG_SHARE = 1 / 4;
const VISIT_COST = 16;

/**
 * Impact-ordered lists of a segment's terms that `want` (the reader asks for the terms common enough
 * to be long, a few hundred of 100k+: ordering them all would add half a second to opening). A term
 * whose values do not fit the key has none, and is then always read in full.
 */
export function impactOrder(
  postings: Postings,
  want: (term: string) => boolean = () => true,
): Map<string, ImpactList> {
  const out = new Map<string, ImpactList>();
  if (postings.lengths.length >= POS_BITS) return out;
  for (const [term, list] of postings.terms) {
    if (!want(term)) continue;
    const keys = new Float64Array(list.length / 2);
    let fits = true;
    for (let i = 0; i < keys.length && fits; i++) {
      const pos = list[2 * i] as number;
      const tf = list[2 * i + 1] as number;
      const len = postings.lengths[pos] as number;
      fits = tf <= TF_MAX && len < LEN_BITS;
      keys[i] = (TF_MAX - tf) * TF_SHIFT + len * POS_BITS + pos;
    }
    if (!fits) continue;
    keys.sort();
    const groups: number[] = [0];
    for (let i = 1; i < keys.length; i++)
      if (Math.floor((keys[i] as number) / TF_SHIFT) !== Math.floor((keys[i - 1] as number) / TF_SHIFT))
        groups.push(i);
    groups.push(keys.length);
    out.set(term, { keys, groups: Uint32Array.from(groups) });
  }
  return out;
}

export interface ImpactSegment extends Bm25Segment {
  impacts: Map<string, ImpactList>;
}

/** A run of one term's postings with one frequency, in one segment, read best first. */
interface Cursor {
  term: number;
  seg: ImpactSegment;
  keys: Float64Array;
  at: number;
  end: number;
  /** The contribution of the posting at `at` (0 once exhausted). */
  head: number;
}

function headOf(c: Cursor, idf: number, avgLength: number): number {
  if (c.at >= c.end) return 0;
  const key = c.keys[c.at] as number;
  const tf = TF_MAX - Math.floor(key / TF_SHIFT);
  const len = Math.floor(key / POS_BITS) % LEN_BITS;
  return bm25TermScore(idf, tf, len, avgLength);
}

/** Term frequency of segment position `p` in a position-ordered list (0 if absent). */
function tfAt(list: Uint32Array, p: number): number {
  let lo = 0;
  let hi = list.length / 2 - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const at = list[2 * mid] as number;
    if (at === p) return list[2 * mid + 1] as number;
    if (at < p) lo = mid + 1;
    else hi = mid - 1;
  }
  return 0;
}

/** Per-query state of the pruned search: the terms, the result so far and the positions visited. */
interface Search {
  terms: readonly { term: string; idf: number }[];
  stats: Bm25Stats;
  top: TopK;
  /** Marks visited positions (zeroed again before returning). */
  seen: Float64Array;
  visited: Int32Array;
  nVisited: number;
}

/** Scores position `pos` of `seg` in full and offers it to the result, once. */
function visit(s: Search, seg: Bm25Segment, pos: number): void {
  const g = seg.base + pos;
  if (s.seen[g] !== 0 || s.stats.live[g] !== 1) return;
  s.seen[g] = 1;
  s.visited[s.nVisited++] = g;
  s.top.push(g, scoreAt(s.terms, seg, pos, s.stats.avgLength));
}

function cursorsOf(s: Search, segments: readonly ImpactSegment[], long: ReadonlySet<number>): Cursor[] {
  const cursors: Cursor[] = [];
  s.terms.forEach(({ term, idf }, t) => {
    if (!long.has(t)) return;
    for (const seg of segments) {
      const il = seg.impacts.get(term);
      for (let g = 0; il && g + 1 < il.groups.length; g++) {
        const at = il.groups[g] as number;
        const c: Cursor = { term: t, seg, keys: il.keys, at, end: il.groups[g + 1] as number, head: 0 };
        c.head = headOf(c, idf, s.stats.avgLength);
        cursors.push(c);
      }
    }
  });
  return cursors;
}

/**
 * The threshold algorithm over the long terms' impact-ordered lists, after every passage holding a
 * short term has been visited (so an unvisited passage scores from long terms only). Returns the
 * steps taken, or budget + 1 when it gives up.
 */
function thresholdPass(s: Search, cursors: Cursor[], budget: number): number {
  const best = new Float64Array(s.terms.length);
  for (let steps = 0; ; steps++) {
    // The most an unvisited passage can score: each term's best remaining contribution, summed in
    // query order as a passage's score is, so the comparison is exact in floating point.
    best.fill(0);
    let next: Cursor | undefined;
    for (const c of cursors) {
      if (c.head > (best[c.term] as number)) best[c.term] = c.head;
      if (c.head > 0 && (!next || c.head > next.head)) next = c;
    }
    let bound = 0;
    for (const b of best) bound += b;
    if (!next || (s.top.full && bound < s.top.threshold)) return steps;
    if (steps >= budget) return budget + 1;
    const pos = (next.keys[next.at] as number) % POS_BITS;
    next.at++;
    next.head = headOf(next, s.terms[next.term]?.idf ?? 0, s.stats.avgLength);
    visit(s, next.seg, pos);
  }
}

/** A passage's full score, summed in query-term order as the exhaustive search sums it. */
function scoreAt(
  terms: readonly { term: string; idf: number }[],
  seg: Bm25Segment,
  pos: number,
  avgLength: number,
): number {
  const len = seg.postings.lengths[pos] as number;
  let score = 0;
  for (const { term, idf } of terms) {
    const list = seg.postings.terms.get(term);
    const tf = list ? tfAt(list, pos) : 0;
    if (tf > 0) score += bm25TermScore(idf, tf, len, avgLength);
  }
  return score;
}

/** Knobs of the pruned search (defaults above; tests force each path) and what a query did. */
export interface Bm25Tuning {
  longShare?: number;
  minPostings?: number;
  visitCost?: number;
  /** Steps of the threshold pass before it gives up (default: the long postings / 2·visitCost). */
  budget?: number;
  trace?: { path?: 'exhaustive' | 'pruned' | 'fallback'; steps?: number; visited?: number };
}

/**
 * The `k` best passages for `query` by BM25 (global positions), exactly as searchBm25Exhaustive
 * ranks them. A term is long when it is found in at least `longShare` of the live passages; the
 * pruned search runs when some are, and visiting every passage of the other (short) terms is cheap
 * beside adding up the long lists. `scratch`: bm25Scratch.
 */
export function searchBm25(
  query: string,
  segments: readonly ImpactSegment[],
  stats: Bm25Stats,
  k: number,
  scratch: Bm25Scratch,
  tuning: Bm25Tuning = {},
): TopK {
  const trace = tuning.trace ?? {};
  const visitCost = tuning.visitCost ?? VISIT_COST;
  const terms = queryTerms(query, stats);
  const long = new Set<number>();
  let longPostings = 0;
  let shortPostings = 0;
  terms.forEach(({ term }, t) => {
    const df = stats.df.get(term) ?? 0;
    const ordered = segments.every((s) => s.impacts.has(term) || !s.postings.terms.has(term));
    if (ordered && df >= stats.liveCount * (tuning.longShare ?? LONG_SHARE)) {
      long.add(t);
      longPostings += df;
    } else shortPostings += df;
  });
  // Visiting a passage (a binary search per term) costs about VISIT_COST term-at-a-time additions.
  const worthIt = shortPostings * visitCost * terms.length < longPostings;
  if (worthIt && longPostings >= (tuning.minPostings ?? THRESHOLD_MIN_POSTINGS)) {
    const s: Search = {
      terms,
      stats,
      top: new TopK(k),
      seen: scratch.scores,
      visited: scratch.touched,
      nVisited: 0,
    };
    try {
      terms.forEach(({ term }, t) => {
        if (long.has(t)) return;
        for (const seg of segments) {
          const list = seg.postings.terms.get(term);
          for (let i = 0; list && i < list.length; i += 2) visit(s, seg, list[i] as number);
        }
      });
      // Past this many steps the exhaustive search is the cheaper way to finish.
      const budget = tuning.budget ?? Math.ceil(longPostings / visitCost / 2);
      const steps = thresholdPass(s, cursorsOf(s, segments, long), budget);
      Object.assign(trace, { steps: Math.min(steps, budget), visited: s.nVisited });
      if (steps <= budget) {
        trace.path = 'pruned';
        return s.top;
      }
      trace.path = 'fallback';
    } finally {
      for (let j = 0; j < s.nVisited; j++) s.seen[s.visited[j] as number] = 0;
    }
  }
  trace.path ??= 'exhaustive';
  return searchBm25Exhaustive(terms, segments, stats, k, scratch);
}
