/**
 * The site daemon (DESIGN: Sites, Runtime): one process that keeps the site synced and serves its
 * current generation. It composes the sync agent (its own loop, so the status can say "syncing"),
 * the runtime server of `src/runtime/serve` fed by a `GenerationManager` (hot swap), the feedback
 * spool and reporter, and its half of `/v1/status` and `/metrics`.
 *
 * Start-up: open the registry and the spool, sync once first if nothing is installed yet, resolve
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
import { parseDuration } from '../../registry/duration.js';
import { readSecretKeyFile } from '../../registry/keys.js';
import { openStore } from '../../registry/open-store.js';
import type { Store } from '../../registry/store.js';
import { SyncAgent, currentGeneration } from '../../site/agent.js';
import { siteDataPaths } from '../../site/data-dir.js';
import { pointerTarget } from '../../site/generation.js';
import type { FeedbackContext } from '../../site/feedback/index.js';
import type { SyncResult } from '../../site/sync.js';
import type { DaemonSyncStatus, RuntimeServer, SiteRuntimeStatus } from '../contract.js';
import { loadGeneration, type LoadedGeneration } from '../serve/generation.js';
import { startRuntimeServer } from '../serve/server.js';
import { DaemonFeedback } from './feedback.js';
import { GenerationManager } from './generations.js';
import { parseListen } from './listen.js';
import { logIo, type DaemonLog } from './log.js';
import { registerDaemonMetrics } from './metrics.js';
import { contextOf, readAppliedSiteConfig, type AppliedSiteConfig } from './site-config.js';

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
  const paths = siteDataPaths(opts.dataDir);
  const agent = new SyncAgent({
    site: opts.site,
    dataDir: opts.dataDir,
    store,
    projectTrustPath: opts.projectTrustPath,
    io: logIo(log),
  });
  const sync: DaemonSyncStatus = { state: 'starting', appliedSeq: null, lastSyncAt: null, lastError: null };
  let applied: AppliedSiteConfig = await readAppliedSiteConfig(opts.dataDir, opts.site);
  sync.appliedSeq = applied.appliedSeq > 0 ? applied.appliedSeq : null;

  const refreshApplied = async () => {
    try {
      const next = await readAppliedSiteConfig(opts.dataDir, opts.site);
      const verifierChanged = next.effective?.verifier !== applied.effective?.verifier;
      applied = next;
      sync.appliedSeq = next.appliedSeq > 0 ? next.appliedSeq : null;
      if (verifierChanged && !opts.verifierUrl)
        log('info', 'verifier URL changed with the fleet state', { verifier: next.effective?.verifier });
    } catch (err) {
      log('error', 'cannot read the applied fleet state', { error: err });
    }
  };

  const runSync = async (): Promise<SyncResult | undefined> => {
    sync.state = 'syncing';
    try {
      const r = await agent.syncOnce();
      sync.state = r.offline ? 'offline' : 'ok';
      sync.lastSyncAt = new Date().toISOString();
      sync.lastError = r.offline ? (r.warnings[0] ?? 'registry unreachable') : null;
      if (r.seq !== sync.appliedSeq) await refreshApplied();
      return r;
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      sync.state = (err as { exitCode?: number }).exitCode === 4 ? 'refused' : 'error';
      sync.lastSyncAt = new Date().toISOString();
      sync.lastError = e.message;
      return undefined;
    }
  };
  agent.on('sync', (r) => {
    if (r.changed || r.headChanged)
      log('info', 'sync', {
        seq: r.seq,
        generation: r.generation,
        changed: r.changed,
        bytes: r.bytesFetched,
        requests: r.requests,
      });
    else log('debug', 'sync: up to date', { seq: r.seq, generation: r.generation });
  });
  agent.on('offline', (r) =>
    log('warn', 'registry unreachable; still serving the current generation', {
      seq: r.seq,
      generation: r.generation,
      warning: r.warnings[0],
    }),
  );
  agent.on('refused', ({ error, frozen }) =>
    log('error', 'sync refused (nothing installed)', { error: error.message, frozen }),
  );
  agent.on('failed', (error) => log('error', 'sync failed', { error: error.message }));
  agent.on('drift', (d) =>
    log('warn', 'drift in the current generation', {
      changed: d.changed.length,
      missing: d.missing.length,
      extra: d.extra.length,
      repaired: d.repaired.length,
    }),
  );

  // An unsynced site syncs before anything else: its listen address and verifier come with it.
  if ((await currentGeneration(opts.dataDir)) === undefined) {
    log('info', 'no generation installed yet; syncing first', { registry: store.url });
    await runSync();
    await refreshApplied();
  }

  let currentContext: FeedbackContext = { fleetSeq: applied.appliedSeq, refs: { adapters: [] } };
  const feedback = await DaemonFeedback.open({
    dir: paths.feedbackSpool,
    site: opts.site,
    key,
    store,
    windowMs: opts.feedbackWindowMs,
    context: currentContext,
    log,
    ...(opts.feedbackBackoff ? { backoff: opts.feedbackBackoff } : {}),
  });

  const generations = new GenerationManager<LoadedGeneration>({
    load: (target, previous) =>
      loadGeneration(target.dir, {
        id: target.id,
        context: target.context,
        ...(previous ? { previous } : {}),
        ...(opts.threads !== undefined ? { threads: opts.threads } : {}),
      }),
    onEvent: (e) => {
      if (e.kind === 'installed') {
        const gen = generations.current;
        if (gen) {
          currentContext = gen.context;
          feedback.setContext(currentContext);
        }
        log('info', 'serving generation', {
          generation: e.id,
          previous: e.from,
          loadMs: e.ms,
          model: gen?.modelName,
          adapters: gen?.adapterNames.join(','),
        });
      } else if (e.kind === 'load-failed') {
        log('error', 'generation failed to load; the installed one keeps serving', {
          generation: e.id,
          error: e.error,
        });
      } else if (e.kind === 'disposed') log('debug', 'generation released', { generation: e.id });
      else log('error', 'generation release failed', { generation: e.id, error: e.error });
    },
  });
  resources.push(() => generations.close());

  let reconciling: Promise<void> = Promise.resolve();
  const reconcile = (opts2: { retryFailed?: boolean } = {}): Promise<void> => {
    reconciling = reconciling
      .then(async () => {
        // One readlink per poll; generation.json is read only when the pointer moved.
        const id = await pointerTarget(paths, 'current').catch(() => undefined);
        if (id === undefined) return;
        if (generations.current?.id === id) {
          // Same refs, newer applied seq: requests count under the new seq.
          const seq = sync.appliedSeq ?? 0;
          if (seq > currentContext.fleetSeq) {
            currentContext = { ...currentContext, fleetSeq: seq };
            feedback.setContext(currentContext);
          }
          return;
        }
        const cur = await currentGeneration(opts.dataDir).catch(() => undefined);
        if (!cur) return;
        await generations.reconcile(
          { id: cur.id, dir: cur.dir, context: contextOf(cur.info, sync.appliedSeq ?? 0) },
          opts2,
        );
      })
      .catch((err: unknown) => log('error', 'cannot check the current generation', { error: err }));
    return reconciling;
  };
  agent.on('switched', ({ from, to, seq }) => {
    log('info', 'sync switched generation', { from, to, seq });
    void refreshApplied().then(() => reconcile({ retryFailed: true }));
  });

  const listenText = opts.listen ?? applied.runtime?.listen ?? opts.defaultListen ?? RUNTIME_DEFAULTS.listen;
  const listen = parseListen(listenText, opts.listen ? '--listen' : 'runtime.listen');
  const metrics = new Registry();
  let closing = false;
  const daemonStatus = (): Omit<SiteRuntimeStatus, 'runtime' | 'url'> => {
    const gen = generations.current;
    return {
      site: opts.site,
      pid: process.pid,
      startedAt,
      dataDir: opts.dataDir,
      registry: store.url,
      generation: gen ? { id: gen.id, context: currentContext } : null,
      sync: { ...sync },
      feedback: feedback.status(),
      swap: {
        swaps: generations.swapCount,
        draining: generations.draining,
        lastFailure: generations.lastFailure ?? null,
      },
    };
  };
  registerDaemonMetrics(metrics, {
    sync: () => sync,
    generation: () => generations.current?.id ?? null,
    swaps: () => generations.swapCount,
    draining: () => generations.draining.length,
    feedback: () => feedback.status(),
    info: {
      site: opts.site,
      labels: () => applied.labels,
      refs: () => (generations.current ? currentContext.refs : undefined),
      rollouts: () => applied.rollouts,
    },
  });
  const ready = () => !closing && generations.current !== undefined;

  // The server and the first generation load at the same time: the model load dominates start-up.
  const initialLoad = reconcile();
  const server: RuntimeServer = await startRuntimeServer({
    host: listen.host,
    port: listen.port,
    ...(opts.bearerToken ? { bearerToken: opts.bearerToken } : {}),
    generations,
    verifierUrl: () => opts.verifierUrl ?? applied.effective?.verifier,
    ...(opts.verifierToken ? { verifierToken: opts.verifierToken } : {}),
    ...(opts.requestTimeoutMs === undefined ? {} : { requestTimeoutMs: opts.requestTimeoutMs }),
    maxConcurrent: opts.maxConcurrent ?? 4,
    maxQueue: opts.maxQueue ?? 64,
    onOutcome: (outcome, context) => feedback.record(outcome, context),
    ...(opts.shadowSample !== undefined ? { shadowSample: opts.shadowSample } : {}),
    onShadow: (outcome, context) => feedback.recordShadow(outcome, context),
    daemonStatus,
    ready,
    metrics,
    log,
  });
  const drainMs = opts.drainMs ?? 10_000;
  resources.push(() => server.close(0));
  await initialLoad;
  if (!generations.current)
    log('warn', 'no generation to serve yet; /readyz stays 503 until a sync installs one');

  feedback.start();
  const loop = new AbortController();
  const intervalMs = () =>
    opts.syncIntervalMs ?? parseDuration(applied.effective?.interval ?? RUNTIME_DEFAULTS.interval);
  const loopDone = (async () => {
    while (!loop.signal.aborted) {
      await runSync();
      await reconcile();
      try {
        await sleep(intervalMs(), undefined, { signal: loop.signal });
      } catch {
        break;
      }
    }
  })();
  const poll = setInterval(() => void reconcile(), opts.pointerPollMs ?? 1000);
  poll.unref();

  log('info', 'site daemon listening', {
    site: opts.site,
    url: server.url,
    generation: generations.current?.id ?? null,
    verifier: opts.verifierUrl ?? applied.effective?.verifier ?? null,
    syncInterval: `${intervalMs()}ms`,
    feedbackWindow: `${opts.feedbackWindowMs}ms`,
  });

  let closed: Promise<void> | undefined;
  return {
    url: server.url,
    host: server.host,
    port: server.port,
    generations,
    feedback,
    status: () => ({ ...daemonStatus(), url: server.url, runtime: server.status() }),
    ready,
    syncNow: async () => {
      const r = await runSync();
      await reconcile();
      return r;
    },
    close: () =>
      (closed ??= (async () => {
        closing = true;
        loop.abort();
        clearInterval(poll);
        log('info', 'draining in-flight requests', { inFlight: server.status().inFlight, drainMs });
        await server.close(drainMs);
        await loopDone;
        await reconciling.catch(() => undefined);
        const fb = await feedback.shutdown(opts.feedbackUploadTimeoutMs ?? 5_000);
        log('info', 'feedback flushed', {
          spooled: fb.spooled.join(',') || 'none',
          uploaded: fb.upload.uploaded.length,
          pending: fb.upload.pending.length,
          error: fb.upload.error,
        });
        await generations.close();
        await store.close();
      })()),
  };
}
