/**
 * `site status --watch`: a live ink view of one site daemon, refreshed every second: sync state and
 * applied seq, the generation serving (and replaced ones still draining), requests by route,
 * acceptance, TTFT p95, verifier health and feedback. Off a terminal the same refresh prints one
 * plain line (site-status-format.ts) instead, so logs and CI get something greppable.
 */
import { Box, Text, render, useApp, useInput } from 'ink';
import { markInterrupted } from '../cli/interrupt.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { useEffect, useState, type ReactNode } from 'react';
import type { SiteRuntimeStatus } from '../runtime/contract.js';
import { formatWatchLine, totalRequests, type WatchFrame } from './site-status-format.js';

function Row(props: { label: string; children: ReactNode }) {
  return (
    <Box>
      <Box width={12}>
        <Text dimColor>{props.label}</Text>
      </Box>
      <Text>{props.children}</Text>
    </Box>
  );
}

const pct = (v: number | null) => (v === null ? '-' : `${(v * 100).toFixed(1)}%`);
const ms = (v: number | null) => (v === null ? '-' : `${Math.round(v)} ms`);

function syncColor(state: SiteRuntimeStatus['sync']['state']): string {
  if (state === 'ok') return 'green';
  if (state === 'syncing' || state === 'starting') return 'cyan';
  if (state === 'offline') return 'yellow';
  return 'red';
}

function breakerColor(state: string): string {
  return state === 'closed' ? 'green' : state === 'half-open' ? 'yellow' : 'red';
}

function Running({ s }: { s: SiteRuntimeStatus }) {
  const r = s.runtime.requests;
  return (
    <Box flexDirection="column">
      <Row label="address">
        {s.url} (pid {s.pid}, since {s.startedAt})
      </Row>
      <Row label="sync">
        <Text color={syncColor(s.sync.state)}>{s.sync.state}</Text>
        {` applied seq ${s.sync.appliedSeq ?? '-'}, last ${s.sync.lastSyncAt ?? 'never'}`}
        {s.sync.lastError ? <Text color="yellow">{` (${s.sync.lastError})`}</Text> : null}
      </Row>
      <Row label="generation">
        <Text bold>{s.generation?.id ?? 'none'}</Text>
        {s.generation ? ` fleet seq ${s.generation.context.fleetSeq}` : ''}
        {s.swap && s.swap.draining.length > 0
          ? ` (draining ${s.swap.draining.map((d) => `${d.id}: ${d.leases}`).join(', ')})`
          : ''}
      </Row>
      {s.generation ? (
        <Row label="refs">
          {[
            s.generation.context.refs.model?.ref,
            ...s.generation.context.refs.adapters.map((a) => a.ref),
            s.generation.context.refs.policy?.ref,
          ]
            .filter(Boolean)
            .join('  ')}
        </Row>
      ) : null}
      {s.swap?.lastFailure ? (
        <Row label="load error">
          <Text color="red">{`${s.swap.lastFailure.id}: ${s.swap.lastFailure.error}`}</Text>
        </Row>
      ) : null}
      <Row label="requests">
        {`${totalRequests(s)} total: edge ${r.edge}, speculative ${r.speculative}, cloud ${r.cloud}, blocked ${r.blocked}`}
        {r.errors + r.rejected > 0 ? (
          <Text color="red">{`, errors ${r.errors}, rejected ${r.rejected}`}</Text>
        ) : (
          ''
        )}
      </Row>
      <Row label="load">{`in flight ${s.runtime.inFlight}, queued ${s.runtime.queued}`}</Row>
      <Row label="acceptance">{pct(s.runtime.acceptance)}</Row>
      <Row label="latency">{`TTFT p95 ${ms(s.runtime.ttftP95Ms)}, end-to-end p95 ${ms(s.runtime.e2eP95Ms)}`}</Row>
      <Row label="verifier">
        {`${s.runtime.verifier.url ?? 'none'} `}
        <Text color={breakerColor(s.runtime.verifier.breaker)}>{s.runtime.verifier.breaker}</Text>
        {s.runtime.verifier.lastError ? (
          <Text color="yellow">{` ${s.runtime.verifier.lastError}`}</Text>
        ) : null}
      </Row>
      <Row label="feedback">
        {`${s.feedback.uploaded} uploaded, ${s.feedback.spooled} spooled`}
        {s.feedback.lastError ? <Text color="yellow">{` (${s.feedback.lastError})`}</Text> : null}
      </Row>
    </Box>
  );
}

/** One frame of the live view (exported for tests). */
export function SiteStatusView({ frame }: { frame: WatchFrame | undefined }) {
  if (!frame) return <Text dimColor>reading status...</Text>;
  const { view } = frame;
  return (
    <Box flexDirection="column">
      <Box>
        <Text bold>{`Site ${frame.site}`}</Text>
        <Text dimColor>{`  ${frame.at.toISOString()}  (q to quit)`}</Text>
      </Box>
      {view.daemon.state !== 'running' ? (
        <Text color="yellow">
          {view.daemon.state === 'stale'
            ? `daemon not running (stale pid file, pid ${view.daemon.pid})`
            : 'daemon not running'}
        </Text>
      ) : view.status ? (
        <Running s={view.status} />
      ) : (
        <Text color="yellow">{`daemon running (pid ${view.daemon.pid}) but /v1/status did not answer${view.error ? `: ${view.error}` : ''}`}</Text>
      )}
    </Box>
  );
}

function WatchApp(props: { poll: () => Promise<WatchFrame>; intervalMs: number; signal: AbortSignal }) {
  const { exit } = useApp();
  const [frame, setFrame] = useState<WatchFrame | undefined>(undefined);
  useInput((input, key) => {
    if (key.ctrl && input === 'c') markInterrupted();
    if (input === 'q' || key.escape || (key.ctrl && input === 'c')) exit();
  });
  useEffect(() => {
    let stopped = false;
    let timer: NodeJS.Timeout | undefined;
    const tick = async () => {
      const f = await props.poll();
      if (stopped) return;
      setFrame(f);
      timer = setTimeout(() => void tick(), props.intervalMs);
    };
    void tick();
    const onAbort = () => exit();
    props.signal.addEventListener('abort', onAbort);
    return () => {
      stopped = true;
      clearTimeout(timer);
      props.signal.removeEventListener('abort', onAbort);
    };
  }, []);
  return <SiteStatusView frame={frame} />;
}

export interface WatchOptions {
  poll: () => Promise<WatchFrame>;
  interactive: boolean;
  intervalMs?: number;
  signal: AbortSignal;
  /** Plain mode output (stdout). */
  write?: (line: string) => void;
}

/** Runs the watch until `signal` aborts (or q in the live view); returns the last frame. */
export async function watchSiteStatus(opts: WatchOptions): Promise<WatchFrame | undefined> {
  const intervalMs = opts.intervalMs ?? 1000;
  if (opts.interactive) {
    const app = render(<WatchApp poll={opts.poll} intervalMs={intervalMs} signal={opts.signal} />, {
      // Ctrl-C is read as a key (above), so the command can exit 130.
      exitOnCtrlC: false,
    });
    await app.waitUntilExit();
    return undefined;
  }
  const write = opts.write ?? ((l: string) => process.stdout.write(`${l}\n`));
  let last: WatchFrame | undefined;
  while (!opts.signal.aborted) {
    last = await opts.poll();
    write(formatWatchLine(last));
    await sleep(intervalMs, undefined, { signal: opts.signal }).catch(() => undefined);
  }
  return last;
}
