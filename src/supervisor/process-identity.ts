/**
 * Is a pid still the process we started? A pid file outlives crashes and reboots, and pids are
 * reused, so "kill(pid, 0) succeeds" is not enough: the pid file records the process's identity,
 * its kernel start time and its command line (from /proc on Linux), and a live pid whose identity
 * differs, or that we cannot prove is ours, is someone else's and is never signalled
 * (docs/running-sites.md, "Run files"). Where /proc is missing (macOS), liveness is all we can check.
 */
import { readFileSync } from 'node:fs';

/**
 * True when a process with this pid exists and has not exited (EPERM means it exists but isn't ours
 * to signal). A zombie counts as exited: a detached daemon outlives the CLI that started it, and in
 * containers whose init doesn't reap, its exit would otherwise never be seen.
 */
export function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  return procStatFields(pid)?.[0] !== 'Z';
}

/** Fields of /proc/<pid>/stat after the command name (state first), or undefined without /proc. */
function procStatFields(pid: number | 'self'): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces and parentheses; fields after it follow the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/**
 * The kernel's start time of a process (clock ticks since boot, field 22 of /proc/<pid>/stat), or
 * undefined when /proc is unavailable or the process is gone.
 */
export function processStartTime(pid: number | 'self'): string | undefined {
  return procStatFields(pid)?.[19];
}

/**
 * The command line of a process (NUL-separated arguments joined by spaces), or undefined when
 * /proc is unavailable or the process is gone.
 */
export function processCommandLine(pid: number | 'self'): string | undefined {
  try {
    const raw = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return raw
      .split('\0')
      .filter((a) => a !== '')
      .join(' ');
  } catch {
    return undefined;
  }
}

/** What a pid file records about the process that wrote it. */
export interface ProcessIdentity {
  pid: number;
  /** Kernel start time (clock ticks since boot). */
  startTime?: string | undefined;
  /** Command line when the identity was taken. */
  command?: string | undefined;
}

/** This process's identity, to record in a pid or lock file. */
export function selfIdentity(): ProcessIdentity {
  return { pid: process.pid, startTime: processStartTime('self'), command: processCommandLine('self') };
}

/**
 * Alive and provably the same process that wrote `startTime` (and, when given, ran `command`).
 * Where /proc can tell the live process's start time, a record without one proves nothing, so it
 * is treated as a stranger: signalling or reporting an unrelated process as ours is the worse error.
 */
export function isSameProcess(pid: number, startTime: string | undefined, command?: string): boolean {
  if (!isAlive(pid)) return false;
  const now = processStartTime(pid);
  if (now === undefined) return true;
  if (startTime === undefined || now !== startTime) return false;
  if (command === undefined) return true;
  const cmd = processCommandLine(pid);
  return cmd === undefined || cmd === command;
}

/** Sends a signal, treating "already gone" as success. */
export function signal(pid: number, sig: NodeJS.Signals): boolean {
  try {
    process.kill(pid, sig);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw err;
  }
}
