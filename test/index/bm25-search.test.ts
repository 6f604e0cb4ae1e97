/**
 * BM25 pruning (src/index/bm25-search.ts) returns exactly what the exhaustive search returns: the same
 * positions, bit-equal scores and ties broken by position, over several segments with tombstones and
 * a vocabulary small enough that many passages tie. Also: the pruned path really stops early on
 * terms found in every passage, gives up to the exhaustive search past its budget with the same
 * answer, leaves the shared buffers zeroed, and postings that break the format's order are refused.
 */
import { describe, expect, it } from 'vitest';
import {
  bm25Scratch,
  bm25Stats,
  buildPostingsJson,
  parsePostings,
  queryTerms,
  searchBm25Exhaustive,
  type Bm25Scratch,
  type Bm25Stats,
  type Postings,
} from '../../src/index/bm25.js';
import { impactOrder, searchBm25, type Bm25Tuning, type ImpactSegment } from '../../src/index/bm25-search.js';
import { createRng } from '../../src/inference/rng.js';
import { TopK } from '../../src/index/topk.js';

const VOCAB = ['ticket', 'reference', 'printer', 'jam', 'tray', 'badge', 'door', 'refund', 'receipt', 'wifi'];

interface Fixture {
  segments: ImpactSegment[];
  stats: Bm25Stats;
  scratch: Bm25Scratch;
}

/** Segments of random passages: every passage says "ticket reference" (terms in every passage). */
function fixture(seed: number, sizes: number[], deadShare: number): Fixture {
  const rng = createRng(seed);
  const word = () => VOCAB[2 + Math.floor(rng.next() * (VOCAB.length - 2))] ?? 'door';
  const segments: ImpactSegment[] = [];
  let base = 0;
  for (const n of sizes) {
    const texts = Array.from({ length: n }, () => {
      const words = Array.from({ length: 1 + Math.floor(rng.next() * 6) }, word);
      if (rng.next() < 0.3) words.push('ticket'); // term frequency 2 in some passages
      return `ticket reference ${words.join(' ')}`;
    });
    const postings = parsePostings(buildPostingsJson(texts), n) as Postings;
    segments.push({ base, postings, impacts: impactOrder(postings) });
    base += n;
  }
  const live = new Uint8Array(base).map(() => (rng.next() < deadShare ? 0 : 1));
  return { segments, stats: bm25Stats(segments, live), scratch: bm25Scratch(base) };
}

const forcePruned: Bm25Tuning = { longShare: 0.2, minPostings: 0, visitCost: 0 };

function both(f: Fixture, query: string, k: number, tuning: Bm25Tuning) {
  const exhaustive = searchBm25Exhaustive(queryTerms(query, f.stats), f.segments, f.stats, k, f.scratch);
  const pruned = searchBm25(query, f.segments, f.stats, k, f.scratch, tuning);
  return { exhaustive: exhaustive.items, pruned: pruned.items };
}

describe('pruned BM25 equals exhaustive BM25', () => {
  it('on random queries over three segments with tombstones (positions, scores, ties)', () => {
    const f = fixture(7, [700, 300, 1200], 0.1);
    const rng = createRng(99);
    let pruned = 0;
    for (let q = 0; q < 200; q++) {
      const words = Array.from({ length: 1 + Math.floor(rng.next() * 4) }, () => {
        return VOCAB[Math.floor(rng.next() * VOCAB.length)] ?? 'ticket';
      });
      const k = [1, 5, 10, 50][q % 4] ?? 10;
      const trace: NonNullable<Bm25Tuning['trace']> = {};
      const r = both(f, words.join(' '), k, { ...forcePruned, trace });
      expect(r.pruned).toEqual(r.exhaustive);
      if (trace.path === 'pruned') pruned++;
    }
    // Most queries hold a term found in more than a fifth of the passages, so most took the pruned path.
    expect(pruned).toBeGreaterThan(150);
    expect(f.scratch.scores.every((x) => x === 0)).toBe(true);
  });

  it('stops early on terms found in every passage, with many tied scores', () => {
    const f = fixture(3, [5000, 3000], 0.05);
    const trace: NonNullable<Bm25Tuning['trace']> = {};
    const r = both(f, 'reference ticket', 50, { ...forcePruned, trace });
    expect(r.pruned).toEqual(r.exhaustive);
    expect(trace.path).toBe('pruned');
    // 16,000 postings; the threshold is reached after visiting a small share of them.
    expect(trace.steps).toBeLessThan(4000);
    expect(new Set(r.exhaustive.map((x) => x.score)).size).toBeLessThan(50); // ties were decided
  });

  it('a rare term among common ones: the rare passages first, then the shortest common ones', () => {
    const f = fixture(5, [4000], 0);
    const trace: NonNullable<Bm25Tuning['trace']> = {};
    const r = both(f, 'ticket reference wifi', 20, { longShare: 0.5, minPostings: 0, visitCost: 0, trace });
    expect(r.pruned).toEqual(r.exhaustive);
    expect(trace.path).toBe('pruned');
  });

  it('past its budget it finishes exhaustively, with the same answer and zeroed buffers', () => {
    const f = fixture(11, [3000], 0.1);
    const trace: NonNullable<Bm25Tuning['trace']> = {};
    const r = both(f, 'printer jam ticket', 50, { ...forcePruned, budget: 3, trace });
    expect(trace.path).toBe('fallback');
    expect(r.pruned).toEqual(r.exhaustive);
    expect(f.scratch.scores.every((x) => x === 0)).toBe(true);
  });

  it('by default, a small query is scored exhaustively', () => {
    const f = fixture(13, [500], 0);
    const trace: NonNullable<Bm25Tuning['trace']> = {};
    searchBm25('printer', f.segments, f.stats, 10, f.scratch, { trace });
    expect(trace.path).toBe('exhaustive');
  });
});

describe('TopK', () => {
  it('keeps the same best k whatever the order candidates arrive in (ties by position)', () => {
    const cands = Array.from({ length: 200 }, (_, i) => ({ pos: (i * 37) % 200, score: i % 7 }));
    const a = new TopK(15);
    const b = new TopK(15);
    for (const c of cands) a.push(c.pos, c.score);
    for (const c of [...cands].reverse()) b.push(c.pos, c.score);
    expect(a.items).toEqual(b.items);
    const sorted = [...cands].sort((x, y) => y.score - x.score || x.pos - y.pos);
    expect(a.items).toEqual(sorted.slice(0, 15));
  });
});

describe('parsePostings', () => {
  it('refuses postings out of position order, out of range, or with a zero frequency', () => {
    const ok = JSON.stringify({ lengths: [2, 2, 2], terms: { a: [0, 1, 2, 1] } });
    expect(typeof parsePostings(ok, 3)).toBe('object');
    for (const list of [
      [2, 1, 0, 1],
      [0, 1, 3, 1],
      [0, 0],
    ]) {
      const bad = JSON.stringify({ lengths: [2, 2, 2], terms: { a: list } });
      expect(parsePostings(bad, 3)).toMatch(/term "a": postings out of order or out of range/);
    }
  });
});
