/**
 * The daemon side of the contract with start.ts and stop.ts: run a service in this process until
 * SIGTERM/SIGINT/SIGHUP. It claims the pid file (refusing when a live daemon holds it), records
 * `starting` then `ready` with the bound address in the state file, drains the service on a signal
 * with a hard deadline, and removes the run files only while they are still its own. The same path
 * serves `--foreground` under systemd (readiness by sd_notify when NOTIFY_SOCKET is set) or in a
 * container, and the detached child of `up`.
 */
import { ConflictError } from '../foundation/errors.js';
import type { Io } from '../foundation/output.js';
import { isSameProcess, processStartTime } from './process-identity.js';
import { notifySystemd } from './sd-notify.js';
import {
  claimPidFile,
  readPidIdentity,
  readState,
  removeRunFiles,
  runFiles,
  writeState,
} from './run-files.js';

export interface RunningService {
  url: string;
  host: string;
  port: number;
  info?: Record<string, unknown>;
  /** Stops accepting work, drains, releases resources. */
  close(): Promise<void>;
}

export interface ForegroundOptions {
  name: string;
  runDir: string;
  io: Io;
  /** Starts the service; its errors propagate (the run files are cleaned up first). */
  start: () => Promise<RunningService>;
  /** Called once the service is ready and recorded. */
  onReady?: (svc: RunningService) => void;
  /** The command that stops a running instance, for the "already running" hint. */
  stopCommand?: string;
  /** Past this, a hung drain exits the process with code 1. */
  shutdownTimeoutMs?: number;
}

export interface ForegroundResult {
  signal: NodeJS.Signals;
  url: string;
  pid: number;
}

const SIGNALS: NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP'];

export async function runForeground(opts: ForegroundOptions): Promise<ForegroundResult> {
  const files = runFiles(opts.runDir, opts.name);
  claimOrRefuse(files, opts.name, opts.stopCommand ?? `edgectl ${opts.name} down`);
  const base = {
    name: opts.name,
    pid: process.pid,
    processStart: processStartTime('self'),
    startedAt: new Date().toISOString(),
    logFile: files.logFile,
  };
  // Signals that arrive while loading must still stop us cleanly once start() returns.
  let received: NodeJS.Signals | undefined;
  let wake: ((sig: NodeJS.Signals) => void) | undefined;
  const handlers = SIGNALS.map((sig) => {
    const h = () => {
      received ??= sig;
      wake?.(sig);
    };
    process.on(sig, h);
    return [sig, h] as const;
  });
  const unhook = () => {
    for (const [sig, h] of handlers) process.off(sig, h);
  };

  let svc: RunningService;
  try {
    writeState(files, { ...base, status: 'starting' });
    svc = await opts.start();
  } catch (err) {
    unhook();
    removeRunFiles(files, process.pid);
    throw err;
  }
  writeState(files, {
    ...base,
    status: 'ready',
    url: svc.url,
    host: svc.host,
    port: svc.port,
    info: svc.info,
  });
  opts.onReady?.(svc);
  // Under a Type=notify unit: `systemctl start` returns now, not before the API answers.
  await notifySystemd('ready', opts.io);

  const sig = received ?? (await new Promise<NodeJS.Signals>((resolve) => (wake = resolve)));
  opts.io.log('info', `${opts.name}: received ${sig}, shutting down`);
  void notifySystemd('stopping', opts.io);
  const hardStop = setTimeout(() => {
    opts.io.log('error', `${opts.name}: shutdown took too long; exiting`);
    removeRunFiles(files, process.pid);
    process.exit(1);
  }, opts.shutdownTimeoutMs ?? 10_000);
  hardStop.unref();
  try {
    await svc.close();
  } finally {
    clearTimeout(hardStop);
    unhook();
    removeRunFiles(files, process.pid);
  }
  opts.io.log('info', `${opts.name}: stopped`);
  return { signal: sig, url: svc.url, pid: process.pid };
}

function claimOrRefuse(files: ReturnType<typeof runFiles>, name: string, stopCommand: string): void {
  if (claimPidFile(files)) return;
  const holder = readPidIdentity(files);
  const pid = holder?.pid;
  const state = readState(files);
  if (
    holder !== undefined &&
    holder.pid !== process.pid &&
    isSameProcess(holder.pid, holder.startTime, holder.command)
  ) {
    const where = state !== undefined && state.pid === pid && state.url ? ` at ${state.url}` : '';
    throw new ConflictError(`${name} is already running (pid ${pid}${where})`, {
      suggestion: `Stop it first: ${stopCommand}`,
      details: { pid, url: state?.url },
    });
  }
  removeRunFiles(files, pid);
  if (!claimPidFile(files)) {
    throw new ConflictError(`${name} is starting in another process (pid file ${files.pidFile} appeared)`);
  }
}
