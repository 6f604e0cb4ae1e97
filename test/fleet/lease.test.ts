/**
 * The fleet write guard and the single-writer lease on s3rver, a real S3 server that does not
 * enforce conditional writes: the probe says so, a rollout write is refused by default (exit 2,
 * nothing written); with the lease, of two concurrent writers exactly one proceeds and their
 * bodies never overlap; a live lease of another owner refuses, an expired one is taken over; the
 * lease is released after the write, also when it fails. The directory store enforces conditional
 * writes and never takes the lease.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConflictError, UserError } from '../../src/foundation/errors.js';
import { LEASE_KEY, acquireLease, readLease, withLease, type Lease } from '../../src/fleet/lease.js';
import { conditionalWritesEnforced, fleetWriteGuard, guardFleetWrite } from '../../src/fleet/write-guard.js';
import { FsStore } from '../../src/registry/fs-store.js';
import { HEAD_KEY } from '../../src/registry/layout.js';
import { S3Store } from '../../src/registry/s3-store.js';
import { startOps } from '../../src/rollout/actions.js';
import { appendEntry } from '../../src/rollout/append.js';
import { normalizeSpec } from '../../src/rollout/spec.js';
import { startS3, type S3Fixture } from '../helpers/s3.js';
import { REFS, rolloutWorld } from '../rollout/world.js';

let s3: S3Fixture;
let n = 0;
const stores: S3Store[] = [];
/** A store on a fresh prefix, or a second client on the same prefix (`prefix`). */
function s3Store(prefix = `lease-${process.pid}-${++n}`): S3Store {
  const s = new S3Store(s3.bucket, prefix, { env: s3.env });
  stores.push(s);
  return s;
}

beforeAll(async () => {
  s3 = await startS3();
});
afterAll(async () => {
  await Promise.all(stores.map((s) => s.close()));
  await s3.stop();
});

const quick = { settleMs: 300 };

describe('guard', () => {
  it('probes s3rver as not enforcing and the directory store as enforcing', async () => {
    expect(await conditionalWritesEnforced(s3Store())).toBe('not-enforced');
    const fs = new FsStore(join(mkdtempSync(join(tmpdir(), 'edgectl-guard-')), 'registry'));
    expect(await conditionalWritesEnforced(fs)).toBe('enforced');
    // The directory store runs the write directly: no lease object is ever written.
    const seen = await guardFleetWrite(
      fs,
      { command: 'test' },
      async () => (await fs.head(LEASE_KEY)) === undefined,
    );
    expect(seen).toBe(true);
  });

  it('refuses a rollout write on s3rver by default (exit 2, the fix named, nothing written)', async () => {
    const store = s3Store();
    const w = await rolloutWorld(store, { sites: 2 });
    const headBefore = (await store.head(HEAD_KEY))?.etag;
    const spec = normalizeSpec({}, { steps: '50,100', candidate: REFS.good });
    const candidate = { ref: REFS.good, manifestDigest: w.digests[REFS.good] as string };
    const writer = { ...w.writer(), guard: fleetWriteGuard(store, { command: 'rollout canary' }) };
    const start = appendEntry(writer, (fleet) => ({
      ops: startOps(fleet.state, { id: 'r1', spec, candidate, by: 'test' }).ops,
    }));
    const err = await start.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).exitCode).toBe(2);
    expect((err as UserError).code).toBe('E_NO_CONDITIONAL_WRITES');
    expect((err as UserError).suggestion).toMatch(/--single-writer .*singleWriter: true/);
    expect((await store.head(HEAD_KEY))?.etag).toBe(headBefore);

    // Opted in: the write goes through holding the lease, which is released afterwards.
    const single = {
      ...w.writer(),
      guard: fleetWriteGuard(store, { command: 'rollout canary', singleWriter: true, lease: quick }),
    };
    const res = await appendEntry(single, (fleet) => ({
      ops: startOps(fleet.state, { id: 'r1', spec, candidate, by: 'test' }).ops,
    }));
    expect(res.seq).toBe(2);
    expect(await store.head(LEASE_KEY)).toBeUndefined();
  });
});

describe('lease', () => {
  it('two concurrent writers: exactly one proceeds, and never both at once', async () => {
    const prefix = `lease-race-${process.pid}`;
    for (let round = 0; round < 3; round++) {
      const [a, b] = [s3Store(prefix), s3Store(prefix)];
      let inside = 0;
      let overlapped = false;
      const body = async () => {
        inside++;
        if (inside > 1) overlapped = true;
        await new Promise((r) => setTimeout(r, 200));
        inside--;
        return 'ran';
      };
      const results = await Promise.allSettled([
        withLease(a, { command: 'writer a', ...quick }, body),
        withLease(b, { command: 'writer b', ...quick }, body),
      ]);
      const ran = results.filter((r) => r.status === 'fulfilled');
      const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      expect(ran).toHaveLength(1);
      expect(refused).toHaveLength(1);
      expect(refused[0]?.reason).toBeInstanceOf(ConflictError);
      expect((refused[0]?.reason as ConflictError).code).toBe('E_LEASE_HELD');
      expect(overlapped).toBe(false);
      expect(await a.head(LEASE_KEY)).toBeUndefined();
    }
  });

  it('refuses a live lease of another owner, naming it; takes over an expired one', async () => {
    const store = s3Store();
    const other = (expires: Date): Lease => ({
      owner: 'crashed-writer',
      host: 'ci-runner-7',
      pid: 4242,
      command: 'site apply',
      acquired: new Date(expires.getTime() - 60_000).toISOString(),
      expires: expires.toISOString(),
    });
    await store.compareAndSwap(
      LEASE_KEY,
      Buffer.from(JSON.stringify(other(new Date(Date.now() + 60_000)))),
      undefined,
    );
    const live = await acquireLease(store, { command: 'test', ...quick }).catch((e: unknown) => e);
    expect(live).toBeInstanceOf(ConflictError);
    expect((live as ConflictError).message).toMatch(/held by site apply \(pid 4242 on ci-runner-7\) until/);
    expect((live as ConflictError).exitCode).toBe(1);

    const cur = await store.head(LEASE_KEY);
    await store.compareAndSwap(
      LEASE_KEY,
      Buffer.from(JSON.stringify(other(new Date(Date.now() - 1_000)))),
      cur?.etag,
    );
    const held = await acquireLease(store, { command: 'test', ...quick });
    expect(held.tookOver?.owner).toBe('crashed-writer');
    expect((await readLease(store))?.lease?.owner).toBe(held.lease.owner);
  });

  it('releases the lease when the write fails', async () => {
    const store = s3Store();
    const failing = withLease(store, { command: 'test', ...quick }, async () => {
      expect((await readLease(store))?.lease?.command).toBe('test');
      throw new Error('write failed');
    });
    await expect(failing).rejects.toThrow('write failed');
    expect(await store.head(LEASE_KEY)).toBeUndefined();
  });
});
