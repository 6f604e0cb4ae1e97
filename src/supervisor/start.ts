/**
 * Starting a daemon in the background: the generic half of `edgectl verifier up` (and later
 * `edgectl site up`). It re-runs the CLI itself with `--foreground` as a detached child whose
 * stdout and stderr go to a log file, then waits until the child reports `ready` in its state file
 * and answers its health check — or fails fast with the log tail when the child exits, and kills
 * it on timeout. A live daemon already holding the pid file is an answer ("already running"), a
 * dead or foreign one is stale and cleared.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, statSync, writeSync } from 'node:fs';
import {
  ExitCode,
  OperationalError,
  TimeoutError,
  UserError,
  type EdgectlError,
} from '../foundation/errors.js';
import type { Io } from '../foundation/output.js';
import { isSameProcess, signal } from './process-identity.js';
import { logTail, readPidIdentity, readState, removeRunFiles, runFiles, type RunFiles } from './run-files.js';

export interface DaemonSpec {
  /** Short name; the run files are `<runDir>/<name>.{pid,json,log}`. */
  name: string;
  runDir: string;
  /** The CLI entry script (bin/run.js) the child runs under this Node. */
  entry: string;
  /** Arguments after the entry script; must include the command's `--foreground` flag. */
  args: string[];
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Path polled on the daemon's URL once it says it is ready. */
  healthPath?: string;
  readyTimeoutMs: number;
}

export interface DaemonStartResult {
  status: 'started' | 'already-running';
  name: string;
  pid: number;
  url: string | undefined;
  logFile: string;
  info: Record<string, unknown> | undefined;
  /** Pid of a stale pid file that was cleared first. */
  staleRemoved: number | undefined;
  startupMs: number;
}

const POLL_MS = 50;

export async function startDaemon(spec: DaemonSpec, io: Io): Promise<DaemonStartResult> {
  const t0 = performance.now();
  const files = runFiles(spec.runDir, spec.name);
  const existing = checkExisting(files);
  if (existing.running) {
    return {
      status: 'already-running',
      name: spec.name,
      pid: existing.pid,
      url: existing.url,
      logFile: files.logFile,
      info: existing.info,
      staleRemoved: undefined,
      startupMs: 0,
    };
  }
  if (existing.stalePid !== undefined) {
    io.log('warn', `removed stale ${spec.name} pid file (pid ${existing.stalePid} is not ${spec.name})`);
  }

  if (!existsSync(spec.entry)) throw new UserError(`CLI entry ${spec.entry} does not exist`);
  mkdirSync(files.dir, { recursive: true });
  const logFd = openSync(files.logFile, 'a', 0o644);
  const logStart = statSync(files.logFile).size;
  writeSync(logFd, `--- ${new Date().toISOString()} starting ${spec.name}: ${spec.args.join(' ')}\n`);
  const child = spawn(process.execPath, [spec.entry, ...spec.args], {
    cwd: spec.cwd ?? process.cwd(),
    env: spec.env ?? process.env,
    detached: true,
    stdio: ['ignore', logFd, logFd],
    windowsHide: true,
  });
  // The child holds its own copies of the log descriptor.
  closeSync(logFd);
  child.unref();
  const pid = child.pid;
  if (pid === undefined) throw new OperationalError(`could not start ${spec.name}: spawn failed`);

  let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  child.once('exit', (code, sig) => (exited = { code, signal: sig }));
  io.log('info', `starting ${spec.name} (pid ${pid}), log ${files.logFile}`);

  const deadline = performance.now() + spec.readyTimeoutMs;
  for (;;) {
    if (exited) throw startupFailed(spec, files, pid, logStart, exited);
    const state = readState(files);
    if (state?.pid === pid && state.status === 'ready' && state.url) {
      if (await healthy(state.url + (spec.healthPath ?? '/healthz'))) {
        return {
          status: 'started',
          name: spec.name,
          pid,
          url: state.url,
          logFile: files.logFile,
          info: state.info,
          staleRemoved: existing.stalePid,
          startupMs: Math.round(performance.now() - t0),
        };
      }
    }
    if (performance.now() > deadline) {
      signal(pid, 'SIGKILL');
      removeRunFiles(files, pid);
      const tail = logTail(files, logStart);
      throw new TimeoutError(
        `${spec.name} did not become ready within ${spec.readyTimeoutMs} ms and was stopped${formatTail(tail)}`,
        {
          suggestion: `Read ${files.logFile}, or raise --timeout.`,
          details: { logFile: files.logFile, logTail: tail },
        },
      );
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

type Existing =
  | { running: true; pid: number; url: string | undefined; info: Record<string, unknown> | undefined }
  | { running: false; stalePid: number | undefined };

function checkExisting(files: RunFiles): Existing {
  const holder = readPidIdentity(files);
  const pid = holder?.pid;
  if (pid === undefined) {
    // A state file without a pid file is debris from a crash between the two writes.
    removeRunFiles(files, undefined);
    return { running: false, stalePid: undefined };
  }
  const state = readState(files);
  if (isSameProcess(pid, holder?.startTime, holder?.command)) {
    // A live process is running even if it doesn't answer yet (loading, or wedged): never start a second.
    const ours = state?.pid === pid ? state : undefined;
    return { running: true, pid, url: ours?.url, info: ours?.info };
  }
  removeRunFiles(files, pid);
  return { running: false, stalePid: pid };
}

async function healthy(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    await res.arrayBuffer();
    return res.ok;
  } catch {
    return false;
  }
}

function formatTail(tail: string[]): string {
  return tail.length ? `\nlast log lines:\n${tail.map((l) => `  | ${l}`).join('\n')}` : '';
}

function startupFailed(
  spec: DaemonSpec,
  files: RunFiles,
  pid: number,
  logStart: number,
  exited: { code: number | null; signal: NodeJS.Signals | null },
): EdgectlError {
  const tail = logTail(files, logStart);
  removeRunFiles(files, pid);
  const how = exited.signal ? `was killed by ${exited.signal}` : `exited with code ${exited.code}`;
  const message = `${spec.name} ${how} during startup${formatTail(tail)}`;
  const opts = {
    suggestion: `Fix the problem above and run the command again (full log: ${files.logFile}).`,
    details: { logFile: files.logFile, logTail: tail, exitCode: exited.code },
  };
  // The child's exit code already classifies the failure (2 = bad input such as a broken model dir).
  return exited.code === ExitCode.Usage ? new UserError(message, opts) : new OperationalError(message, opts);
}
