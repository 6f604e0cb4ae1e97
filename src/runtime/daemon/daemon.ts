/**
 * The site daemon (docs/running-sites.md): one process that keeps the site synced and serves its
 * current generation. It composes the sync agent (its own loop, so the status can say "syncing"),
 * the runtime server of `src/runtime/serve` fed by a `GenerationManager` (hot swap), the feedback
 * spool and reporter, and its half of `/v1/status` and `/metrics`.
 *
 * Start-up (one step each below; the sync side in daemon-sync.ts, the served generation and its
 * reconcile in served.ts): open the registry and the spool, sync once first if nothing is installed yet, resolve
 * the listen address and verifier URL (flags, else the site's declaration in the applied fleet
 * state), start the server and load `current` at the same time, then start the sync loop, the
 * feedback windows and a poll of the `current` pointer. The poll is what picks up `site rollback`
 * run by another process (the agent only announces switches its own syncs make); it costs one
 * readlink per second. `ready()` holds once a generation serves.
 *
 * Shutdown (SIGTERM via runForeground): stop syncing, drain in-flight streams (`close(drainMs)`),
 * spool the open feedback window and try one upload, dispose the generations, close the registry.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Registry } from 'prom-client';
import { RUNTIME_DEFAULTS } from '../../fleet/site-schema.js';
import { parseDuration } from '../../foundation/duration.js';
import { readSecretKeyFile } from '../../registry/keys.js';
import { openStore } from '../../registry/open-store.js';
import type { Store } from '../../registry/store.js';
import { currentGeneration } from '../../site/agent.js';
import { siteDataPaths } from '../../site/data-dir.js';
import type { FeedbackContext } from '../../feedback/index.js';
import type { SyncResult } from '../../site/sync.js';
import type { RuntimeServer, SiteRuntimeStatus } from '../contract.js';
import type { LoadedGeneration } from '../engine/generation.js';
import { startRuntimeServer } from '../serve/server.js';
import { DaemonSync } from './daemon-sync.js';
import { DaemonFeedback } from './feedback.js';
import type { GenerationManager } from './generations.js';
import { registerIndexMetrics } from './index-metrics.js';
import { parseListen } from './listen.js';
import type { DaemonLog } from './log.js';
import { registerDaemonMetrics } from './metrics.js';
import { Serving } from './serving.js';

export interface SiteDaemonOptions {
  site: string;
  dataDir: string;
  registryUrl: string;
  /** The project's trust root (copied into the data directory at the first sync only). */
  projectTrustPath: string | undefined;
  /** `host:port` from --listen; undefined = the declaration's `runtime.listen`, else `defaultListen`. */
  listen: string | undefined;
  /** Used when neither --listen nor the applied declaration names one (a local sites/<name>.yaml). */
  defaultListen?: string | undefined;
  bearerToken: string | undefined;
  /** Between syncs; undefined = the declaration's `runtime.interval` (default 30 s). */
  syncIntervalMs: number | undefined;
  feedbackWindowMs: number;
  /** Overrides the declaration's `runtime.verifier`. */
  verifierUrl: string | undefined;
  /** Bearer token the verifier requires (`verifier up --token`); sent with every verifier request. */
  verifierToken?: string | undefined;
  /** Slow-client deadline for a whole request to the site's API (default 30 s). */
  requestTimeoutMs?: number | undefined;
  threads?: number;
  maxConcurrent?: number;
  maxQueue?: number;
  /** Share of eligible requests re-run with a rollout shadow adapter (default 0.2). */
  shadowSample?: number;
  /** How long SIGTERM waits for in-flight streams. */
  drainMs?: number;
  /** Feedback upload attempt at shutdown. */
  feedbackUploadTimeoutMs?: number;
  /** How often the `current` pointer is checked (catches `site rollback`; default 1 s). */
  pointerPollMs?: number;
  feedbackBackoff?: { initialMs?: number; maxMs?: number };
  log: DaemonLog;
}

export interface SiteDaemon {
  readonly url: string;
  readonly host: string;
  readonly port: number;
  readonly generations: GenerationManager<LoadedGeneration>;
  readonly feedback: DaemonFeedback;
  status(): SiteRuntimeStatus;
  ready(): boolean;
  /** Runs one sync now (serialized with the loop) and reconciles the served generation. */
  syncNow(): Promise<SyncResult | undefined>;
  close(): Promise<void>;
}

export async function runSiteDaemon(opts: SiteDaemonOptions): Promise<SiteDaemon> {
  const paths = siteDataPaths(opts.dataDir);
  const startedAt = new Date().toISOString();
  const key = readSecretKeyFile(paths.siteKey);
  const store = await openStore(opts.registryUrl);
  const resources: (() => Promise<void>)[] = [() => store.close()];
  const cleanup = async () => {
    for (const r of resources.reverse()) await r().catch(() => undefined);
  };
  try {
    return await startWithStore(opts, store, key, startedAt, resources);
  } catch (err) {
    await cleanup();
    throw err;
  }
}

async function startWithStore(
  opts: SiteDaemonOptions,
  store: Store,
  key: ReturnType<typeof readSecretKeyFile>,
  startedAt: string,
  resources: (() => Promise<void>)[],
): Promise<SiteDaemon> {
  const log = opts.log;
  const syncer = await DaemonSync.open(
    {
      site: opts.site,
      dataDir: opts.dataDir,
      projectTrustPath: opts.projectTrustPath,
      verifierOverride: opts.verifierUrl,
      log,
    },
    store,
  );
  // An unsynced site syncs before anything else: its listen address and verifier come with it.
  if ((await currentGeneration(opts.dataDir)) === undefined) {
    log('info', 'no generation installed yet; syncing first', { registry: store.url });
    await syncer.runSync();
    await syncer.refreshApplied();
  }
  const initial: FeedbackContext = { fleetSeq: syncer.applied.appliedSeq, refs: { adapters: [] } };
  const feedback = await DaemonFeedback.open({
    dir: siteDataPaths(opts.dataDir).feedbackSpool,
    site: opts.site,
    key,
    store,
    windowMs: opts.feedbackWindowMs,
    context: initial,
    log,
    ...(opts.feedbackBackoff ? { backoff: opts.feedbackBackoff } : {}),
  });
  const served = new Serving(
    initial,
    opts.dataDir,
    feedback,
    () => syncer.status.appliedSeq,
    log,
    opts.threads,
  );
  resources.push(() => served.generations.close());
  syncer.agent.on('switched', ({ from, to, seq }) => {
    log('info', 'sync switched generation', { from, to, seq });
    void syncer.refreshApplied().then(() => served.reconcile({ retryFailed: true }));
  });

  const parts: DaemonParts = { opts, store, startedAt, syncer, feedback, served, closing: false };
  const metrics = new Registry();
  registerMetrics(metrics, parts);
  // The server and the first generation load at the same time: the model load dominates start-up.
  const initialLoad = served.reconcile();
  const server = await startServer(parts, metrics);
  resources.push(() => server.close(0));
  await initialLoad;
  if (!served.generations.current)
    log('warn', 'no generation to serve yet; /readyz stays 503 until a sync installs one');
  feedback.start();
  const loops = startLoops(parts);
  log('info', 'site daemon listening', {
    site: opts.site,
    url: server.url,
    generation: served.generations.current?.id ?? null,
    verifier: opts.verifierUrl ?? syncer.applied.effective?.verifier ?? null,
    syncInterval: `${loops.intervalMs()}ms`,
    feedbackWindow: `${opts.feedbackWindowMs}ms`,
  });
  return daemonHandle(parts, server, loops);
}

/** What the daemon's steps share. */
interface DaemonParts {
  opts: SiteDaemonOptions;
  store: Store;
  startedAt: string;
  syncer: DaemonSync;
  feedback: DaemonFeedback;
  served: Serving;
  /** Set at shutdown: /readyz answers 503 from then on. */
  closing: boolean;
}

const ready = (p: DaemonParts) => (): boolean => !p.closing && p.served.generations.current !== undefined;

/** The daemon's half of `/v1/status`. */
function daemonStatus(p: DaemonParts): Omit<SiteRuntimeStatus, 'runtime' | 'url'> {
  const { generations } = p.served;
  const gen = generations.current;
  return {
    site: p.opts.site,
    pid: process.pid,
    startedAt: p.startedAt,
    dataDir: p.opts.dataDir,
    registry: p.store.url,
    generation: gen ? { id: gen.id, context: p.served.context } : null,
    sync: { ...p.syncer.status },
    feedback: p.feedback.status(),
    swap: {
      swaps: generations.swapCount,
      draining: generations.draining,
      lastFailure: generations.lastFailure ?? null,
    },
  };
}

function registerMetrics(metrics: Registry, p: DaemonParts): void {
  const { generations } = p.served;
  registerDaemonMetrics(metrics, {
    sync: () => p.syncer.status,
    generation: () => generations.current?.id ?? null,
    swaps: () => generations.swapCount,
    draining: () => generations.draining.length,
    feedback: () => p.feedback.status(),
    info: {
      site: p.opts.site,
      labels: () => p.syncer.applied.labels,
      refs: () => (generations.current ? p.served.context.refs : undefined),
      rollouts: () => p.syncer.applied.rollouts,
    },
  });
  registerIndexMetrics(metrics, () => generations.current);
}

/** The runtime server on the listen address of --listen, else the declaration, else the default. */
function startServer(p: DaemonParts, metrics: Registry): Promise<RuntimeServer> {
  const { opts, syncer } = p;
  const listenText =
    opts.listen ?? syncer.applied.runtime?.listen ?? opts.defaultListen ?? RUNTIME_DEFAULTS.listen;
  const listen = parseListen(listenText, opts.listen ? '--listen' : 'runtime.listen');
  return startRuntimeServer({
    host: listen.host,
    port: listen.port,
    ...(opts.bearerToken ? { bearerToken: opts.bearerToken } : {}),
    generations: p.served.generations,
    verifierUrl: () => opts.verifierUrl ?? syncer.applied.effective?.verifier,
    cloud: () => syncer.applied.effective?.cloud,
    ...(opts.verifierToken ? { verifierToken: opts.verifierToken } : {}),
    ...(opts.requestTimeoutMs === undefined ? {} : { requestTimeoutMs: opts.requestTimeoutMs }),
    maxConcurrent: opts.maxConcurrent ?? 4,
    maxQueue: opts.maxQueue ?? 64,
    onOutcome: (outcome, context) => p.feedback.record(outcome, context),
    ...(opts.shadowSample !== undefined ? { shadowSample: opts.shadowSample } : {}),
    onShadow: (outcome, context) => p.feedback.recordShadow(outcome, context),
    daemonStatus: () => daemonStatus(p),
    ready: ready(p),
    metrics,
    log: opts.log,
  });
}

interface Loops {
  loop: AbortController;
  done: Promise<void>;
  poll: NodeJS.Timeout;
  intervalMs: () => number;
}

/** The sync loop (sync, then follow `current`) and the poll of the `current` pointer. */
function startLoops(p: DaemonParts): Loops {
  const { opts, syncer, served } = p;
  const loop = new AbortController();
  const intervalMs = () =>
    opts.syncIntervalMs ?? parseDuration(syncer.applied.effective?.interval ?? RUNTIME_DEFAULTS.interval);
  const done = (async () => {
    while (!loop.signal.aborted) {
      await syncer.runSync();
      await served.reconcile();
      try {
        await sleep(intervalMs(), undefined, { signal: loop.signal });
      } catch {
        break;
      }
    }
  })();
  const poll = setInterval(() => void served.reconcile(), opts.pointerPollMs ?? 1000);
  poll.unref();
  return { loop, done, poll, intervalMs };
}

/**
 * The running daemon. Shutdown: stop syncing, drain in-flight streams, spool the open feedback
 * window and try one upload, dispose the generations, close the registry.
 */
function daemonHandle(p: DaemonParts, server: RuntimeServer, loops: Loops): SiteDaemon {
  const { opts, syncer, served, feedback } = p;
  const log = opts.log;
  const drainMs = opts.drainMs ?? 10_000;
  let closed: Promise<void> | undefined;
  return {
    url: server.url,
    host: server.host,
    port: server.port,
    generations: served.generations,
    feedback,
    status: () => ({ ...daemonStatus(p), url: server.url, runtime: server.status() }),
    ready: ready(p),
    syncNow: async () => {
      const r = await syncer.runSync();
      await served.reconcile();
      return r;
    },
    close: () =>
      (closed ??= (async () => {
        p.closing = true;
        loops.loop.abort();
        clearInterval(loops.poll);
        log('info', 'draining in-flight requests', { inFlight: server.status().inFlight, drainMs });
        await server.close(drainMs);
        await loops.done;
        await served.idle;
        const fb = await feedback.shutdown(opts.feedbackUploadTimeoutMs ?? 5_000);
        log('info', 'feedback flushed', {
          spooled: fb.spooled.join(',') || 'none',
          uploaded: fb.upload.uploaded.length,
          pending: fb.upload.pending.length,
          error: fb.upload.error,
        });
        await served.generations.close();
        await p.store.close();
      })()),
  };
}
