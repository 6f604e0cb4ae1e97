/**
 * A daemon's files in its run directory: `<name>.pid` (the pid on its first line, then the
 * process's identity, `start <ticks>` and `cmd <command line>`; claimed with O_EXCL so two starts
 * cannot both win), `<name>.json` (pid, process start time, status, address; replaced atomically)
 * and `<name>.log` (stdout and stderr of the detached process). Readers treat anything unparsable
 * as stale rather than failing, because these files are exactly what a crash leaves half-written.
 */
import { closeSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { selfIdentity, type ProcessIdentity } from './process-identity.js';

export const daemonStateSchema = z.object({
  name: z.string(),
  pid: z.number().int().positive(),
  /** Kernel start time of the process, to tell a reused pid from ours. */
  processStart: z.string().optional(),
  status: z.enum(['starting', 'ready']),
  startedAt: z.string(),
  logFile: z.string(),
  /** Base URL once listening (http://host:port). */
  url: z.string().optional(),
  host: z.string().optional(),
  port: z.number().int().optional(),
  /** Daemon-specific facts shown by `up` and status (model, threads, ...). */
  info: z.record(z.string(), z.unknown()).optional(),
});
export type DaemonState = z.infer<typeof daemonStateSchema>;

export interface RunFiles {
  dir: string;
  name: string;
  pidFile: string;
  stateFile: string;
  logFile: string;
}

export function runFiles(dir: string, name: string): RunFiles {
  return {
    dir,
    name,
    pidFile: join(dir, `${name}.pid`),
    stateFile: join(dir, `${name}.json`),
    logFile: join(dir, `${name}.log`),
  };
}

export function readPid(files: RunFiles): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(files.pidFile, 'utf8').trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The pid file's pid and the identity recorded with it. Pid files from before identities were
 * recorded (a bare pid) fall back to the state file's start time when it names the same pid.
 */
export function readPidIdentity(files: RunFiles): ProcessIdentity | undefined {
  let lines: string[];
  try {
    lines = readFileSync(files.pidFile, 'utf8').split('\n');
  } catch {
    return undefined;
  }
  const pid = Number.parseInt((lines[0] ?? '').trim(), 10);
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  const field = (key: string) => lines.find((l) => l.startsWith(`${key} `))?.slice(key.length + 1);
  const state = readState(files);
  return {
    pid,
    startTime: field('start') ?? (state?.pid === pid ? state.processStart : undefined),
    command: field('cmd'),
  };
}

export function readState(files: RunFiles): DaemonState | undefined {
  try {
    const parsed = daemonStateSchema.safeParse(JSON.parse(readFileSync(files.stateFile, 'utf8')));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/** Creates the pid file (this process's identity) only if absent; false when another process holds it. */
export function claimPidFile(files: RunFiles): boolean {
  const id = selfIdentity();
  mkdirSync(files.dir, { recursive: true });
  let fd: number;
  try {
    fd = openSync(files.pidFile, 'wx', 0o644);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
  try {
    const lines = [String(id.pid)];
    if (id.startTime !== undefined) lines.push(`start ${id.startTime}`);
    if (id.command !== undefined) lines.push(`cmd ${id.command.replace(/\n/g, ' ')}`);
    writeSync(fd, `${lines.join('\n')}\n`);
  } finally {
    closeSync(fd);
  }
  return true;
}

export function writeState(files: RunFiles, state: DaemonState): void {
  mkdirSync(files.dir, { recursive: true });
  const tmp = `${files.stateFile}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'w', 0o644);
  try {
    writeSync(fd, `${JSON.stringify(state, null, 2)}\n`);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, files.stateFile);
}

/** Removes the pid and state files, but only while they still name `pid` (never a newer daemon's). */
export function removeRunFiles(files: RunFiles, pid: number | undefined): void {
  const current = readPid(files);
  if (pid !== undefined && current !== undefined && current !== pid) return;
  rmSync(files.stateFile, { force: true });
  rmSync(files.pidFile, { force: true });
}

/** The last `lines` lines of the log written since byte `from`. */
export function logTail(files: RunFiles, from = 0, lines = 20): string[] {
  let text: string;
  try {
    const buf = readFileSync(files.logFile);
    text = buf.subarray(Math.min(from, buf.length)).toString('utf8');
  } catch {
    return [];
  }
  const all = text.split('\n');
  if (all.at(-1) === '') all.pop();
  return all.slice(-lines);
}
