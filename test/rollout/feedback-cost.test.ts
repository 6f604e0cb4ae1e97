/**
 * A controller tick costs requests in proportion to what is new, not to the fleet's feedback
 * history: with a long history per site, the first tick reads it all, and a later tick lists each
 * site's prefix once after the last key seen (ListObjectsV2 StartAfter; on fs the same filter
 * before any stat) and GETs only the new reports. Counted with a Store wrapper that records every
 * request by key and the keys each list returned: S3 answers 1,000 keys per list request, so the
 * keys listed are what a full listing of a week of reports (2,016 per site) pays for in pages.
 * (s3rver cannot page on Node 22: its continuation tokens use DES, which OpenSSL 3 lacks.)
 */
import { expect, it } from 'vitest';
import { feedbackPrefix } from '../../src/registry/layout.js';
import type { ListOptions, Store } from '../../src/registry/store.js';
import { startOps } from '../../src/rollout/actions.js';
import { appendEntry } from '../../src/rollout/append.js';
import { tick, type ControllerDeps } from '../../src/rollout/controller.js';
import { FeedbackCache } from '../../src/rollout/evidence.js';
import { judgeStep } from '../../src/rollout/judge/index.js';
import { normalizeSpec } from '../../src/rollout/spec.js';
import { forEachBackend } from '../helpers/stores.js';
import { REFS, rolloutWorld } from './world.js';

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

forEachBackend((mk) => {
  it('a tick after N new reports costs O(N + sites) requests, not O(history)', async () => {
    const inner = await mk();
    const w = await rolloutWorld(inner, { sites: 4 });
    for (let i = 0; i < HISTORY; i++) await w.feedbackAll(w.sites, () => ({}));
    const spec = normalizeSpec({}, { steps: '50,100', interval: '10ms', candidate: REFS.good });
    const candidate = { ref: REFS.good, manifestDigest: w.digests[REFS.good] as string };
    await appendEntry(w.writer(), (fleet) => ({
      ops: startOps(fleet.state, { id: 'cost', spec, candidate, by: 'test' }).ops,
    }));
    const store = counting(inner);
    const deps: ControllerDeps = {
      ...w.writer(),
      store,
      judge: judgeStep,
      by: 'controller:test',
      cache: new FeedbackCache(),
    };
    const feedbackOf = (from: number) => {
      const reqs = store.log.slice(from).filter((r) => r.key.startsWith('feedback/'));
      return {
        lists: reqs.filter((r) => r.op === 'list').length,
        listed: reqs.reduce((n, r) => n + (r.listed ?? 0), 0),
        gets: reqs.filter((r) => r.op === 'get').length,
      };
    };

    await tick(deps, 'cost'); // cold: reads the whole history once
    expect(feedbackOf(0).gets).toBe(HISTORY * 4);

    // Two sites report once more: the next tick lists each site once and fetches the two reports.
    await w.feedback('store-001');
    await w.feedback('store-002');
    let from = store.log.length;
    await tick(deps, 'cost');
    expect(feedbackOf(from)).toEqual({ lists: 4, listed: 2, gets: 2 });

    // Nothing new: one list per site, nothing listed or fetched.
    from = store.log.length;
    await tick(deps, 'cost');
    expect(feedbackOf(from)).toEqual({ lists: 4, listed: 0, gets: 0 });

    // The full-listing baseline in the same registry: every key of the history, page after page.
    from = store.log.length;
    for (const s of w.sites) await store.list(feedbackPrefix(s));
    expect(feedbackOf(from).listed).toBe(HISTORY * 4 + 2);
  }, 120_000);
});
