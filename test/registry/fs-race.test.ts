/**
 * Concurrency of the fs backend across real processes: create-only writes and compare-and-swap must
 * each have exactly one winner per contested write. Workers run the built dist/ FsStore.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ConflictError } from '../../src/foundation/errors.js';
import { FsStore } from '../../src/registry/fs-store.js';
import { NODE, REPO_ROOT } from '../helpers/cli.js';

const FS_STORE_JS = join(REPO_ROOT, 'dist/src/registry/fs-store.js');

const WORKER = `
const [storeJs, root, mode, id, count, startAt] = process.argv.slice(1);
const { FsStore } = await import(storeJs);
const store = new FsStore(root);
while (Date.now() < Number(startAt)) await new Promise((r) => setTimeout(r, 1));
const out = [];
if (mode === 'put') {
  for (let i = 0; i < Number(count); i++) {
    try {
      out.push((await store.putIfAbsent('race/k' + i, Buffer.from('writer ' + id))).status);
    } catch (err) {
      if (err.code !== 'E_EXISTS_DIFFERENT') throw err;
      out.push('conflict');
    }
  }
} else {
  let retries = 0;
  for (let i = 0; i < Number(count); i++) {
    for (;;) {
      const cur = await store.get('counter');
      const next = (cur ? Number(cur.body.toString()) : 0) + 1;
      try {
        await store.compareAndSwap('counter', Buffer.from(String(next)), cur?.etag);
        break;
      } catch (err) {
        if (err.code !== 'E_CAS') throw err;
        retries++;
      }
    }
  }
  out.push(retries);
}
process.stdout.write(JSON.stringify(out));
`;

function runWorker(args: string[]): Promise<unknown[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(NODE, ['--input-type=module', '-e', WORKER, FS_STORE_JS, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) reject(new Error(`worker exited ${code}: ${err}`));
      else resolve(JSON.parse(out) as unknown[]);
    });
  });
}

const dirs: string[] = [];
function tempRoot(): string {
  const d = mkdtempSync(join(tmpdir(), 'edgectl-race-'));
  dirs.push(d);
  return join(d, 'registry');
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('FsStore under concurrent writers', () => {
  it('putIfAbsent from several processes with different bytes: exactly one created per key', async () => {
    const root = tempRoot();
    const workers = 5;
    const keys = 150;
    const startAt = String(Date.now() + 400);
    const results = (await Promise.all(
      Array.from({ length: workers }, (_, id) => runWorker([root, 'put', String(id), String(keys), startAt])),
    )) as string[][];
    const store = new FsStore(root);
    for (let i = 0; i < keys; i++) {
      const outcomes = results.map((r) => r[i]);
      expect(outcomes.filter((o) => o === 'created')).toHaveLength(1);
      expect(outcomes.filter((o) => o === 'conflict')).toHaveLength(workers - 1);
      const winner = outcomes.indexOf('created');
      expect((await store.get(`race/k${i}`))?.body.toString()).toBe(`writer ${winner}`);
    }
    // No temp file is left behind and no partial object is visible.
    expect((await store.list('')).length).toBe(keys);
  });

  it('compareAndSwap from several processes: no update is lost', async () => {
    const root = tempRoot();
    const workers = 4;
    const increments = 40;
    const startAt = String(Date.now() + 400);
    const retries = (await Promise.all(
      Array.from({ length: workers }, (_, id) =>
        runWorker([root, 'cas', String(id), String(increments), startAt]),
      ),
    )) as number[][];
    const final = await new FsStore(root).get('counter');
    expect(Number(final?.body.toString())).toBe(workers * increments);
    // The writers really contended (otherwise this test would prove nothing).
    expect(retries.flat().reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
  });

  it('many concurrent promises in one process: one create wins, one CAS wins', async () => {
    const root = tempRoot();
    const store = new FsStore(root);
    const puts = await Promise.allSettled(
      Array.from({ length: 30 }, (_, i) =>
        store.putIfAbsent('fleet/log/000000000001.json', Buffer.from(`entry ${i}`)),
      ),
    );
    expect(puts.filter((p) => p.status === 'fulfilled')).toHaveLength(1);
    for (const p of puts) if (p.status === 'rejected') expect(p.reason).toBeInstanceOf(ConflictError);

    const base = await store.compareAndSwap('fleet/head.json', Buffer.from('head 0'), undefined);
    const cas = await Promise.allSettled(
      Array.from({ length: 30 }, (_, i) =>
        store.compareAndSwap('fleet/head.json', Buffer.from(`head ${i + 1}`), base),
      ),
    );
    const won = cas.filter((p) => p.status === 'fulfilled');
    expect(won).toHaveLength(1);
    for (const p of cas) if (p.status === 'rejected') expect(p.reason).toBeInstanceOf(ConflictError);
    expect((await store.head('fleet/head.json'))?.etag).toBe(
      (won[0] as PromiseFulfilledResult<string>).value,
    );
  });

  it('breaks a lock left by a dead process', async () => {
    const root = tempRoot();
    const store = new FsStore(root, { lockTimeoutMs: 2_000 });
    await store.compareAndSwap('fleet/head.json', Buffer.from('a'), undefined);
    // A lock owned by a pid that no longer exists, as a crash inside compareAndSwap would leave.
    const dead = await runDeadPid();
    const { writeFileSync } = await import('node:fs');
    const { hostname } = await import('node:os');
    const { sha256Hex } = await import('../../src/foundation/digest.js');
    writeFileSync(
      join(root, '.locks', `${sha256Hex('fleet/head.json')}.lock`),
      `${dead} ${hostname()} ${Date.now()}\n`,
    );
    const etag = (await store.head('fleet/head.json'))?.etag;
    await store.compareAndSwap('fleet/head.json', Buffer.from('b'), etag);
    expect((await store.get('fleet/head.json'))?.body.toString()).toBe('b');
  });

  it('times out with a clear error on a live lock', async () => {
    const root = tempRoot();
    const store = new FsStore(root, { lockTimeoutMs: 200 });
    await store.compareAndSwap('fleet/head.json', Buffer.from('a'), undefined);
    const { writeFileSync } = await import('node:fs');
    const { hostname } = await import('node:os');
    const { sha256Hex } = await import('../../src/foundation/digest.js');
    writeFileSync(
      join(root, '.locks', `${sha256Hex('fleet/head.json')}.lock`),
      `${process.pid} ${hostname()} ${Date.now()}\n`,
    );
    const etag = (await store.head('fleet/head.json'))?.etag;
    await expect(store.compareAndSwap('fleet/head.json', Buffer.from('b'), etag)).rejects.toThrow(
      /timed out waiting for the lock on registry object fleet\/head\.json/,
    );
    expect((await store.get('fleet/head.json'))?.body.toString()).toBe('a');
  });
});

/** The pid of a process that has exited. */
function runDeadPid(): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(NODE, ['-e', '0'], { stdio: 'ignore' });
    child.on('error', reject);
    child.on('close', () => resolve(child.pid ?? 999_999));
  });
}
