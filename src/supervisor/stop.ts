/**
 * Stopping a daemon started by start.ts: SIGTERM (the daemon drains and removes its own run
 * files), wait up to a grace period, then SIGKILL and clean up after it. Stopping something that is
 * not running is not an error — `down` is idempotent so scripts can call it unconditionally — but
 * the result says what was found (not running, stale pid file, stopped, killed).
 */
import { TimeoutError } from '../foundation/errors.js';
import type { Io } from '../foundation/output.js';
import { isAlive, isSameProcess, signal } from './process-identity.js';
import { readPidIdentity, readState, removeRunFiles, runFiles } from './run-files.js';

export interface DaemonStopOptions {
  name: string;
  runDir: string;
  /** How long to wait after SIGTERM before SIGKILL. */
  graceMs: number;
}

export interface DaemonStopResult {
  status: 'stopped' | 'killed' | 'not-running' | 'stale-removed';
  name: string;
  pid: number | undefined;
  url: string | undefined;
  durationMs: number;
}

const POLL_MS = 25;

export async function stopDaemon(opts: DaemonStopOptions, io: Io): Promise<DaemonStopResult> {
  const t0 = performance.now();
  const files = runFiles(opts.runDir, opts.name);
  const holder = readPidIdentity(files);
  const pid = holder?.pid;
  const state = readState(files);
  const url = state?.pid === pid ? state?.url : undefined;
  const done = (status: DaemonStopResult['status']): DaemonStopResult => ({
    status,
    name: opts.name,
    pid,
    url,
    durationMs: Math.round(performance.now() - t0),
  });
  if (pid === undefined) {
    removeRunFiles(files, undefined);
    return done('not-running');
  }
  if (!isSameProcess(pid, holder?.startTime, holder?.command)) {
    // Dead, reused by another program, or unprovable: never signal it.
    removeRunFiles(files, pid);
    io.log('warn', `removed stale ${opts.name} pid file (pid ${pid} is not ${opts.name})`);
    return done('stale-removed');
  }

  io.log('info', `stopping ${opts.name} (pid ${pid})`);
  signal(pid, 'SIGTERM');
  if (await waitForExit(pid, opts.graceMs)) {
    removeRunFiles(files, pid);
    return done('stopped');
  }
  io.log('warn', `${opts.name} (pid ${pid}) did not stop within ${opts.graceMs} ms; sending SIGKILL`);
  signal(pid, 'SIGKILL');
  if (!(await waitForExit(pid, 5000))) {
    throw new TimeoutError(`${opts.name} (pid ${pid}) survived SIGKILL`, {
      suggestion: `Check the process with: ps -p ${pid}`,
    });
  }
  removeRunFiles(files, pid);
  return done('killed');
}

async function waitForExit(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (isAlive(pid)) {
    if (performance.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
  return true;
}
