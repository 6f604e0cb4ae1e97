/**
 * The daemon's Prometheus series, registered in the registry the runtime server also uses (one
 * `/metrics`): sync state (one-hot by state), applied fleet seq, the installed generation (an info
 * gauge labelled with its id), hot swaps, replaced generations still draining, the feedback spool,
 * and the info series dashboards join on (site-info.ts: the site's labels, artifacts, rollouts).
 * Values are read from the daemon's state at scrape time, so nothing is updated on the request path;
 * monotonic counts are counters (`_total`) set from the daemon's own totals at scrape.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import { registerProcessMetrics } from '../../http/process-metrics.js';
import type { DaemonFeedbackStatus, DaemonSyncStatus } from '../contract.js';
import { registerSiteInfoMetrics, type SiteInfoSource } from './site-info.js';

export interface DaemonMetricSources {
  sync: () => DaemonSyncStatus;
  generation: () => string | null;
  swaps: () => number;
  draining: () => number;
  feedback: () => DaemonFeedbackStatus;
  /** The site's name, labels, served refs and rollouts, from the applied fleet state. */
  info: SiteInfoSource;
}

const SYNC_STATES: DaemonSyncStatus['state'][] = ['starting', 'ok', 'syncing', 'offline', 'refused', 'error'];

export function registerDaemonMetrics(registry: Registry, src: DaemonMetricSources): void {
  registerProcessMetrics(registry, 'site');
  registerSiteInfoMetrics(registry, src.info);
  new Gauge({
    name: 'edgectl_site_sync_state',
    help: 'Sync state of the site daemon (1 for the current state).',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      const now = src.sync().state;
      for (const s of SYNC_STATES) this.set({ state: s }, s === now ? 1 : 0);
    },
  });
  new Gauge({
    name: 'edgectl_site_applied_seq',
    help: 'Fleet seq the site has applied.',
    registers: [registry],
    collect() {
      this.set(src.sync().appliedSeq ?? 0);
    },
  });
  new Gauge({
    name: 'edgectl_site_last_sync_timestamp_seconds',
    help: 'Unix time of the last completed sync (0 before any).',
    registers: [registry],
    collect() {
      const at = src.sync().lastSyncAt;
      this.set(at ? Date.parse(at) / 1000 : 0);
    },
  });
  new Gauge({
    name: 'edgectl_site_generation_info',
    help: 'The generation new requests are served by (value 1, labelled with its id).',
    labelNames: ['generation'],
    registers: [registry],
    collect() {
      this.reset();
      const id = src.generation();
      if (id) this.set({ generation: id }, 1);
    },
  });
  new Counter({
    name: 'edgectl_site_generation_swaps_total',
    help: 'Generations installed since the daemon started.',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(src.swaps());
    },
  });
  new Gauge({
    name: 'edgectl_site_generations_draining',
    help: 'Replaced generations still finishing in-flight requests.',
    registers: [registry],
    collect() {
      this.set(src.draining());
    },
  });
  new Gauge({
    name: 'edgectl_site_feedback_spooled_reports',
    help: 'Signed feedback reports waiting in the spool for upload.',
    registers: [registry],
    collect() {
      this.set(src.feedback().spooled);
    },
  });
  new Counter({
    name: 'edgectl_site_feedback_uploaded_reports_total',
    help: 'Feedback reports uploaded by this process.',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(src.feedback().uploaded);
    },
  });
}
