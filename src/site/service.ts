/**
 * What the `site sync|status|rollback` commands call: resolving the site's data directory (the same
 * default `site add` uses, `.edgectl/sites/<name>` under the project root), opening the registry
 * the project configuration names, and the human lines each command prints. Kept apart from the
 * agent so the daemon can build a SyncAgent from its own configuration.
 */
import { resolve } from 'node:path';
import type { Io } from '../foundation/output.js';
import { formatBytes } from '../foundation/output.js';
import { openStore } from '../registry/open-store.js';
import type { Store } from '../registry/store.js';
import { SyncAgent, type LoopSummary } from './agent.js';
import { defaultSiteDataDir } from './data-dir.js';
import type { RollbackResult } from './rollback.js';
import { formatAge } from './index-freshness.js';
import type { SiteStatus } from './status.js';
import type { SyncResult } from './sync.js';

/** `--data-dir` (relative to the working directory) or the project default. */
export function resolveSiteDataDir(projectRoot: string, site: string, flag: string | undefined): string {
  return flag ? resolve(flag) : defaultSiteDataDir(projectRoot, site);
}

export interface OpenAgentOptions {
  site: string;
  dataDir: string;
  registryUrl: string;
  projectTrustPath: string;
  io: Io;
  verifyAll?: boolean;
  concurrency?: number;
}

/** A SyncAgent on the registry at `registryUrl`; `close()` releases the registry client. */
export async function openSyncAgent(
  opts: OpenAgentOptions,
): Promise<{ agent: SyncAgent; store: Store; close(): Promise<void> }> {
  const store = await openStore(opts.registryUrl);
  const agent = new SyncAgent({
    site: opts.site,
    dataDir: opts.dataDir,
    store,
    projectTrustPath: opts.projectTrustPath,
    io: opts.io,
    ...(opts.verifyAll ? { verifyAll: true } : {}),
    ...(opts.concurrency !== undefined ? { concurrency: opts.concurrency } : {}),
  });
  return { agent, store, close: () => store.close() };
}

export interface SiteSyncOptions extends OpenAgentOptions {
  /** Sync once; otherwise loop every `intervalMs` until `signal` aborts. */
  once: boolean;
  intervalMs: number;
  /** Stops the loop (unused with `once`). */
  signal?: AbortSignal;
  /** Each finished sync (the one of --once, every pass of the loop). */
  onSync: (r: SyncResult) => void;
}

/**
 * `site sync`: opens the registry, syncs once or loops until the signal, and closes the registry.
 * A loop's refused or failed pass is logged on the I/O host and the loop goes on.
 */
export async function syncSite(opts: SiteSyncOptions): Promise<SyncResult | LoopSummary> {
  const { agent, close } = await openSyncAgent(opts);
  try {
    if (opts.once) {
      const result = await agent.syncOnce();
      opts.onSync(result);
      return result;
    }
    agent.on('sync', opts.onSync);
    agent.on('refused', ({ error }) => opts.io.log('error', `${error.message} (nothing installed)`));
    agent.on('failed', (error) => opts.io.log('error', error.message));
    return await agent.runSyncLoop({
      interval: opts.intervalMs,
      signal: opts.signal ?? new AbortController().signal,
    });
  } finally {
    await close();
  }
}

const short = (id: string | null) => (id === null ? 'none' : id);

export function describeSync(r: SyncResult): string {
  const traffic = `${r.requests} request(s), ${formatBytes(r.bytesFetched)}`;
  if (r.offline)
    return `${r.site}: offline; still serving generation ${short(r.generation)} (fleet seq ${r.seq}).`;
  if (r.changed) {
    return `${r.site}: fleet seq ${r.seq}: switched to generation ${short(r.generation)} (previous: ${short(r.previousGeneration)}); ${traffic}.`;
  }
  return `${r.site}: fleet seq ${r.seq}: generation ${short(r.generation)} is up to date${r.pinned ? ' (pinned by a rollback)' : ''}; ${traffic}.`;
}

export function describeDrift(r: SyncResult): string[] {
  const d = r.drift;
  if (!d || d.changed.length + d.missing.length + d.extra.length === 0) return [];
  const lines = [
    `Drift: ${d.changed.length} changed, ${d.missing.length} missing, ${d.extra.length} extra; repaired ${d.repaired.length}.`,
  ];
  if (d.unrepaired.length > 0) lines.push(`Not repaired (offline): ${d.unrepaired.join(', ')}`);
  return lines;
}

export function describeStatus(s: SiteStatus): string[] {
  if (!s.synced) return [`Site ${s.site}: not synced yet (data directory ${s.dataDir}).`];
  const lines = [
    `Site ${s.site}: fleet seq ${s.seq} from ${s.registry ?? 'unknown registry'}`,
    `  generation: ${short(s.generation)}${s.upToDate ? '' : ` (assigned: ${short(s.assignedGeneration)}, not installed yet)`}` +
      `${s.pin ? ` pinned by a rollback since ${s.pin.since}` : ''}`,
    `  previous:   ${short(s.previousGeneration)}`,
  ];
  for (const a of s.artifacts)
    lines.push(`  ${a.slot.padEnd(8)} ${a.ref} (${a.files} file(s), ${formatBytes(a.bytes)})`);
  for (const ix of s.indexes) {
    const age =
      ix.ageSeconds === null
        ? 'no document time'
        : `newest document ${formatAge(ix.ageSeconds)} old (${ix.newestDocumentTime})`;
    lines.push(
      `  index age ${ix.name}: ${ix.ref}, ${ix.passages} passage(s) of ${ix.documents} document(s), ${age}`,
    );
  }
  if (s.freshness) {
    lines.push(
      s.freshness.frozen
        ? `  freshness:  FROZEN: the fleet head (seq ${s.freshness.headSeq}) expired at ${s.freshness.expires}; nothing new is installed`
        : `  freshness:  head seq ${s.freshness.headSeq} valid until ${s.freshness.expires}`,
    );
  }
  if (s.lastSync) {
    const err = s.lastSync.error ? `: ${s.lastSync.error.message}` : '';
    lines.push(`  last sync:  ${s.lastSync.time} ${s.lastSync.result}${err}`);
  }
  if (s.drift) {
    const found = s.drift.changed.length + s.drift.missing.length + s.drift.extra.length;
    lines.push(
      found === 0
        ? `  drift:      none (${s.drift.checked} file(s) checked)${s.drift.lastRepaired.length ? `; last sync repaired ${s.drift.lastRepaired.length}` : ''}`
        : `  drift:      ${[...s.drift.changed, ...s.drift.missing, ...s.drift.extra].join(', ')} (the next sync repairs it)`,
    );
  }
  return lines;
}

export function describeRollback(r: RollbackResult): string[] {
  return [
    `${r.site}: rolled back to generation ${r.generation} (previous: ${r.previous}).`,
    r.pin
      ? 'Pinned: syncs keep this generation until the fleet assigns this site something new.'
      : 'This is the generation the fleet assigns; no pin needed.',
  ];
}
