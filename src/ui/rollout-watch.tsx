/**
 * `rollout status --watch` on a terminal: a live ink tree of the rollout, refreshed every interval
 * from the fleet log and the feedback at hand: waves (done, current, pending) → sites (their ref,
 * windows, requests, errors, acceptance) → the current step's metrics with their values per arm,
 * evidence against the boundary and samples, then the latest events. It closes by itself when the
 * rollout ends (or on q). Off a terminal the command prints the same tree as plain text
 * (rollout/render.ts) instead.
 */
import { Box, Text, render, useApp, useInput } from 'ink';
import { markInterrupted } from '../cli/interrupt.js';
import { useEffect, useState } from 'react';
import type { Judgement } from '../rollout/judge/types.js';
import { judgementLine } from '../rollout/render.js';
import { rolloutStatus, type RolloutReport, type StatusOptions } from '../rollout/service.js';

const STATUS_COLOR: Record<string, string> = {
  running: 'cyan',
  paused: 'yellow',
  promoted: 'green',
  aborted: 'red',
  undone: 'magenta',
};

function verdictColor(j: Judgement): string {
  return j.verdict === 'pass' ? 'green' : j.verdict === 'fail' ? 'red' : 'yellow';
}

/** One frame of the view (exported for tests). */
export function RolloutTree({
  report,
  error,
}: {
  report: RolloutReport | undefined;
  error?: string | undefined;
}) {
  if (!report)
    return <Text dimColor>{error ? `cannot read the rollout: ${error}` : 'reading the fleet log...'}</Text>;
  const v = report.rollout;
  const sites = new Map((report.live?.sites ?? []).map((s) => [s.site, s]));
  const judgements = report.live?.judgements ?? report.judgements.at(-1)?.judgements ?? [];
  return (
    <Box flexDirection="column">
      <Box>
        <Text bold>{`Rollout ${v.id} `}</Text>
        <Text>{`${v.candidate} on [${v.selector || 'all sites'}] `}</Text>
        <Text color={STATUS_COLOR[v.status] ?? 'white'} bold>
          {v.status}
        </Text>
        <Text dimColor>{`  fleet seq ${report.fleetSeq}  (q to quit)`}</Text>
      </Box>
      <Text dimColor>{report.reason}</Text>
      {v.shadow ? (
        <Text color={v.shadow.state === 'current' ? 'cyan' : v.shadow.state === 'done' ? 'green' : 'red'}>
          {`${v.shadow.state === 'done' ? '✓' : v.shadow.state === 'current' ? '▶' : '✗'} shadow step: ${v.shadow.sites.length} sites (${v.shadow.state}; verified, never served)`}
        </Text>
      ) : null}
      {v.waves.map((w) => (
        <Box key={w.step} flexDirection="column">
          <Text color={w.state === 'current' ? 'cyan' : w.state === 'done' ? 'green' : 'gray'}>
            {`${w.state === 'done' ? '✓' : w.state === 'current' ? '▶' : '·'} wave ${w.step}: ${w.size} sites`}
          </Text>
          {w.sites.map((s) => {
            const l = sites.get(s);
            const canary = v.canary.includes(s);
            return (
              <Box key={s} marginLeft={4}>
                <Box width={22}>
                  <Text color={canary ? 'cyan' : undefined}>{s}</Text>
                </Box>
                <Box width={34}>
                  <Text>{l?.ref ?? (canary ? v.candidate : (v.previous[s] ?? '(none)'))}</Text>
                </Box>
                <Text dimColor>
                  {l
                    ? `${l.windows} win  ${l.requests} req  ${l.errors} err  acc ${l.acceptance === null ? '-' : l.acceptance.toFixed(3)}`
                    : ''}
                </Text>
              </Box>
            );
          })}
        </Box>
      ))}
      {judgements.length > 0 ? (
        <Box flexDirection="column" marginTop={1}>
          <Text bold>
            {report.live
              ? `${v.shadow?.state === 'current' ? 'Shadow step' : `Step ${v.step}`} metrics (live)`
              : 'Last judgement'}
          </Text>
          {judgements.map((j) => (
            <Box key={j.metric} flexDirection="column" marginLeft={2}>
              <Text color={verdictColor(j)}>{judgementLine(j)}</Text>
              <Text dimColor>{`    ${j.reason}`}</Text>
            </Box>
          ))}
        </Box>
      ) : null}
      <Box flexDirection="column" marginTop={1}>
        <Text bold>Events</Text>
        {report.events.slice(-6).map((e) => (
          <Text key={`${e.seq}-${e.op}`} dimColor>{`  #${e.seq} ${e.summary}`}</Text>
        ))}
      </Box>
    </Box>
  );
}

function WatchApp(props: {
  target: StatusOptions;
  intervalMs: number;
  done: (r: RolloutReport | undefined) => void;
}) {
  const { exit } = useApp();
  const [report, setReport] = useState<RolloutReport | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  useInput((input, key) => {
    if (key.ctrl && input === 'c') markInterrupted();
    if (input === 'q' || key.escape || (key.ctrl && input === 'c')) exit();
  });
  useEffect(() => {
    let stopped = false;
    let timer: NodeJS.Timeout | undefined;
    const poll = async () => {
      try {
        const r = await rolloutStatus(props.target);
        if (stopped) return;
        setReport(r);
        setError(undefined);
        props.done(r);
        if (r.rollout.status !== 'running') {
          setTimeout(() => exit(), 50);
          return;
        }
      } catch (err) {
        if (stopped) return;
        setError(err instanceof Error ? err.message : String(err));
      }
      timer = setTimeout(() => void poll(), props.intervalMs);
    };
    void poll();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, []);
  return <RolloutTree report={report} error={error} />;
}

/** Runs the live view until the rollout ends or the user quits; returns the last report. */
export async function watchRollout(target: StatusOptions, intervalMs: number): Promise<RolloutReport> {
  let last: RolloutReport | undefined;
  const app = render(<WatchApp target={target} intervalMs={intervalMs} done={(r) => (last = r)} />, {
    // Ctrl-C is read as a key (above), so the command can exit 130.
    exitOnCtrlC: false,
  });
  await app.waitUntilExit();
  return last ?? (await rolloutStatus(target));
}
