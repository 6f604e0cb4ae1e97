/**
 * The site daemon's sync side (docs/running-sites.md; docs/architecture.md, runtime): the sync agent, the
 * sync status `/v1/status` shows (starting, ok, syncing, offline, refused, error; applied seq; last
 * sync and error), and the applied fleet state's view of this site (listen address, verifier URL,
 * interval, labels, rollouts), re-read whenever a sync applied a new seq. The agent's events become
 * structured log lines here, so daemon.ts only composes.
 */
import type { Store } from '../../registry/store.js';
import { SyncAgent } from '../../site/agent.js';
import type { SyncResult } from '../../site/sync.js';
import type { DaemonSyncStatus } from '../contract.js';
import { logIo, type DaemonLog } from './log.js';
import { readAppliedSiteConfig, type AppliedSiteConfig } from './site-config.js';

export interface DaemonSyncOptions {
  site: string;
  dataDir: string;
  projectTrustPath: string | undefined;
  /** The --verifier flag: when set, a verifier change in the fleet state is not worth a log line. */
  verifierOverride: string | undefined;
  log: DaemonLog;
}

export class DaemonSync {
  readonly status: DaemonSyncStatus = {
    state: 'starting',
    appliedSeq: null,
    lastSyncAt: null,
    lastError: null,
  };
  readonly agent: SyncAgent;

  private constructor(
    private readonly opts: DaemonSyncOptions,
    store: Store,
    /** The applied fleet state's view of this site (re-read after each sync that moved the seq). */
    public applied: AppliedSiteConfig,
  ) {
    this.agent = new SyncAgent({
      site: opts.site,
      dataDir: opts.dataDir,
      store,
      projectTrustPath: opts.projectTrustPath,
      io: logIo(opts.log),
    });
    this.status.appliedSeq = applied.appliedSeq > 0 ? applied.appliedSeq : null;
    this.logAgentEvents();
  }

  static async open(opts: DaemonSyncOptions, store: Store): Promise<DaemonSync> {
    return new DaemonSync(opts, store, await readAppliedSiteConfig(opts.dataDir, opts.site));
  }

  /** Re-reads the applied fleet state (a failure is logged; the previous view stays). */
  async refreshApplied(): Promise<void> {
    const { opts } = this;
    try {
      const next = await readAppliedSiteConfig(opts.dataDir, opts.site);
      const verifierChanged = next.effective?.verifier !== this.applied.effective?.verifier;
      this.applied = next;
      this.status.appliedSeq = next.appliedSeq > 0 ? next.appliedSeq : null;
      if (verifierChanged && !opts.verifierOverride)
        opts.log('info', 'verifier URL changed with the fleet state', { verifier: next.effective?.verifier });
    } catch (err) {
      opts.log('error', 'cannot read the applied fleet state', { error: err });
    }
  }

  /** One sync; the status says how it went (a refused or failed sync is not thrown). */
  async runSync(): Promise<SyncResult | undefined> {
    const sync = this.status;
    sync.state = 'syncing';
    try {
      const r = await this.agent.syncOnce();
      sync.state = r.offline ? 'offline' : 'ok';
      sync.lastSyncAt = new Date().toISOString();
      sync.lastError = r.offline ? (r.warnings[0] ?? 'registry unreachable') : null;
      if (r.seq !== sync.appliedSeq) await this.refreshApplied();
      return r;
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      sync.state = (err as { exitCode?: number }).exitCode === 4 ? 'refused' : 'error';
      sync.lastSyncAt = new Date().toISOString();
      sync.lastError = e.message;
      return undefined;
    }
  }

  private logAgentEvents(): void {
    const { agent } = this;
    const log = this.opts.log;
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
  }
}
