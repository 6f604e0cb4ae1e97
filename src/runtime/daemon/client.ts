/**
 * The client side of the site daemon: where its run files live (`<data-dir>/run/site.{pid,json,log}`),
 * starting it detached (re-running the CLI with `--foreground` and waiting for `/readyz`), stopping
 * it, asking a running one for `/v1/status`, and reading or following its log. Light on purpose:
 * `site status|down|logs` import this without loading the runtime (ONNX Runtime) itself.
 */
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Io } from '../../foundation/output.js';
import { logTail, runFiles } from '../../supervisor/run-files.js';
import { startDaemon, type DaemonStartResult } from '../../supervisor/start.js';
import { daemonStatus, type DaemonStatus } from '../../supervisor/status.js';
import { stopDaemon, type DaemonStopResult } from '../../supervisor/stop.js';
import { VERIFIER_TOKEN_ENV } from '../../verifier/protocol.js';
import { siteDataPaths } from '../../site/data-dir.js';
import type { SiteRuntimeStatus } from '../contract.js';

export const SITE_DAEMON = 'site';
export const SITE_TOKEN_ENV = 'EDGECTL_SITE_TOKEN';

export function siteRunDir(dataDir: string): string {
  return siteDataPaths(dataDir).run;
}

export interface SiteUpResult {
  status: DaemonStartResult['status'] | 'stopped';
  site: string;
  pid: number;
  url: string | undefined;
  dataDir: string;
  logFile: string;
  startupMs: number;
  /** What the daemon recorded: generation, verifier, listen. */
  info: Record<string, unknown> | undefined;
  staleRemoved?: number | undefined;
}

export interface DetachedSiteOptions {
  site: string;
  dataDir: string;
  /** The CLI entry (bin/run.js) and the arguments of `site up <name> --foreground ...`. */
  entry: string;
  args: string[];
  cwd: string;
  bearerToken: string | undefined;
  /** The verifier's bearer token, handed to the child through the environment too. */
  verifierToken?: string | undefined;
  readyTimeoutMs: number;
}

/** Starts `<entry> site up <name> --foreground ...` detached and waits until it answers /readyz. */
export async function startSiteDaemon(opts: DetachedSiteOptions, io: Io): Promise<SiteUpResult> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  // The token goes through the environment: arguments are visible to every user in `ps`.
  if (opts.bearerToken) env[SITE_TOKEN_ENV] = opts.bearerToken;
  if (opts.verifierToken) env[VERIFIER_TOKEN_ENV] = opts.verifierToken;
  const r = await startDaemon(
    {
      name: SITE_DAEMON,
      runDir: siteRunDir(opts.dataDir),
      entry: opts.entry,
      args: opts.args,
      cwd: opts.cwd,
      env,
      healthPath: '/readyz',
      readyTimeoutMs: opts.readyTimeoutMs,
    },
    io,
  );
  return {
    status: r.status,
    site: opts.site,
    pid: r.pid,
    url: r.url,
    dataDir: opts.dataDir,
    logFile: r.logFile,
    startupMs: r.startupMs,
    info: r.info,
    staleRemoved: r.staleRemoved,
  };
}

export function stopSiteDaemon(dataDir: string, graceMs: number, io: Io): Promise<DaemonStopResult> {
  return stopDaemon({ name: SITE_DAEMON, runDir: siteRunDir(dataDir), graceMs }, io);
}

export interface SiteDaemonView {
  daemon: DaemonStatus;
  /** The daemon's `/v1/status` (null when not running or it did not answer). */
  status: SiteRuntimeStatus | null;
  error: string | null;
}

/** The run files' view of the daemon plus its `/v1/status` when it runs. */
export async function readSiteDaemon(dataDir: string, token: string | undefined): Promise<SiteDaemonView> {
  const daemon = await daemonStatus(SITE_DAEMON, siteRunDir(dataDir), '/healthz');
  if (daemon.state !== 'running' || !daemon.url) return { daemon, status: null, error: null };
  try {
    const res = await fetch(`${daemon.url}/v1/status`, {
      signal: AbortSignal.timeout(2000),
      ...(token ? { headers: { authorization: `Bearer ${token}` } } : {}),
    });
    if (!res.ok) {
      await res.arrayBuffer();
      return { daemon, status: null, error: `/v1/status answered ${res.status}` };
    }
    return { daemon, status: (await res.json()) as SiteRuntimeStatus, error: null };
  } catch (err) {
    return { daemon, status: null, error: err instanceof Error ? err.message : String(err) };
  }
}

/** The last `lines` lines of the daemon log (empty when there is none). */
export function siteLogTail(dataDir: string, lines: number): string[] {
  return logTail(runFiles(siteRunDir(dataDir), SITE_DAEMON), 0, lines);
}

export function siteLogFile(dataDir: string): string {
  return runFiles(siteRunDir(dataDir), SITE_DAEMON).logFile;
}

/**
 * Follows the log like `tail -f`: writes what is appended (also across a truncation or a new
 * file) until `signal` aborts.
 */
export async function followLog(
  file: string,
  from: number,
  write: (chunk: string) => void,
  signal: AbortSignal,
  pollMs = 200,
): Promise<void> {
  let pos = from;
  const buf = Buffer.alloc(64 * 1024);
  while (!signal.aborted) {
    let size = -1;
    try {
      size = statSync(file).size;
    } catch {
      size = -1;
    }
    if (size >= 0 && size < pos) pos = 0;
    if (size > pos) {
      const fd = openSync(file, 'r');
      try {
        while (pos < size) {
          const n = readSync(fd, buf, 0, Math.min(buf.length, size - pos), pos);
          if (n <= 0) break;
          write(buf.subarray(0, n).toString('utf8'));
          pos += n;
        }
      } finally {
        closeSync(fd);
      }
    }
    try {
      await sleep(pollMs, undefined, { signal });
    } catch {
      break;
    }
  }
}
