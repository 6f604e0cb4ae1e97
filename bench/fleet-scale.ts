/**
 * Fleet scale benchmark (`npm run bench:fleet-scale`): what a large fleet costs the registry,
 * printed as one JSON object.
 *
 * - Steady state: every site's sync loop, simulated as the agent's own head poll (`pollHead`, a
 *   conditional GET) for each of N sites in one process; requests and body bytes per interval
 *   (goal: N requests, 0 bytes).
 * - One rollout controller tick after K sites reported, with H reports of history per site: the
 *   incremental tick (`tick`, which lists each site's feedback after the last key it saw) against
 *   the full-listing baseline measured in the same run (each site's whole `feedback/<site>/` listed,
 *   as before), in requests, keys listed and wall time. S3 returns 1,000 keys per list request, so
 *   a week of 5-minute reports (2,016 per site) costs the baseline 3 requests per site per tick.
 *
 * Store: FLEET_SCALE_REGISTRY = `fs` (default, a temp directory), `s3rver` (started in-process), or
 * an `s3://bucket/prefix` URL (AWS settings from the environment; e.g. a Ceph RGW endpoint in
 * AWS_ENDPOINT_URL_S3). Size: FLEET_SCALE_SITES (default 1000), FLEET_SCALE_HISTORY (reports per
 * site, default 24), FLEET_SCALE_REPORTED (sites that report before the measured tick, default 10%).
 */
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { mapConcurrent } from '../src/artifact/concurrency.js';
import { pollHead } from '../src/site/fleet-sync.js';
import { encodeEnvelope } from '../src/registry/envelope.js';
import { FsStore } from '../src/registry/fs-store.js';
import { feedbackKey, feedbackPrefix } from '../src/registry/layout.js';
import { openStore } from '../src/registry/open-store.js';
import type { Store } from '../src/registry/store.js';
import { startOps } from '../src/rollout/actions.js';
import { appendEntry, readLatest } from '../src/rollout/append.js';
import { tick } from '../src/rollout/controller.js';
import { FeedbackCache } from '../src/rollout/evidence.js';
import { judgeStep } from '../src/rollout/judge/index.js';
import { normalizeSpec } from '../src/rollout/spec.js';
import {
  FEEDBACK_REPORT_VERSION,
  emptyCounters,
  emptyHistogram,
  signReport,
  type FeedbackReport,
} from '../src/site/feedback/report.js';
import { startS3 } from '../test/helpers/s3.js';
import { REFS, rolloutWorld, type RolloutWorld } from '../test/rollout/world.js';
import { tempDir } from '../test/site/fixtures.js';

const env = process.env;
const SITES = Number(env.FLEET_SCALE_SITES ?? 1000);
const HISTORY = Number(env.FLEET_SCALE_HISTORY ?? 24);
const REPORTED = Number(env.FLEET_SCALE_REPORTED ?? Math.max(1, Math.round(SITES / 10)));
const ms = (t0: number) => Math.round(performance.now() - t0);

async function openBenchStore(): Promise<{ store: Store; kind: string; stop: () => Promise<void> }> {
  const where = env.FLEET_SCALE_REGISTRY ?? 'fs';
  if (where === 'fs') {
    const store = new FsStore(join(tempDir('edgectl-bench-scale-'), 'registry'));
    return { store, kind: 'fs', stop: () => store.close() };
  }
  if (where === 's3rver') {
    const s3 = await startS3();
    const store = await openStore(`${s3.url}-${process.pid}`, { s3: { env: s3.env } });
    return { store, kind: 's3rver', stop: async () => (await store.close(), await s3.stop()) };
  }
  const store = await openStore(where);
  return { store, kind: where, stop: () => store.close() };
}

/** Writes report number `seq` of each site in `sites` (signed by the site key, refs from the state). */
async function writeReports(w: RolloutWorld, sites: readonly string[], seq: number, fleetSeq: number) {
  const { state } = await w.state();
  await mapConcurrent(sites, 32, async (site) => {
    const a = state.sites[site]?.assignments;
    const counters = emptyCounters();
    counters.requests.speculative = 100;
    counters.draftTokens = 3000;
    counters.acceptedTokens = 2100;
    const now = Date.now();
    const report: FeedbackReport = {
      version: FEEDBACK_REPORT_VERSION,
      site,
      seq,
      fleetSeq,
      windowStart: new Date(now - 300_000).toISOString(),
      windowEnd: new Date(now).toISOString(),
      refs: {
        ...(a?.model ? { model: a.model } : {}),
        adapters: a?.adapters ?? [],
        ...(a?.policy ? { policy: a.policy } : {}),
      },
      counters,
      latency: { ttftMs: emptyHistogram(), e2eMs: emptyHistogram() },
    };
    const key = w.keys.get(site);
    if (!key) throw new Error(`no key for ${site}`);
    const signed = signReport(report, key);
    await w.store.putIfAbsent(feedbackKey(site, seq), encodeEnvelope(signed));
  });
}

/** Counts the keys every list returns (what a listing pays for: S3 answers 1,000 per request). */
function countListedKeys(store: Store): { keys: number } {
  const counter = { keys: 0 };
  const list = store.list.bind(store);
  store.list = async (prefix, opts) => {
    const out = await list(prefix, opts);
    counter.keys += out.length;
    return out;
  };
  return counter;
}

async function main(): Promise<void> {
  const { store, kind, stop } = await openBenchStore();
  const listedKeys = countListedKeys(store);
  try {
    let t0 = performance.now();
    const w = await rolloutWorld(store, { sites: SITES });
    const fleetSeq = (await readLatest(store, w.t.trust, new Date())).applied.seq;
    for (let i = 1; i <= HISTORY; i++) await writeReports(w, w.sites, i, fleetSeq);
    const setupMs = ms(t0);

    // Steady state: one sync interval of every site's head poll, after each has its etag.
    const first = await mapConcurrent(w.sites, 64, () => pollHead(store, undefined));
    const etags = first.map((p) => (p.kind === 'missing' ? undefined : p.etag));
    store.resetStats();
    t0 = performance.now();
    const polls = await mapConcurrent(w.sites, 64, (_s, i) => pollHead(store, etags[i]));
    const steady = {
      requests: store.stats.requests,
      bodyBytes: store.stats.bytesRead,
      unchanged: polls.filter((p) => p.kind === 'unchanged').length,
      wallMs: ms(t0),
    };

    const spec = normalizeSpec({}, { steps: '10,100', interval: '1s', candidate: REFS.good });
    const candidate = { ref: REFS.good, manifestDigest: w.digests[REFS.good] as string };
    await appendEntry(w.writer(), (fleet) => ({
      ops: startOps(fleet.state, { id: 'scale', spec, candidate, by: 'bench' }).ops,
    }));
    const deps = { ...w.writer(), judge: judgeStep, by: 'controller:bench', cache: new FeedbackCache() };
    store.resetStats();
    t0 = performance.now();
    await tick(deps, 'scale');
    const cold = { requests: store.stats.requests, wallMs: ms(t0) };

    const reported = w.sites.slice(0, REPORTED);
    await writeReports(w, reported, HISTORY + 1, fleetSeq + 1);
    store.resetStats();
    listedKeys.keys = 0;
    t0 = performance.now();
    await tick(deps, 'scale');
    const incremental = {
      requests: store.stats.requests,
      lists: store.stats.lists,
      keysListed: listedKeys.keys,
      wallMs: ms(t0),
    };

    // Baseline: the full listing the controller did before, for the same sites, plus the same GETs.
    store.resetStats();
    t0 = performance.now();
    const listed = await mapConcurrent(w.sites, 8, async (s) => (await store.list(feedbackPrefix(s))).length);
    await mapConcurrent(reported, 8, (s) => store.get(feedbackKey(s, HISTORY + 1)));
    const baseline = {
      requests: store.stats.requests,
      lists: store.stats.lists,
      keysListed: listed.reduce((a, b) => a + b, 0),
      requestsAtS3PageSize: w.sites.length * Math.ceil((HISTORY + 1) / 1000) + reported.length,
      wallMs: ms(t0),
    };
    const result = {
      bench: 'fleet-scale',
      store: kind,
      sites: SITES,
      historyPerSite: HISTORY,
      reportedBeforeTick: REPORTED,
      machine: { cpus: cpus().length, load1: Math.round((loadavg()[0] ?? 0) * 100) / 100 },
      setupMs,
      steadyState: { ...steady, requestsPerSite: steady.requests / SITES },
      controllerTick: {
        cold,
        incremental: { ...incremental, requestsPerReportingSite: incremental.requests / REPORTED },
        fullListingBaseline: baseline,
      },
    };
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  } finally {
    await stop();
  }
}

await main();
