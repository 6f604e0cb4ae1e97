/**
 * Is a daemon running, where, and does it answer? Combines the pid file, the process check and a
 * health request, for status commands and for callers that need a running daemon's address.
 */
import { isSameProcess } from './process-identity.js';
import { readPidIdentity, readState, runFiles } from './run-files.js';

export interface DaemonStatus {
  name: string;
  /** running: process alive; stale: a pid file whose process is gone; stopped: no pid file. */
  state: 'running' | 'stale' | 'stopped';
  pid: number | undefined;
  url: string | undefined;
  /** The health check answered 2xx (undefined when not running or no address yet). */
  healthy: boolean | undefined;
  info: Record<string, unknown> | undefined;
  logFile: string;
}

export async function daemonStatus(
  name: string,
  runDir: string,
  healthPath = '/healthz',
): Promise<DaemonStatus> {
  const files = runFiles(runDir, name);
  const holder = readPidIdentity(files);
  const pid = holder?.pid;
  const state = readState(files);
  const ours = state?.pid === pid ? state : undefined;
  const base = { name, pid, logFile: files.logFile, info: ours?.info };
  if (pid === undefined) return { ...base, state: 'stopped', url: undefined, healthy: undefined };
  if (!isSameProcess(pid, holder?.startTime, holder?.command))
    return { ...base, state: 'stale', url: undefined, healthy: undefined };
  const url = ours?.url;
  let healthy: boolean | undefined;
  if (url) {
    try {
      const res = await fetch(url + healthPath, { signal: AbortSignal.timeout(2000) });
      await res.arrayBuffer();
      healthy = res.ok;
    } catch {
      healthy = false;
    }
  }
  return { ...base, state: 'running', url, healthy };
}
