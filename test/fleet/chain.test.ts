/**
 * The fleet log inspection behind `doctor` and `fleet repair` on a directory registry (the states
 * are written directly; the s3rver wedge runs through the CLI in repair.test.ts): a valid log
 * passes; entries that chain past the head only warn and repair rolls the head forward over them;
 * a gap, and a head naming an entry the log does not hold, fail with the seq; repair moves the
 * head back to the valid chain, after which the fleet reads again.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeEach, expect, it } from 'vitest';
import { checkFleetChain } from '../../src/doctor/fleet-chain.js';
import { applyFleet } from '../../src/fleet/apply.js';
import { inspectFleetChain } from '../../src/fleet/chain.js';
import { buildEntry } from '../../src/fleet/entry.js';
import { readFleet } from '../../src/fleet/read.js';
import { repairFleet } from '../../src/fleet/repair.js';
import { fleetKeys, signFleetBytes } from '../../src/fleet/signed.js';
import { PayloadType } from '../../src/registry/envelope.js';
import { FsStore } from '../../src/registry/fs-store.js';
import { fleetLogKey } from '../../src/registry/layout.js';
import { rolloutWorld, type RolloutWorld } from '../rollout/world.js';
import { siteYaml, writeSite } from './registry-fixture.js';

let w: RolloutWorld;
const now = () => new Date();

async function relabel(region: string): Promise<void> {
  for (const name of w.sites) {
    const key = Buffer.from(w.keys.get(name)?.publicKey ?? new Uint8Array()).toString('base64');
    writeSite(w.sitesDir, name, siteYaml(name, { key, labels: { region } }));
  }
  await applyFleet({ store: w.store, trust: w.t.trust, signer: w.t.fleet, sitesDir: w.sitesDir, clock: now });
}

beforeEach(async () => {
  w = await rolloutWorld(new FsStore(join(mkdtempSync(join(tmpdir(), 'edgectl-chain-')), 'registry')), {
    sites: 2,
  });
  await relabel('r2');
  await relabel('r3'); // entries 1-3, head at 3
});

const inspect = () => inspectFleetChain(w.store, fleetKeys(w.t.trust), now());
const doctor = () => checkFleetChain(w.store, w.t.trust, now());
const repair = (apply: boolean) =>
  repairFleet({ store: w.store, keys: fleetKeys(w.t.trust), now: now(), apply, signers: [w.t.fleet] });

it('a valid log: no problems, doctor ok, nothing to repair', async () => {
  const r = await inspect();
  expect(r.valid.seq).toBe(3);
  expect(r.problems).toEqual([]);
  expect(await doctor()).toMatchObject({ status: 'ok', detail: 'entries 1-3 chain to the head (seq 3)' });
  expect((await repair(false)).changes).toBe(false);
});

it('an entry that chains past the head warns; repair rolls the head forward over it', async () => {
  const read = await readFleet(w.store, w.t.trust, { now: now() });
  const e4 = buildEntry(read.applied, [{ op: 'site.delete', site: 'store-002' }], now());
  await w.store.putIfAbsent(fleetLogKey(4), signFleetBytes(PayloadType.entry, e4.payload, [w.t.fleet]));
  expect(await doctor()).toMatchObject({ status: 'warn', fix: 'edgectl site apply' });
  const fixed = await repair(true);
  expect(fixed).toMatchObject({ changes: true, headAfter: { seq: 4 }, dropped: [] });
  expect((await readFleet(w.store, w.t.trust, { now: now() })).seq).toBe(4);
});

it('a gap fails with its seq; repair drops what follows it and the fleet reads again', async () => {
  await w.store.delete(fleetLogKey(2));
  await expect(readFleet(w.store, w.t.trust, { now: now() })).rejects.toThrow();
  const r = await inspect();
  expect(r.problems.map((p) => [p.kind, p.seq])).toEqual([
    ['gap', 2],
    ['head-mismatch', 3],
  ]);
  const check = await doctor();
  expect(check.status).toBe('fail');
  expect(check.detail).toContain('seq 2: fleet log gap: entry 2 is missing but entries up to 3 exist');
  const fixed = await repair(true);
  expect(fixed.headAfter.seq).toBe(1);
  expect(fixed.dropped.map((d) => d.seq)).toEqual([3]);
  expect((await readFleet(w.store, w.t.trust, { now: now() })).seq).toBe(1);
  expect((await doctor()).status).toBe('ok');
});

it('a head naming an entry the log does not hold fails with the seq', async () => {
  await w.store.delete(fleetLogKey(3));
  const check = await doctor();
  expect(check.status).toBe('fail');
  expect(check.detail).toContain('seq 3: the head names entry 3, which the log does not hold');
  const dry = await repair(false);
  expect(dry).toMatchObject({ applied: false, changes: true, headBefore: { seq: 3 }, headAfter: { seq: 2 } });
  expect((await doctor()).status).toBe('fail'); // a dry run writes nothing
});
