/**
 * Is a pid still the process we started? A pid file outlives crashes and reboots, and pids are
 * reused, so "kill(pid, 0) succeeds" is not enough: the pid file also records the process's start
 * time (from /proc on Linux), and a live pid with a different start time is someone else's.
 * Where /proc is missing (macOS), liveness is all we can check.
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

/** Alive and, where we can tell, the same process that wrote `startTime`. */
export function isSameProcess(pid: number, startTime: string | undefined): boolean {
  if (!isAlive(pid)) return false;
  if (startTime === undefined) return true;
  const now = processStartTime(pid);
  return now === undefined || now === startTime;
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
