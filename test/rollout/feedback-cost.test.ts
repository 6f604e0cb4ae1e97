/**
 * A controller tick costs requests in proportion to what is new, not to the number of sites or the
 * length of their feedback history: after the cold read, a tick is ONE listing of the fleet-wide
 * feedback index plus one GET per new report (src/feedback/feed.ts). Counted with a Store wrapper
 * that records every request by key and the keys each list returned. Also: a site whose clock is
 * hours late is still read on the next tick (index times are the registry's), a report written
 * without a marker (an older uploader) is read by the gap or quiet-site fallback, and a forged
 * far-future marker does not blind the reader. On fs, s3rver and Ceph RGW.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { encodeEnvelope } from '../../src/registry/envelope.js';
import { feedbackIndexKey, feedbackKey, feedbackPrefix } from '../../src/registry/layout.js';
import type { ListOptions, Store } from '../../src/registry/store.js';
import { startOps } from '../../src/rollout/actions.js';
import { appendEntry } from '../../src/rollout/append.js';
import { tick, type ControllerDeps } from '../../src/rollout/controller.js';
import { FeedbackCache } from '../../src/rollout/evidence.js';
import { judgeStep } from '../../src/rollout/judge/index.js';
import { normalizeSpec } from '../../src/rollout/spec.js';
import { FeedbackFeed } from '../../src/feedback/feed.js';
import { signReport, type FeedbackReport } from '../../src/feedback/report.js';
import { FeedbackSpool } from '../../src/feedback/spool.js';
import { putReport } from '../../src/feedback/timeline.js';
import { forEachBackend } from '../helpers/stores.js';
import { REFS, rolloutWorld, type RolloutWorld } from './world.js';

interface Request {
  op: 'get' | 'head' | 'list' | 'put';
  key: string;
  /** For a list: the keys it returned. */
  listed?: number;
}

/** Delegates to a real store and records each call. */
function counting(inner: Store): Store & { log: Request[] } {
  const log: Request[] = [];
  return {
    log,
    get url() {
      return inner.url;
    },
    get enforcesConditionalWrites() {
      return inner.enforcesConditionalWrites;
    },
    get stats() {
      return inner.stats;
    },
    get limits() {
      return inner.limits;
    },
    resetStats: () => inner.resetStats(),
    get: (key, o) => (log.push({ op: 'get', key }), inner.get(key, o)),
    getIfChanged: (key, etag, o) => (log.push({ op: 'get', key }), inner.getIfChanged(key, etag, o)),
    getRange: (key, s, e, o) => (log.push({ op: 'get', key }), inner.getRange(key, s, e, o)),
    head: (key) => (log.push({ op: 'head', key }), inner.head(key)),
    async list(prefix: string, opts?: ListOptions) {
      const out = await inner.list(prefix, opts);
      log.push({ op: 'list', key: prefix, listed: out.length });
      return out;
    },
    putIfAbsent: (key, body) => (log.push({ op: 'put', key }), inner.putIfAbsent(key, body)),
    compareAndSwap: (key, body, etag) => (
      log.push({ op: 'put', key }),
      inner.compareAndSwap(key, body, etag)
    ),
    delete: (key) => inner.delete(key),
    close: () => inner.close(),
  };
}

const HISTORY = 25;
const HOUR = 3_600_000;
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** Feedback requests (report and index keys) in `log` from `from` on. */
function feedbackOf(log: readonly Request[], from: number) {
  const reqs = log.slice(from).filter((r) => r.key.startsWith('feedback'));
  return {
    indexLists: reqs.filter((r) => r.op === 'list' && r.key.startsWith('feedback-index/')).length,
    siteLists: reqs.filter((r) => r.op === 'list' && r.key.startsWith('feedback/')).length,
    listed: reqs.reduce((n, r) => n + (r.listed ?? 0), 0),
    gets: reqs.filter((r) => r.op === 'get').length,
  };
}

async function startRollout(w: RolloutWorld, id: string): Promise<void> {
  const spec = normalizeSpec({}, { steps: '50,100', interval: '10ms', candidate: REFS.good });
  const candidate = { ref: REFS.good, manifestDigest: w.digests[REFS.good] as string };
  await appendEntry(w.writer(), (fleet) => ({
    ops: startOps(fleet.state, { id, spec, candidate, by: 'test' }).ops,
  }));
}

/** A report of `site` signed by its key, as an older edgectl would upload it: no index marker. */
async function withoutMarker(w: RolloutWorld, report: FeedbackReport, seq: number): Promise<void> {
  const env = signReport({ ...report, seq }, w.keys.get(report.site)!);
  await w.store.putIfAbsent(feedbackKey(report.site, seq), encodeEnvelope(env));
}

forEachBackend(
  (mk) => {
    it('a tick after N new reports costs one index listing and N GETs, not O(sites + history)', async () => {
      const inner = await mk();
      const w = await rolloutWorld(inner, { sites: 4 });
      const old = { start: new Date(Date.now() - 2 * HOUR), end: new Date(Date.now() - HOUR) };
      for (let i = 0; i < HISTORY; i++) await w.feedbackAll(w.sites, () => old);
      await startRollout(w, 'cost');
      const store = counting(inner);
      const cache = new FeedbackCache();
      const deps: ControllerDeps = { ...w.writer(), store, judge: judgeStep, by: 'controller:test', cache };

      // Cold: one listing per site and its newest report (older than the step: nothing more).
      await tick(deps, 'cost');
      expect(feedbackOf(store.log, 0)).toMatchObject({ indexLists: 0, siteLists: 4, gets: 4 });

      // Two sites report once more: one index listing, the two reports, no per-site listing.
      await w.feedback('store-001');
      await w.feedback('store-002');
      let from = store.log.length;
      await tick(deps, 'cost');
      expect(feedbackOf(store.log, from)).toMatchObject({ indexLists: 1, siteLists: 0, gets: 2 });
      expect(cache.reports('store-001').map((r) => r.seq)).toEqual([HISTORY + 1]);

      // Nothing new: one index listing (markers in the lookback are skipped), nothing fetched.
      from = store.log.length;
      await tick(deps, 'cost');
      expect(feedbackOf(store.log, from)).toMatchObject({ indexLists: 1, siteLists: 0, gets: 0 });

      // The full-listing baseline in the same registry: every key of the history, page after page.
      from = store.log.length;
      for (const s of w.sites) await store.list(feedbackPrefix(s));
      expect(feedbackOf(store.log, from).listed).toBe(HISTORY * 4 + 2);
    }, 120_000);

    it('a site whose clock is two hours late is read on the next tick', async () => {
      const store = await mk();
      const w = await rolloutWorld(store, { sites: 2 });
      const { state } = await w.state();
      const feed = new FeedbackFeed({ lookbackMs: 60_000 });
      const since = new Date(Date.now() - 24 * HOUR);
      await w.feedback('store-001');
      await feed.refresh(store, state, w.sites, since);
      expect(feed.reports('store-001')).toHaveLength(1);

      // store-002's daemon: its clock (and so its window and its upload time) two hours behind.
      const late = () => Date.now() - 2 * HOUR;
      const dir = mkdtempSync(join(tmpdir(), 'edgectl-late-'));
      dirs.push(dir);
      const spool = await FeedbackSpool.open({
        dir,
        site: 'store-002',
        key: w.keys.get('store-002')!,
        store,
        now: late,
      });
      const template = await w.feedback('store-001');
      const { version: _v, site: _s, seq: _q, ...window } = template;
      await spool.enqueue({
        ...window,
        windowStart: new Date(late() - 300_000).toISOString(),
        windowEnd: new Date(late()).toISOString(),
      });
      expect((await spool.upload()).uploaded).toEqual([1]);

      await feed.refresh(store, state, w.sites, since);
      expect(feed.stats).toMatchObject({ indexLists: 1, siteLists: { cold: 0, gap: 0, quiet: 0 }, gets: 2 });
      expect(feed.reports('store-002').map((r) => r.seq)).toEqual([1]);
      expect(feed.reports('store-001').map((r) => r.seq)).toEqual([1, 2]);
    }, 120_000);

    it('reports without a marker are read through the gap and quiet-site fallbacks', async () => {
      const store = await mk();
      const w = await rolloutWorld(store, { sites: 2 });
      const { state } = await w.state();
      let now = Date.now();
      const feed = new FeedbackFeed({ reconcileMs: 600_000, now: () => now });
      const since = new Date(Date.now() - HOUR);
      const first = await w.feedback('store-001');
      await w.feedback('store-002');
      await feed.refresh(store, state, w.sites, since); // cold
      // store-001: seq 2 without a marker, then seq 3 with one: the gap is listed in the same tick.
      await withoutMarker(w, first, 2);
      const third = signReport({ ...first, seq: 3 }, w.keys.get('store-001')!);
      await putReport(store, 'store-001', 3, encodeEnvelope(third));
      await feed.refresh(store, state, w.sites, since);
      expect(feed.stats.siteLists).toEqual({ cold: 0, gap: 1, quiet: 0 });
      expect(feed.reports('store-001').map((r) => r.seq)).toEqual([1, 2, 3]);
      // store-002: a marker-less report is read once the site has been quiet for reconcileMs.
      await withoutMarker(w, { ...first, site: 'store-002' }, 2);
      await feed.refresh(store, state, w.sites, since);
      expect(feed.reports('store-002').map((r) => r.seq)).toEqual([1]);
      now += 600_000;
      await feed.refresh(store, state, w.sites, since);
      expect(feed.stats.siteLists.quiet).toBe(2);
      expect(feed.reports('store-002').map((r) => r.seq)).toEqual([1, 2]);
    }, 120_000);

    it('a forged far-future marker does not move the cursor past new reports', async () => {
      const store = await mk();
      const w = await rolloutWorld(store, { sites: 2 });
      const { state } = await w.state();
      const feed = new FeedbackFeed({ lookbackMs: 1_000 });
      const since = new Date(Date.now() - HOUR);
      await w.feedback('store-001');
      await feed.refresh(store, state, w.sites, since);
      await store.putIfAbsent(
        feedbackIndexKey(new Date('2999-01-01T00:00:00Z'), 'store-002', 7),
        Buffer.alloc(0),
      );
      await feed.refresh(store, state, w.sites, since);
      await new Promise((r) => setTimeout(r, 2_500)); // past the lookback
      await w.feedback('store-002');
      await feed.refresh(store, state, w.sites, since);
      expect(feed.reports('store-002').map((r) => r.seq)).toEqual([1]);
      expect(feed.stats.siteLists).toEqual({ cold: 0, gap: 0, quiet: 0 });
    }, 120_000);
  },
  ['fs', 's3', 'rgw'],
);
