/**
 * Per-key lock files of the directory registry backend (fs-store.ts), taken by compareAndSwap
 * around its check-then-rename. A lock is a file created with O_EXCL under `<root>/.locks/` holding
 * `pid host time`; one left by a crashed process is broken when its pid is gone (same host) or it
 * is older than the stale limit. Two processes breaking the same stale lock at the same instant
 * could both proceed; stale locks only exist after a crash inside the few milliseconds a CAS holds
 * one. The registry's consistency guarantees are described in docs/formats.md.
 */
import { mkdir, open, readFile, stat, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { OperationalError } from '../foundation/errors.js';
import { sha256Hex } from '../foundation/digest.js';
import { errCode } from './fs-io.js';

const LOCK_DIR = '.locks';

export interface LockOptions {
  /** The store's URL, for messages. */
  url: string;
  /** How long to wait for another writer's lock. */
  timeoutMs: number;
  /** A lock older than this is considered abandoned. */
  staleMs: number;
  ioError: (op: string, path: string, err: unknown) => OperationalError;
}

/**
 * Takes the lock file of `key` (O_EXCL create), breaking a stale one, with capped exponential
 * backoff until `timeoutMs`. Returns the release function.
 */
export async function lockKey(root: string, key: string, opts: LockOptions): Promise<() => Promise<void>> {
  const dir = join(root, LOCK_DIR);
  await mkdir(dir, { recursive: true });
  const path = join(dir, `${sha256Hex(key)}.lock`);
  const deadline = Date.now() + opts.timeoutMs;
  let delay = 1;
  for (;;) {
    try {
      const fh = await open(path, 'wx', 0o644);
      try {
        await fh.writeFile(`${process.pid} ${hostname()} ${Date.now()}\n`);
      } finally {
        await fh.close();
      }
      return async () => {
        await unlink(path).catch(() => undefined);
      };
    } catch (err) {
      if (errCode(err) !== 'EEXIST') throw opts.ioError('create lock', path, err);
    }
    if (await isStale(path, opts.staleMs)) {
      await unlink(path).catch(() => undefined);
      continue;
    }
    if (Date.now() > deadline) {
      throw new OperationalError(`timed out waiting for the lock on registry object ${key}`, {
        code: 'E_LOCK_TIMEOUT',
        suggestion: `if no other edgectl process is writing to ${opts.url}, remove ${path}`,
        details: { key, lock: path },
      });
    }
    await sleep(delay + Math.random() * delay);
    delay = Math.min(delay * 2, 50);
  }
}

async function isStale(path: string, staleMs: number): Promise<boolean> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return false; // released meanwhile: just retry
  }
  const [pidText, host, timeText] = text.trim().split(' ');
  const time = Number(timeText);
  // A lock being written right now is empty or partial: only age can make it stale.
  if (host === hostname() && pidText && Number(pidText) > 0 && !pidAlive(Number(pidText))) return true;
  if (Number.isFinite(time) && time > 0) return Date.now() - time > staleMs;
  const st = await stat(path).catch(() => undefined);
  return st !== undefined && Date.now() - st.mtimeMs > staleMs;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errCode(err) === 'EPERM';
  }
}
