/**
 * Concurrent `site apply` runs as real child processes on one registry, on the backends that
 * enforce create-only and compare-and-swap: a directory and Ceph RGW (s3rver does not; see
 * test/registry/conditional-writes.test.ts). Several checkouts with different desired states apply
 * at once: the log must never fork, every failure must be the retryable conflict, and with
 * --retries every apply must eventually land. On RGW, applies in a row must all succeed (each one
 * compare-and-swaps the head from the ETag the previous one left).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listFleetLog } from '../../src/fleet/log.js';
import { readFleet } from '../../src/fleet/read.js';
import { FsStore } from '../../src/registry/fs-store.js';
import { S3Store } from '../../src/registry/s3-store.js';
import type { Store } from '../../src/registry/store.js';
import { runCli, type CliResult } from '../helpers/cli.js';
import { rgwSkipReason, startRgw } from '../helpers/rgw.js';
import type { S3Fixture } from '../helpers/s3.js';
import {
  EXAMPLE_REFS,
  makeTrust,
  publishManifest,
  siteYaml,
  writeProject,
  writeSite,
  type TestTrust,
} from './registry-fixture.js';

const CHECKOUTS = 4;
const SITES = 120;

const rgwSkip = rgwSkipReason();
const BACKENDS = [
  { name: 'fs registry', backend: 'fs' as const, skip: undefined },
  { name: `Ceph RGW${rgwSkip ? ` (SKIPPED: ${rgwSkip})` : ''}`, backend: 'rgw' as const, skip: rgwSkip },
];

describe.each(BACKENDS)('racing `site apply` processes ($name)', ({ backend, skip }) => {
  let root: string;
  let registry: string;
  let t: TestTrust;
  let rgw: S3Fixture | undefined;
  const checkouts: string[] = [];
  const env = (): Record<string, string> => rgw?.env ?? {};
  const openRegistry = (): Store =>
    rgw ? new S3Store(rgw.bucket, 'registry', { env: rgw.env }) : new FsStore(registry);

  beforeAll(async () => {
    if (skip) return;
    root = mkdtempSync(join(tmpdir(), 'edgectl-race-'));
    registry = join(root, 'registry');
    if (backend === 'rgw') rgw = await startRgw();
    t = makeTrust();
    const store = openRegistry();
    for (const ref of EXAMPLE_REFS) await publishManifest(store, t.artifacts, ref);
    await store.close();
    for (let c = 0; c < CHECKOUTS; c++) {
      const dir = join(root, `checkout-${c}`);
      writeProject(dir, t, rgw ? rgw.url : `file:${registry}`);
      // Each checkout declares the same sites with its own labels, so every apply has work to do.
      for (let s = 0; s < SITES; s++) {
        const name = `site-${String(s).padStart(4, '0')}`;
        writeSite(join(dir, 'sites'), name, siteYaml(name, { labels: { owner: `checkout-${c}` } }));
      }
      checkouts.push(dir);
    }
  }, 200_000);
  afterAll(() => {
    if (root) rmSync(root, { recursive: true, force: true });
  });

  async function verifyLog(): Promise<{ seq: number; owners: Set<string> }> {
    const store = openRegistry();
    try {
      const now = new Date();
      const log = await listFleetLog(store, t.trust, { now });
      // Contiguous seqs, each chained to the one before: one history, no fork.
      expect(log.entries.map((e) => e.seq)).toEqual(log.entries.map((_, i) => i + 1));
      log.entries.forEach((e, i) => expect(e.prev).toBe(i === 0 ? null : log.entries[i - 1]!.digest));
      const fleet = await readFleet(store, t.trust, { now });
      const owners = new Set(Object.values(fleet.state.sites).map((s) => s.declaration.labels.owner ?? ''));
      return { seq: fleet.seq, owners };
    } finally {
      await store.close();
    }
  }

  function expectConflictOrSuccess(r: CliResult): void {
    if (r.code === 0) return;
    expect(r.code, r.stderr).toBe(1);
    const err = r.json<{ error: { code: string; message: string; suggestion: string } }>().error;
    expect(err.code).toBe('E_APPLY_CONFLICT');
    expect(err.message).toMatch(/another `site apply` (wrote this seq first|moved the fleet head first)/);
    expect(err.suggestion).toMatch(/--retries/);
  }

  it.skipIf(!!skip)('never forks; losers get a clear retryable error', async () => {
    const results = await Promise.all(
      checkouts.map((cwd) => runCli(['site', 'apply', '--json'], { cwd, env: env() })),
    );
    results.forEach(expectConflictOrSuccess);
    const wins = results.filter((r) => r.code === 0);
    expect(wins.length).toBeGreaterThanOrEqual(1);
    const { seq, owners } = await verifyLog();
    // A winner that lost the head race still had its entry included by the next writer, so the log
    // holds at least one entry per success and at most one per process.
    expect(seq).toBeGreaterThanOrEqual(wins.length);
    expect(seq).toBeLessThanOrEqual(CHECKOUTS);
    // The state is one checkout's whole desired state, never a mix.
    expect(owners.size).toBe(1);
  });

  it.skipIf(!!skip)('with --retries every concurrent apply lands', async () => {
    const before = (await verifyLog()).seq;
    // Re-label so that every checkout has changes again.
    for (const [c, dir] of checkouts.entries()) {
      for (let s = 0; s < SITES; s++) {
        const name = `site-${String(s).padStart(4, '0')}`;
        writeSite(
          join(dir, 'sites'),
          name,
          siteYaml(name, { labels: { owner: `checkout-${c}`, round: 'two' } }),
        );
      }
    }
    const results = await Promise.all(
      checkouts.map((cwd) => runCli(['site', 'apply', '--retries', '10', '--json'], { cwd, env: env() })),
    );
    for (const r of results) expect(r.code, r.stderr).toBe(0);
    const { seq, owners } = await verifyLog();
    // Every process wrote at least one entry of its own (a head-race loser writes again on retry).
    expect(seq).toBeGreaterThanOrEqual(before + CHECKOUTS);
    expect(owners.size).toBe(1);
  });

  it.skipIf(!!skip)('applies in a row all succeed and move the head each time', async () => {
    const cwd = checkouts[0]!;
    let before = (await verifyLog()).seq;
    for (let round = 0; round < 3; round++) {
      writeSite(
        join(cwd, 'sites'),
        'site-0000',
        siteYaml('site-0000', { labels: { round: `seq-${round}` } }),
      );
      const r = await runCli(['site', 'apply', '--json'], { cwd, env: env() });
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(r.json<{ seq: number; headMoved: boolean }>()).toMatchObject({
        seq: before + 1,
        headMoved: true,
      });
      before++;
    }
  });
});
