/**
 * The data directory's sync lock: one process at a time may sync or roll back a site (the daemon's
 * loop and a manual `site sync` would otherwise both switch `current`). The lock file is created
 * with O_EXCL and records the holder's pid and kernel start time; a lock whose holder is gone (a
 * sync killed with -9) is broken by the next process, so a crash never wedges the site.
 */
import { open, readFile, rm } from 'node:fs/promises';
import { ConflictError } from '../foundation/errors.js';
import { isSameProcess, processStartTime } from '../supervisor/process-identity.js';

interface LockRecord {
  pid: number;
  startTime?: string;
  purpose: string;
}

async function readRecord(path: string): Promise<LockRecord | undefined> {
  try {
    const value = JSON.parse(await readFile(path, 'utf8')) as Partial<LockRecord>;
    return typeof value.pid === 'number' ? (value as LockRecord) : undefined;
  } catch {
    return undefined;
  }
}

export interface HeldLock {
  release(): Promise<void>;
}

/** Takes the lock at `path` or throws ConflictError naming the live holder. */
export async function acquireLock(path: string, purpose: string): Promise<HeldLock> {
  const start = processStartTime('self');
  const record: LockRecord = { pid: process.pid, purpose, ...(start ? { startTime: start } : {}) };
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fh = await open(path, 'wx', 0o644);
      try {
        await fh.writeFile(`${JSON.stringify(record)}\n`);
      } finally {
        await fh.close();
      }
      return {
        release: async () => {
          const held = await readRecord(path);
          if (held?.pid === process.pid) await rm(path, { force: true });
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = await readRecord(path);
    if (holder && isSameProcess(holder.pid, holder.startTime)) {
      throw new ConflictError(
        `another edgectl process (pid ${holder.pid}) is running ${holder.purpose} on this site`,
        {
          code: 'E_SITE_LOCKED',
          suggestion:
            'wait for it to finish (the site daemon syncs on its own), or stop it with `edgectl site down`',
          details: { pid: holder.pid, lock: path },
        },
      );
    }
    // The holder is gone (killed, or a half-written record from a crash): break the lock.
    await rm(path, { force: true });
  }
  throw new ConflictError(`could not take the sync lock ${path}`, { code: 'E_SITE_LOCKED' });
}
