/**
 * The rollout controller's incremental feedback reader: what each tick costs is proportional to the
 * reports uploaded since the last tick, not to the number of sites or the length of their history.
 *
 * - First read of a site (cold): one listing of its `feedback/<site>/` prefix, then its reports
 *   newest first in growing batches (1, 2, 4, then 8), stopping at the first batch that ended
 *   entirely before `since`, so a site with a week of history costs its listing pages and the GETs
 *   of the current window (one GET when its newest report is already older).
 * - Every later tick: ONE listing of the fleet-wide index (`feedback-index/`, timeline.ts) after the
 *   cursor minus a lookback, then one GET per new report of a selected site. The cursor is registry
 *   time (each marker's time is its report's modification time, and a marker never moves the cursor
 *   past its own modification time, so a forged far-future marker cannot blind the reader); the
 *   lookback (default 5 min) covers the delay between a report and its marker. Markers already
 *   seen in the lookback are skipped by (site, seq).
 * - Fallbacks, one per-site listing each: a gap (a marker for seq n+2 when n+1 was never seen: a
 *   report whose marker was lost, or written too late for the lookback) and a quiet site (nothing
 *   new through the index for `reconcileMs`, default 10 min: an uploader that writes no markers,
 *   such as an older edgectl). So a report is never missed, at worst read one reconcile later.
 * Verification is read.ts's: only reports signed by the site's declared key count; others are
 * listed in `rejected`.
 */
import { mapConcurrent } from '../artifact/concurrency.js';
import type { FleetState } from '../fleet/state.js';
import {
  FEEDBACK_INDEX_PREFIX,
  HEAD_KEY,
  feedbackIndexFrom,
  feedbackPrefix,
  parseFeedbackIndexKey,
  parseSeqKey,
} from '../registry/layout.js';
import type { Store } from '../registry/store.js';
import { readFeedback, readReport } from './read.js';
import { declaredSiteKeys, type DeclaredSiteKeys, type FeedbackReport } from './report.js';

export interface FeedOptions {
  /** How far before the cursor each index listing starts (ms, default 5 min). */
  lookbackMs?: number;
  /** A site with nothing new through the index for this long gets a per-site listing (default 10 min). */
  reconcileMs?: number;
  /** The reader's clock for `reconcileMs` (ms since the epoch; Date.now by default). */
  now?: () => number;
}

/** What the last `refresh` did (benchmarks and tests read it). */
export interface FeedStats {
  /** Index listings (0 on a cold pass). */
  indexLists: number;
  /** Index keys listed. */
  indexKeys: number;
  /** Per-site listings, by reason. */
  siteLists: { cold: number; gap: number; quiet: number };
  /** Reports fetched (GET). */
  gets: number;
}

interface SiteFeed {
  /** Every seq up to this one has been read or listed (a seq never seen below it is a gap that stays). */
  floor: number;
  /** Seqs above `floor` already read through the index. */
  seen: Set<number>;
  reports: FeedbackReport[];
  /** Reader time of the last per-site listing or new report through the index. */
  freshAt: number;
}

const BATCH = 8;

function emptyStats(): FeedStats {
  return { indexLists: 0, indexKeys: 0, siteLists: { cold: 0, gap: 0, quiet: 0 }, gets: 0 };
}

export class FeedbackFeed {
  private readonly sites = new Map<string, SiteFeed>();
  /** Registry time (ms) up to which the index has been read; undefined before the first pass. */
  private cursor: number | undefined;
  private readonly lookbackMs: number;
  private readonly reconcileMs: number;
  private readonly now: () => number;
  rejected: { key: string; reason: string }[] = [];
  stats: FeedStats = emptyStats();

  constructor(opts: FeedOptions = {}) {
    this.lookbackMs = opts.lookbackMs ?? 300_000;
    this.reconcileMs = opts.reconcileMs ?? 600_000;
    this.now = opts.now ?? Date.now;
  }

  /** Reads new reports of `sites`, keeping those whose window ends at or after `since`. */
  async refresh(
    store: Store,
    state: FleetState,
    sites: readonly string[],
    since: Date,
    concurrency = 8,
  ): Promise<void> {
    this.stats = emptyStats();
    const declared = declaredSiteKeys(state);
    const selected = sites.filter((s) => Object.hasOwn(declared, s));
    const indexed = this.cursor === undefined ? new Map<string, number[]>() : await this.listIndex(store);
    await mapConcurrent(selected, concurrency, async (site) => {
      const cur = this.sites.get(site);
      if (!cur) return this.cold(store, site, declared, since);
      const fresh = [...new Set(indexed.get(site) ?? [])]
        .filter((s) => s > cur.floor && !cur.seen.has(s))
        .sort((a, b) => a - b);
      if (fresh.length > 0 && hasGap(cur, fresh)) {
        await this.sweep(store, site, declared, cur, 'gap');
        // A marker whose report the listing did not hold (gone, or forged) is not chased again.
        for (const seq of fresh) if (seq > cur.floor) cur.seen.add(seq);
        return;
      }
      if (fresh.length === 0 && this.now() - cur.freshAt >= this.reconcileMs) {
        return this.sweep(store, site, declared, cur, 'quiet');
      }
      if (fresh.length > 0) cur.freshAt = this.now();
      for (const seq of fresh) cur.seen.add(seq);
      while (cur.seen.delete(cur.floor + 1)) cur.floor++;
      await mapConcurrent(fresh, BATCH, async (seq) => {
        this.stats.gets++;
        const read = await readReport(store, site, seq, declared);
        if (read.rejected) this.rejected.push(read.rejected);
        if (read.report) cur.reports.push(read.report);
      });
    });
    // Nothing listed a registry time (no reports anywhere yet): start from the fleet head's, which
    // the rollout's own entries moved, so the next pass lists only markers written since.
    if (this.cursor === undefined) this.cursor = (await store.head(HEAD_KEY))?.modified?.getTime() ?? 0;
    const t = since.getTime();
    for (const site of selected) {
      const cur = this.sites.get(site);
      if (cur)
        cur.reports = cur.reports.filter((r) => Date.parse(r.windowEnd) >= t).sort((a, b) => a.seq - b.seq);
    }
  }

  reports(site: string): readonly FeedbackReport[] {
    return this.sites.get(site)?.reports ?? [];
  }

  /** One listing of the index after the cursor (minus the lookback): new seqs per site. */
  private async listIndex(store: Store): Promise<Map<string, number[]>> {
    const from = Math.max(0, (this.cursor ?? 0) - this.lookbackMs);
    const listed = await store.list(FEEDBACK_INDEX_PREFIX, { startAfter: feedbackIndexFrom(new Date(from)) });
    this.stats.indexLists++;
    this.stats.indexKeys += listed.length;
    const out = new Map<string, number[]>();
    for (const o of listed) {
      const m = parseFeedbackIndexKey(o.key);
      if (!m) continue;
      const at = Math.min(m.time.getTime(), o.modified?.getTime() ?? m.time.getTime());
      this.cursor = Math.max(this.cursor ?? 0, at);
      const seqs = out.get(m.site);
      if (seqs) seqs.push(m.seq);
      else out.set(m.site, [m.seq]);
    }
    return out;
  }

  /** First read of a site: its listing, then reports newest first until a batch ends before `since`. */
  private async cold(store: Store, site: string, declared: DeclaredSiteKeys, since: Date): Promise<void> {
    const prefix = feedbackPrefix(site);
    const listed = await store.list(prefix);
    this.stats.siteLists.cold++;
    const cur: SiteFeed = { floor: 0, seen: new Set(), reports: [], freshAt: this.now() };
    this.sites.set(site, cur);
    const seqs: number[] = [];
    for (const o of listed) {
      const seq = parseSeqKey(o.key, prefix);
      if (seq === undefined) continue;
      seqs.push(seq);
      cur.floor = Math.max(cur.floor, seq);
      if (o.modified) this.cursor = Math.max(this.cursor ?? 0, o.modified.getTime());
    }
    seqs.sort((a, b) => b - a);
    for (let i = 0, size = 1; i < seqs.length; i += size, size = Math.min(BATCH, size * 2)) {
      const batch = seqs.slice(i, i + size);
      this.stats.gets += batch.length;
      const read = await Promise.all(batch.map((seq) => readReport(store, site, seq, declared)));
      const valid: FeedbackReport[] = [];
      for (const r of read) {
        if (r.rejected) this.rejected.push(r.rejected);
        if (r.report) valid.push(r.report);
      }
      cur.reports.push(...valid);
      if (valid.length > 0 && valid.every((r) => Date.parse(r.windowEnd) < since.getTime())) break;
    }
  }

  /** The per-site fallback: everything above the highest seq seen, in one listing. */
  private async sweep(
    store: Store,
    site: string,
    declared: DeclaredSiteKeys,
    cur: SiteFeed,
    why: 'gap' | 'quiet',
  ): Promise<void> {
    this.stats.siteLists[why]++;
    cur.freshAt = this.now();
    // Reads every report above the floor, including ones already read through the index (few:
    // a sweep follows a gap or a quiet spell), which are dropped here rather than fetched around.
    const read = await readFeedback(store, site, declared, { afterSeq: cur.floor });
    this.rejected.push(...read.rejected.filter((r) => !cur.seen.has(seqOfKey(r.key, site))));
    for (const r of read.reports) if (!cur.seen.has(r.seq)) cur.reports.push(r);
    this.stats.gets += read.reports.length + read.rejected.length;
    cur.floor = Math.max(cur.floor, read.lastSeq);
    for (const s of cur.seen) if (s <= cur.floor) cur.seen.delete(s);
  }
}

/** True when a seq between the highest seen and the newest indexed one was never seen. */
function hasGap(cur: SiteFeed, fresh: readonly number[]): boolean {
  const top = fresh.at(-1) ?? 0;
  const indexed = new Set(fresh);
  for (let s = cur.floor + 1; s < top; s++) if (!indexed.has(s) && !cur.seen.has(s)) return true;
  return false;
}

function seqOfKey(key: string, site: string): number {
  return parseSeqKey(key, feedbackPrefix(site)) ?? -1;
}
