/**
 * The `site status --watch` live view (ink) and its plain line render the same numbers from one
 * frame: a running daemon's /v1/status, a daemon whose status did not answer, and a stopped one.
 */
import { render } from 'ink-testing-library';
import { createElement } from 'react';
import { expect, it } from 'vitest';
import type { SiteRuntimeStatus } from '../../../src/runtime/contract.js';
import type { SiteDaemonView } from '../../../src/runtime/daemon/client.js';
import { describeDaemon, formatWatchLine, type WatchFrame } from '../../../src/ui/site-status-format.js';
import { SiteStatusView } from '../../../src/ui/site-status-view.js';

const status: SiteRuntimeStatus = {
  site: 'store-001',
  pid: 4242,
  startedAt: '2026-11-22T10:00:00.000Z',
  url: 'http://127.0.0.1:8081',
  dataDir: '/var/lib/edgectl/store-001',
  registry: 'file:/srv/registry',
  generation: {
    id: '0123456789abcdef0123',
    context: {
      fleetSeq: 7,
      refs: {
        model: { ref: 'model/draft@1.0.0', manifestDigest: `sha256:${'a'.repeat(64)}` },
        adapters: [{ ref: 'adapter/support@1.1.0', manifestDigest: `sha256:${'b'.repeat(64)}` }],
      },
    },
  },
  sync: {
    state: 'offline',
    appliedSeq: 7,
    lastSyncAt: '2026-11-22T10:01:00.000Z',
    lastError: 'registry unreachable',
  },
  feedback: { spooled: 2, uploaded: 11, lastUploadAt: null, lastError: 'EIO' },
  runtime: {
    inFlight: 3,
    queued: 1,
    requests: { edge: 5, speculative: 40, cloud: 2, blocked: 1, errors: 0, rejected: 4 },
    acceptance: 0.8125,
    ttftP95Ms: 42.4,
    e2eP95Ms: 900,
    verifier: { url: 'http://verifier:8700', breaker: 'half-open', lastError: 'timeout' },
  },
  swap: { swaps: 3, draining: [{ id: 'ffffffffffffffffffff', leases: 2 }], lastFailure: null },
};

const running: SiteDaemonView = {
  daemon: {
    name: 'site',
    state: 'running',
    pid: 4242,
    url: status.url,
    healthy: true,
    info: undefined,
    logFile: '/x/run/site.log',
  },
  status,
  error: null,
};
const frame = (view: SiteDaemonView): WatchFrame => ({
  site: 'store-001',
  at: new Date('2026-11-22T10:02:00.000Z'),
  view,
});

it('renders a running daemon in the live view', () => {
  const { lastFrame, unmount } = render(createElement(SiteStatusView, { frame: frame(running) }));
  const out = lastFrame() ?? '';
  unmount();
  expect(out).toContain('Site store-001');
  expect(out).toMatch(/sync\s+offline applied seq 7/);
  expect(out).toContain('0123456789abcdef0123 fleet seq 7 (draining ffffffffffffffffffff: 2)');
  expect(out).toContain('model/draft@1.0.0  adapter/support@1.1.0');
  expect(out).toContain('48 total: edge 5, speculative 40, cloud 2, blocked 1');
  expect(out).toContain('errors 0, rejected 4');
  expect(out).toContain('81.3%');
  expect(out).toContain('TTFT p95 42 ms');
  expect(out).toMatch(/verifier\s+http:\/\/verifier:8700 half-open timeout/);
  expect(out).toContain('11 uploaded, 2 spooled (EIO)');
});

it('renders a stopped daemon and one whose status did not answer', () => {
  const stopped = render(
    createElement(SiteStatusView, {
      frame: frame({
        ...running,
        daemon: { ...running.daemon, state: 'stopped', pid: undefined },
        status: null,
      }),
    }),
  );
  expect(stopped.lastFrame()).toContain('daemon not running');
  stopped.unmount();
  const mute = render(
    createElement(SiteStatusView, { frame: frame({ ...running, status: null, error: 'timeout' }) }),
  );
  expect(mute.lastFrame()).toContain('daemon running (pid 4242) but /v1/status did not answer: timeout');
  mute.unmount();
});

it('formats the plain watch line and the status lines from the same frame', () => {
  expect(formatWatchLine(frame(running))).toBe(
    '2026-11-22T10:02:00.000Z store-001 sync=offline seq=7 generation=0123456789abcdef0123 edge=5 ' +
      'speculative=40 cloud=2 blocked=1 errors=0 rejected=4 inflight=3 acceptance=0.813 ttft_p95_ms=42 ' +
      'verifier=half-open feedback_uploaded=11 feedback_spooled=2',
  );
  const lines = describeDaemon(running);
  expect(lines[0]).toBe(
    '  daemon:     running (pid 4242) at http://127.0.0.1:8081 since 2026-11-22T10:00:00.000Z',
  );
  expect(lines).toContain('  draining:   ffffffffffffffffffff (2)');
  expect(
    formatWatchLine(frame({ ...running, daemon: { ...running.daemon, state: 'stale' }, status: null })),
  ).toBe('2026-11-22T10:02:00.000Z store-001 daemon=stale');
});
