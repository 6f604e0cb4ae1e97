/**
 * `openIndex`: an index directory loaded for queries. Opening verifies every file against the
 * manifest (size and SHA-256; a corrupted or truncated segment is refused with exit 4 naming the
 * file), loads the segments, masks tombstoned passages and opens the embedder, refusing one whose
 * dimension or digest differs from the index's (exit 2). `query` runs BM25 (bm25-search.ts: exact top-k, pruned for long posting lists) and dense search
 * (dense.ts: IVF in large segments probing `defaultNprobe` lists, exact in small ones, or exact everywhere with `exact`), and
 * `hybrid` fuses the two lists by reciprocal rank fusion (RRF, k = 60; each list cut at
 * max(50, 5k)). A query longer than the encoder's context is truncated for the dense side, with
 * `truncated: true` in the result and a warning; BM25 always sees the whole text.
 */
import { join } from 'node:path';
import type { IoHost } from '../foundation/io-host.js';
import { UserError } from '../foundation/errors.js';
import { bm25Scratch, bm25Stats, type Bm25Scratch, type Bm25Stats } from './bm25.js';
import { impactOrder, LONG_SHARE, searchBm25, type ImpactSegment } from './bm25-search.js';
import { checkEmbedder } from './build.js';
import { scanExact, scanIvf } from './dense.js';
import { Embedder } from './embedder.js';
import { MANIFEST_FILE, readIndexManifest, type IndexManifest } from './manifest.js';
import { loadSegment, type LoadedSegment } from './segment.js';
import { readTombstones } from './tombstones.js';
import { TopK } from './topk.js';

export type QueryMode = 'hybrid' | 'bm25' | 'dense';
export const RRF_K = 60;

/**
 * IVF lists probed by default: a twentieth, at least 8. On the 100k-passage benchmark (316 lists)
 * that is 16 lists, recall@10 0.99 against exact search (a tenth: 0.998 at twice the dense cost).
 */
export const defaultNprobe = (nlist: number): number => Math.max(8, Math.ceil(nlist / 20));

export interface QueryOptions {
  k: number;
  mode?: QueryMode;
  /** IVF lists probed per large segment (default: defaultNprobe, a twentieth of them, at least 8). */
  nprobe?: number;
  /**
   * Exact dense search (no IVF) and exhaustive BM25 (no pruning; same ranking, bm25-search.ts): the
   * reference the benchmark compares against.
   */
  exact?: boolean;
}

export interface QueryPassage {
  id: string;
  docId: string;
  text: string;
  /** hybrid: RRF score; bm25: BM25 score; dense: cosine similarity. */
  score: number;
  /** 1-based rank in the BM25 list (absent: not in it). */
  bm25Rank?: number;
  /** 1-based rank in the dense list (absent: not in it). */
  denseRank?: number;
  metadata?: Record<string, unknown>;
}

export interface QueryResult {
  passages: QueryPassage[];
  ms: number;
  truncated?: boolean;
}

export interface IndexReader {
  readonly dir: string;
  readonly manifest: IndexManifest;
  query(text: string, opts: QueryOptions): Promise<QueryResult>;
  /** The query vector alone (benchmarks, tests). */
  embedQuery(text: string): Promise<{ vector: Float32Array; truncated: boolean }>;
  /** Dense top-k for a vector (global positions are internal: passage ids are returned). */
  denseSearch(q: Float32Array, k: number, opts?: { exact?: boolean; nprobe?: number }): string[];
  close(): Promise<void>;
}

interface Placed {
  seg: LoadedSegment;
  base: number;
}

class Reader implements IndexReader {
  private readonly scratch: Bm25Scratch;
  private readonly stats: Bm25Stats;
  private readonly bm25Segs: ImpactSegment[];

  constructor(
    readonly dir: string,
    readonly manifest: IndexManifest,
    private readonly placed: Placed[],
    private readonly live: Uint8Array,
    private readonly embedder: Embedder,
    private readonly io: Pick<IoHost, 'log'> | undefined,
  ) {
    this.scratch = bm25Scratch(live.length);
    const segs = placed.map((p) => ({ base: p.base, postings: p.seg.postings }));
    this.stats = bm25Stats(segs, live);
    const longDf = this.stats.liveCount * LONG_SHARE;
    this.bm25Segs = segs.map((s) => ({
      ...s,
      impacts: impactOrder(s.postings, (t) => (this.stats.df.get(t) ?? 0) >= longDf),
    }));
  }

  private at(pos: number): { seg: LoadedSegment; i: number } {
    let lo = 0;
    let hi = this.placed.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((this.placed[mid]?.base ?? 0) <= pos) lo = mid;
      else hi = mid - 1;
    }
    const p = this.placed[lo];
    if (!p) throw new RangeError(`passage position ${pos} out of range`);
    return { seg: p.seg, i: pos - p.base };
  }

  async embedQuery(text: string): Promise<{ vector: Float32Array; truncated: boolean }> {
    const r = await this.embedder.embed([text]);
    const vector = r.vectors[0];
    if (!vector) throw new Error('the encoder returned no vector');
    return { vector, truncated: r.truncated.length > 0 };
  }

  private dense(q: Float32Array, k: number, exact: boolean, nprobe?: number): TopK {
    const top = new TopK(k);
    const dim = this.manifest.embedder.dim;
    for (const { seg, base } of this.placed) {
      if (seg.ivf && !exact) {
        const probe = nprobe ?? defaultNprobe(seg.ivf.nlist);
        scanIvf(q, seg.vectors, seg.ivf, dim, probe, base, this.live, top);
      } else scanExact(q, seg.vectors, seg.entry.passages, dim, base, this.live, top);
    }
    return top;
  }

  denseSearch(q: Float32Array, k: number, opts: { exact?: boolean; nprobe?: number } = {}): string[] {
    return this.dense(q, k, opts.exact ?? false, opts.nprobe).items.map((x) => this.passageAt(x.pos).id);
  }

  private passageAt(pos: number) {
    const { seg, i } = this.at(pos);
    const p = seg.passages[i];
    if (!p) throw new RangeError(`passage position ${pos} out of range`);
    return p;
  }

  async query(text: string, opts: QueryOptions): Promise<QueryResult> {
    const t0 = performance.now();
    const mode = opts.mode ?? 'hybrid';
    if (!Number.isInteger(opts.k) || opts.k < 1)
      throw new UserError(`k must be a positive integer (got ${opts.k})`, {
        code: 'E_INDEX_QUERY',
        details: { field: 'k' },
      });
    const depth = mode === 'hybrid' ? Math.max(50, opts.k * 5) : opts.k;
    const bm =
      mode === 'dense'
        ? undefined
        : searchBm25(text, this.bm25Segs, this.stats, depth, this.scratch, {
            ...(opts.exact ? { longShare: Infinity } : {}),
          });
    let dn: TopK | undefined;
    let truncated = false;
    if (mode !== 'bm25') {
      const q = await this.embedQuery(text);
      truncated = q.truncated;
      if (truncated)
        this.io?.log(
          'warn',
          `the query is longer than the encoder's context (${this.manifest.embedder.maxTokens} tokens): truncated for dense search`,
        );
      dn = this.dense(q.vector, depth, opts.exact ?? false, opts.nprobe);
    }
    const ranks = new Map<number, { score: number; bm25Rank?: number; denseRank?: number }>();
    bm?.items.forEach((x, r) =>
      ranks.set(x.pos, { score: mode === 'bm25' ? x.score : 1 / (RRF_K + r + 1), bm25Rank: r + 1 }),
    );
    dn?.items.forEach((x, r) => {
      const e = ranks.get(x.pos);
      const rrf = 1 / (RRF_K + r + 1);
      if (e) {
        e.score += rrf;
        e.denseRank = r + 1;
      } else ranks.set(x.pos, { score: mode === 'dense' ? x.score : rrf, denseRank: r + 1 });
    });
    const best = [...ranks.entries()].sort((a, b) => b[1].score - a[1].score || a[0] - b[0]).slice(0, opts.k);
    const passages = best.map(([pos, r]) => {
      const p = this.passageAt(pos);
      return {
        id: p.id,
        docId: p.docId,
        text: p.text,
        ...r,
        ...(p.metadata ? { metadata: p.metadata } : {}),
      };
    });
    return { passages, ms: performance.now() - t0, ...(truncated ? { truncated } : {}) };
  }

  async close(): Promise<void> {
    await this.embedder.close();
  }
}

export interface OpenOptions {
  embedderDir: string;
  io?: Pick<IoHost, 'log'>;
}

/** Opens the index at `dir` for queries (verifying every file; exit 4 on corruption). */
export async function openIndex(dir: string, opts: OpenOptions): Promise<IndexReader> {
  const manifest = readIndexManifest(dir);
  const tombstones = readTombstones(dir, manifest);
  const dim = manifest.embedder.dim;
  const placed: Placed[] = [];
  let base = 0;
  for (const entry of manifest.segments) {
    placed.push({ seg: loadSegment(dir, entry, dim), base });
    base += entry.passages;
  }
  const live = new Uint8Array(base);
  for (const { seg, base: b } of placed) {
    const gone = tombstones.get(seg.entry.name);
    for (const d of seg.docs) if (!gone?.has(d.id)) live.fill(1, b + d.first, b + d.first + d.count);
  }
  const embedder = await Embedder.open(opts.embedderDir);
  try {
    checkEmbedder(manifest.embedder, embedder.info, join(dir, MANIFEST_FILE));
  } catch (err) {
    await embedder.close();
    throw err;
  }
  return new Reader(dir, manifest, placed, live, embedder, opts.io);
}
