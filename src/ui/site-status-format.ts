/**
 * What `site status` shows about a running site daemon, as data and as text: the frame a watch
 * refresh produces (the run files' view plus `/v1/status`), the human lines for a one-shot status,
 * and the single plain line `--watch` prints each second when stdout is not a terminal. Pure, so
 * the ink view (site-status-view.tsx) and the plain renderer show the same numbers.
 */
import type { SiteDaemonView } from '../runtime/daemon/client.js';
import type { SiteRuntimeStatus } from '../runtime/contract.js';

export interface WatchFrame {
  site: string;
  at: Date;
  view: SiteDaemonView;
}

function pct(v: number | null): string {
  return v === null ? '-' : `${(v * 100).toFixed(1)}%`;
}

function ms(v: number | null): string {
  return v === null ? '-' : `${Math.round(v)} ms`;
}

function shortId(id: string | null | undefined): string {
  return id ?? 'none';
}

export function totalRequests(s: SiteRuntimeStatus): number {
  const r = s.runtime.requests;
  return r.edge + r.speculative + r.cloud + r.blocked;
}

/** Lines appended to `site status` when the daemon runs (or the reason it does not). */
export function describeDaemon(view: SiteDaemonView): string[] {
  const d = view.daemon;
  if (d.state === 'stopped') return ['  daemon:     not running'];
  if (d.state === 'stale') return [`  daemon:     not running (stale pid file, pid ${d.pid})`];
  const s = view.status;
  if (!s) {
    return [
      `  daemon:     running (pid ${d.pid}${d.url ? `, ${d.url}` : ', starting'})` +
        `${view.error ? `; /v1/status: ${view.error}` : ''}`,
    ];
  }
  const r = s.runtime.requests;
  const lines = [
    `  daemon:     running (pid ${s.pid}) at ${s.url} since ${s.startedAt}`,
    `  serving:    ${shortId(s.generation?.id)}${s.generation ? ` (fleet seq ${s.generation.context.fleetSeq})` : ''}`,
    `  sync:       ${s.sync.state}, applied seq ${s.sync.appliedSeq ?? '-'}, last ${s.sync.lastSyncAt ?? 'never'}` +
      `${s.sync.lastError ? ` (${s.sync.lastError})` : ''}`,
    `  requests:   edge ${r.edge}, speculative ${r.speculative}, cloud ${r.cloud}, blocked ${r.blocked}, ` +
      `errors ${r.errors}, rejected ${r.rejected}; in flight ${s.runtime.inFlight}, queued ${s.runtime.queued}`,
    `  quality:    acceptance ${pct(s.runtime.acceptance)}, TTFT p95 ${ms(s.runtime.ttftP95Ms)}, e2e p95 ${ms(s.runtime.e2eP95Ms)}`,
    `  verifier:   ${s.runtime.verifier.url ?? 'none'} (breaker ${s.runtime.verifier.breaker})` +
      `${s.runtime.verifier.lastError ? `; last error: ${s.runtime.verifier.lastError}` : ''}`,
    `  feedback:   ${s.feedback.uploaded} uploaded, ${s.feedback.spooled} spooled` +
      `${s.feedback.lastError ? `; last error: ${s.feedback.lastError}` : ''}`,
  ];
  if (s.swap && s.swap.draining.length > 0)
    lines.push(`  draining:   ${s.swap.draining.map((d2) => `${d2.id} (${d2.leases})`).join(', ')}`);
  if (s.swap?.lastFailure) lines.push(`  load error: ${s.swap.lastFailure.id}: ${s.swap.lastFailure.error}`);
  return lines;
}

/** One line per refresh for `--watch` off a terminal. */
export function formatWatchLine(frame: WatchFrame): string {
  const { view } = frame;
  const t = frame.at.toISOString();
  if (view.daemon.state !== 'running') return `${t} ${frame.site} daemon=${view.daemon.state}`;
  const s = view.status;
  if (!s)
    return `${t} ${frame.site} daemon=running pid=${view.daemon.pid} status=unavailable${view.error ? ` error=${JSON.stringify(view.error)}` : ''}`;
  const r = s.runtime.requests;
  return [
    t,
    frame.site,
    `sync=${s.sync.state}`,
    `seq=${s.sync.appliedSeq ?? '-'}`,
    `generation=${shortId(s.generation?.id)}`,
    `edge=${r.edge}`,
    `speculative=${r.speculative}`,
    `cloud=${r.cloud}`,
    `blocked=${r.blocked}`,
    `errors=${r.errors}`,
    `rejected=${r.rejected}`,
    `inflight=${s.runtime.inFlight}`,
    `acceptance=${s.runtime.acceptance === null ? '-' : s.runtime.acceptance.toFixed(3)}`,
    `ttft_p95_ms=${s.runtime.ttftP95Ms === null ? '-' : Math.round(s.runtime.ttftP95Ms)}`,
    `verifier=${s.runtime.verifier.breaker}`,
    `feedback_uploaded=${s.feedback.uploaded}`,
    `feedback_spooled=${s.feedback.spooled}`,
  ].join(' ');
}
