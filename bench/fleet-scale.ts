/**
 * Fleet scale benchmark (`npm run bench:fleet-scale`): what a 1,000-site fleet costs the registry,
 * on Ceph RGW, printed as one JSON object. Every request is counted by an HTTP proxy in front of
 * RGW (src/bench/counting-proxy.ts); the populating writes go around it.
 *
 * - Steady state: one sync interval of every site's loop (a conditional GET of the head each).
 * - An assignment change (one `assign` entry for every site) reaching all sites, whose loops poll
 *   every FLEET_SCALE_INTERVAL_MS (default 30 s) at evenly spread phases: p50/p95 delay after the
 *   apply, and the requests and bytes the sites moved.
 * - Controller ticks of a rollout over every site, with feedback history: cold, then after K sites
 *   reported (the feedback index: one listing + one GET per new report), then with nothing new;
 *   against, in the same run, the per-site incremental read (one listing per site) and the full
 *   listing of every site's history.
 * - Peer (fleet-scale-peer.ts): restic vs `edgectl publish artifact` of a 256 MiB file with 16
 *   small edits, into the same RGW.
 *
 * History: FLEET_SCALE_HISTORY reports for every site (default 3: 15 min at one per 5 min) and a
 * full week (2,016) for FLEET_SCALE_WEEK_SITES of them (default 1); a week for all 1,000 is 2M
 * reports (4M objects with markers), hours at the rate this machine populates RGW (the JSON says the
 * measured rate and what a week for all would take).
 * FLEET_SCALE_REGISTRY: `rgw` (default: scripts/rgw.sh start, stopped after) or `s3rver` (smoke;
 * s3rver cannot page lists on Node 22, so keep its history under 1,000 keys per site).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { mapConcurrent } from '../src/artifact/concurrency.js';
import {
  countsSince,
  startCountingProxy,
  type CountingProxy,
  type ProxyCounts,
} from '../src/bench/counting-proxy.js';
import { feedbackKey, feedbackPrefix } from '../src/registry/layout.js';
import { S3Store } from '../src/registry/s3-store.js';
import type { Store } from '../src/registry/store.js';
import { startOps } from '../src/rollout/actions.js';
import { appendEntry, readLatest } from '../src/rollout/append.js';
import { tick } from '../src/rollout/controller.js';
import { FeedbackCache } from '../src/rollout/evidence.js';
import { judgeStep } from '../src/rollout/judge/index.js';
import { normalizeSpec } from '../src/rollout/spec.js';
import { declaredSiteKeys, readFeedback, type FeedStats } from '../src/feedback/index.js';
import { startS3 } from '../test/helpers/s3.js';
import { REFS, rolloutWorld } from '../test/rollout/world.js';
import { findRestic, runPeer } from './fleet-scale-peer.js';
import {
  firstSync,
  percentile,
  propagate,
  reportNow,
  syncRound,
  writeHistory,
  type SimSite,
} from './fleet-scale-sites.js';

const env = process.env;
const SITES = Number(env.FLEET_SCALE_SITES ?? 1000);
const HISTORY = Number(env.FLEET_SCALE_HISTORY ?? 3);
const WEEK = 2016;
const WEEK_SITES = Number(env.FLEET_SCALE_WEEK_SITES ?? 1);
const REPORTED = Number(env.FLEET_SCALE_REPORTED ?? Math.max(1, Math.round(SITES / 10)));
const INTERVAL_MS = Number(env.FLEET_SCALE_INTERVAL_MS ?? 30_000);
const PEER_MIB = Number(env.FLEET_SCALE_PEER_MIB ?? 256);
const ROOT = resolve(import.meta.dirname, '..');
const ms = (t0: number) => Math.round(performance.now() - t0);
const log = (msg: string) => process.stderr.write(`[fleet-scale ${new Date().toISOString()}] ${msg}\n`);

interface Server {
  kind: string;
  env: Record<string, string>;
  stop: () => Promise<void>;
}

async function startServer(): Promise<Server> {
  if ((env.FLEET_SCALE_REGISTRY ?? 'rgw') === 's3rver') {
    const s3 = await startS3();
    return { kind: 's3rver', env: s3.env as Record<string, string>, stop: () => s3.stop() };
  }
  const dir = env.EDGECTL_RGW_DIR ?? join(tmpdir(), `edgectl-bench-rgw-${process.pid}`);
  const script = join(ROOT, 'scripts/rgw.sh');
  const rgwEnv = { ...process.env, EDGECTL_RGW_DIR: dir };
  const out = execFileSync('bash', [script, 'start'], { env: rgwEnv, encoding: 'utf8' });
  const vars: Record<string, string> = {};
  for (const line of out.split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line);
    if (m?.[1] && m[2] !== undefined) vars[m[1]] = m[2];
  }
  const stop = async () => void execFileSync('bash', [script, 'stop'], { env: rgwEnv, stdio: 'ignore' });
  return { kind: 'ceph-rgw', env: vars, stop };
}

async function createBucket(s: Server, bucket: string): Promise<void> {
  const client = new S3Client({
    endpoint: s.env.AWS_ENDPOINT_URL_S3,
    region: s.env.AWS_REGION ?? 'us-east-1',
    forcePathStyle: true,
    credentials: {
      accessKeyId: s.env.AWS_ACCESS_KEY_ID ?? '',
      secretAccessKey: s.env.AWS_SECRET_ACCESS_KEY ?? '',
    },
  });
  try {
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
  } finally {
    client.destroy();
  }
}

function storeAt(s: Server, bucket: string, prefix: string, endpoint?: string): Store {
  return new S3Store(bucket, prefix, {
    env: { ...s.env, ...(endpoint ? { AWS_ENDPOINT_URL_S3: endpoint } : {}) },
    enforcesConditionalWrites: s.kind === 'ceph-rgw',
    // One event loop drives 1,000 sites: a busy loop must not count as an unreachable server.
    connectionTimeoutMs: 30_000,
    requestTimeoutMs: 120_000,
  });
}

async function metered<T>(proxy: CountingProxy, fn: () => Promise<T>) {
  const before = await proxy.counts();
  const t0 = performance.now();
  const value = await fn();
  const wallMs = ms(t0);
  const c: ProxyCounts = countsSince(before, await proxy.counts());
  return {
    value,
    wallMs,
    requests: c.requests,
    byMethod: c.byMethod,
    bytesDown: c.bytesDown,
    bytesUp: c.bytesUp,
  };
}

function machine() {
  const uptime = execFileSync('uptime', { encoding: 'utf8' }).trim();
  return {
    nproc: cpus().length,
    load: loadavg().map((l) => Math.round(l * 100) / 100),
    uptime,
    date: new Date().toISOString(),
  };
}

async function main(): Promise<void> {
  const started = machine();
  const server = await startServer();
  const proxy = await startCountingProxy(server.env.AWS_ENDPOINT_URL_S3 ?? '');
  const work = mkdtempSync(join(tmpdir(), 'edgectl-bench-scale-'));
  const bucket = `fleet-scale-${process.pid}`;
  const opened: Store[] = [];
  const open = (prefix: string, viaProxy = true) => {
    const st = storeAt(server, bucket, prefix, viaProxy ? proxy.endpoint : undefined);
    opened.push(st);
    return st;
  };
  try {
    await createBucket(server, bucket);
    const direct = open('registry', false);
    const store = open('registry');
    let t0 = performance.now();
    log(`fleet of ${SITES} sites`);
    const w = await rolloutWorld(direct, { sites: SITES });
    const worldMs = ms(t0);
    const latest = await readLatest(direct, w.t.trust, new Date());
    const now = Date.now();
    const weekSites = w.sites.slice(0, WEEK_SITES);
    const hourSites = w.sites.slice(WEEK_SITES);
    log('history');
    const week = await writeHistory(w, direct, latest.applied, weekSites, WEEK, now);
    const hour = await writeHistory(w, direct, latest.applied, hourSites, HISTORY, now);

    // Sites: first sync, then one steady interval.
    const sites: SimSite[] = w.sites.map((name) => ({ name, etag: undefined, applied: latest.applied }));
    log('sites: first sync, steady state');
    await firstSync(store, w.t.trust, sites);
    const steady = await metered(proxy, () => syncRound(store, w.t.trust, sites));

    // An assignment change to every site, and the sites' loops picking it up.
    log('assignment change');
    const digest = w.digests[REFS.good] as string;
    t0 = performance.now();
    const applied = await appendEntry({ ...w.writer(), store }, () => ({
      ops: [{ op: 'assign', sites: w.sites, slot: 'adapters', ref: REFS.good, manifestDigest: digest }],
    }));
    const applyMs = ms(t0);
    const appliedAt = Date.now();
    const prop = await metered(proxy, () =>
      propagate(store, w.t.trust, sites, {
        targetSeq: applied.seq ?? 0,
        appliedAt,
        intervalMs: INTERVAL_MS,
        timeoutMs: INTERVAL_MS * 6 + 120_000,
      }),
    );
    log('controller ticks');
    const weekSet = new Set(weekSites);
    const controller = await controllerTicks(w, store, proxy, (s) => (weekSet.has(s) ? WEEK : HISTORY));
    log('peer: restic vs publish');
    const peer = await peerRun(server, proxy, open('peer'), w.t, work);
    const result = {
      bench: 'fleet-scale',
      store: server.kind,
      counting: 'HTTP proxy in front of the store (every request and body byte of the measured phases)',
      machine: { atStart: started, atEnd: machine() },
      sites: SITES,
      history: {
        simulated: `${weekSites.length} sites with a week (${WEEK} reports each), ${hourSites.length} with ${HISTORY} reports; one report per site per 5 min, the newest ending 5 min before the run; markers filed at the simulated upload times; only each site's newest history report is signed (older ones hold another report's bytes: listed, never fetched)`,
        objects: 2 * (week.reports + hour.reports),
        populate: { week, rest: hour, note: 'report + marker PUTs, 48 in flight, around the proxy' },
        weekForAllSitesWouldTakeHours: Math.round((SITES * WEEK) / Math.max(1, hour.perSecond) / 360) / 10,
      },
      setupMs: { world: worldMs },
      steadyState: {
        requests: steady.requests,
        requestsPerSite: steady.requests / SITES,
        bodyBytesDown: steady.bytesDown,
        changed: steady.value,
        wallMs: steady.wallMs,
      },
      assignmentChange: {
        applyMs,
        applyEntrySeq: applied.seq,
        pollIntervalMs: INTERVAL_MS,
        reached: SITES - prop.value.missed,
        failedSyncs: prop.value.failures,
        p50Ms: percentile(prop.value.delays, 50),
        p95Ms: percentile(prop.value.delays, 95),
        maxMs: prop.value.delays.at(-1) ?? null,
        requests: prop.requests,
        bytesMoved: prop.bytesDown + prop.bytesUp,
        bytesPerSite: Math.round((prop.bytesDown + prop.bytesUp) / SITES),
      },
      controllerTick: controller,
      peer,
    };
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  } finally {
    await Promise.all(opened.map((s) => s.close()));
    await proxy.close();
    await server.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

/** Rollout ticks (cold, after K new reports, idle) and the two baselines, all through the proxy. */
async function controllerTicks(
  w: Awaited<ReturnType<typeof rolloutWorld>>,
  store: Store,
  proxy: CountingProxy,
  historyOf: (site: string) => number,
) {
  const spec = normalizeSpec({}, { steps: '10,100', interval: '30s', candidate: REFS.bad });
  const candidate = { ref: REFS.bad, manifestDigest: w.digests[REFS.bad] as string };
  await appendEntry({ ...w.writer(), store }, (fleet) => ({
    ops: startOps(fleet.state, { id: 'scale', spec, candidate, by: 'bench' }).ops,
  }));
  const cache = new FeedbackCache();
  const deps = { ...w.writer(), store, judge: judgeStep, by: 'controller:bench', cache };
  const pick = (m: Awaited<ReturnType<typeof metered>>) => ({
    requests: m.requests,
    byMethod: m.byMethod,
    wallMs: m.wallMs,
  });
  // The feedback part of a tick's requests; the rest is the tick's fleet-log read (readLatest).
  const feedbackRequests = (f: FeedStats) =>
    f.indexLists + f.siteLists.cold + f.siteLists.gap + f.siteLists.quiet + f.gets;
  const cold = await metered(proxy, () => tick(deps, 'scale'));
  const coldFeed = { ...cache.stats };
  const applied = (await readLatest(store, w.t.trust, new Date())).applied;
  const reported = w.sites.slice(0, REPORTED);
  // Each reporting site's next report, uploaded by the real uploader path (report, HEAD, marker).
  const bySeq = new Map<number, string[]>();
  for (const s of reported) bySeq.set(historyOf(s) + 1, [...(bySeq.get(historyOf(s) + 1) ?? []), s]);
  for (const [n, list] of bySeq) await reportNow(w, store, applied, list, n);
  const incremental = await metered(proxy, () => tick(deps, 'scale'));
  const incFeed = { ...cache.stats };
  const idle = await metered(proxy, () => tick(deps, 'scale'));
  const idleFeed = { ...cache.stats };
  // Baseline 1: the per-site incremental read (one listing per site after its last seq, then GETs).
  const declared = declaredSiteKeys(applied.state);
  const perSite = await metered(proxy, () =>
    mapConcurrent(w.sites, 8, (s) => readFeedback(store, s, declared, { afterSeq: historyOf(s) })),
  );
  // Baseline 2: every site's whole prefix listed (the controller before #15), plus the same GETs.
  const full = await metered(proxy, async () => {
    const listed = await mapConcurrent(w.sites, 8, async (s) => (await store.list(feedbackPrefix(s))).length);
    await mapConcurrent(reported, 8, (s) => store.get(feedbackKey(s, historyOf(s) + 1)));
    return listed.reduce((a, b) => a + b, 0);
  });
  return {
    rolloutSites: w.sites.length,
    reportedSinceLastTick: REPORTED,
    cold: { ...pick(cold), feedbackRequests: feedbackRequests(coldFeed), feed: coldFeed },
    afterNewReports: {
      ...pick(incremental),
      feed: incFeed,
      feedbackRequests: feedbackRequests(incFeed),
      feedbackRequestsPerReportingSite: Math.round((feedbackRequests(incFeed) / REPORTED) * 100) / 100,
      requestsPerReportingSite: Math.round((incremental.requests / REPORTED) * 100) / 100,
      note: "includes the tick's fleet-log reads (head, entries) besides feedback",
    },
    nothingNew: { ...pick(idle), feedbackRequests: feedbackRequests(idleFeed), feed: idleFeed },
    baselinePerSiteListing: pick(perSite),
    baselineFullListing: {
      ...pick(full),
      keysListed: full.value,
      // S3 answers at most 1,000 keys per list request: a week (2,016 reports) is 3 pages a site.
      requestsIfEverySiteHadAWeek: w.sites.length * Math.ceil((WEEK + 1) / 1000) + REPORTED,
    },
  };
}

async function peerRun(
  server: Server,
  proxy: CountingProxy,
  store: Store,
  t: Awaited<ReturnType<typeof rolloutWorld>>['t'],
  work: string,
) {
  if (server.kind !== 'ceph-rgw') return { skipped: `peer runs on RGW only (store: ${server.kind})` };
  if (!findRestic()) return { skipped: 'restic is not installed (apt-get install restic)' };
  const resticBucket = `restic-${process.pid}`;
  await createBucket(server, resticBucket);
  return runPeer({
    proxy,
    s3env: server.env,
    resticBucket,
    store,
    trust: t,
    workDir: work,
    bytes: PEER_MIB * 1024 * 1024,
  });
}

await main();
