/**
 * The fleet log on a store that does not enforce conditional writes (s3rver), through the built
 * CLI: `site apply` is refused by default (exit 2, nothing written) and works with
 * --single-writer; then the log is wedged the way four concurrent applies wedge it (below), and
 * the symptoms are checked (`fleet log`, `site sync`, `site apply` exit 4; `doctor` fails with the
 * seq); `fleet repair` reports (dry run), is refused without --single-writer, repairs with
 * `--apply --single-writer`, and afterwards every site syncs and `site apply` works again.
 *
 * The wedge is written deterministically, replaying the interleaving four writers produce on a
 * last-writer-wins store: all four read the head at seq 1 and write their own entry 2 (each
 * create-only check passes, as none is there yet when it looks; writer 4's PUT lands last, so the
 * log holds its entry); writer 3 had seen writer 1's entry 2 past the head, rolled forward over
 * it and wrote entry 3 on top of it; writer 3's head PUT landed last. The head names entry 3,
 * whose `prev` is an entry the log no longer holds.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildEntry } from '../../src/fleet/entry.js';
import { buildHead } from '../../src/fleet/head.js';
import { planFleet } from '../../src/fleet/plan.js';
import { readFleet } from '../../src/fleet/read.js';
import type { FleetRepairResult } from '../../src/fleet/repair.js';
import { registryRefResolver } from '../../src/fleet/resolve.js';
import { signFleetBytes, signFleetObject } from '../../src/fleet/signed.js';
import { loadSiteDeclarations } from '../../src/fleet/site-files.js';
import type { DoctorReport } from '../../src/doctor/doctor.js';
import { PayloadType, encodeEnvelope } from '../../src/registry/envelope.js';
import { generateKeyPair, writeKeyPair } from '../../src/registry/keys.js';
import { HEAD_KEY, fleetLogKey } from '../../src/registry/layout.js';
import { LEASE_KEY } from '../../src/fleet/lease.js';
import { S3Store } from '../../src/registry/s3-store.js';
import type { SyncResult } from '../../src/site/sync.js';
import { overwrite } from '../artifact/fixtures.js';
import { runCli } from '../helpers/cli.js';
import { startS3, type S3Fixture } from '../helpers/s3.js';
import { publishBasics, siteWorld, tempDir, type SiteWorld } from '../site/fixtures.js';
import { siteYaml, writeSite } from './registry-fixture.js';

const SITES = ['store-001', 'store-002'];
let s3: S3Fixture;

beforeAll(async () => {
  s3 = await startS3();
});
afterAll(async () => {
  await s3.stop();
});

function writeSites(dir: string, keys: Map<string, string>, region: string): void {
  for (const name of SITES) {
    writeSite(dir, name, siteYaml(name, { key: keys.get(name) ?? '', labels: { region } }));
  }
}

/** Entry 2 as writer `region` builds it from the fleet at seq 1 (its sites relabelled). */
async function writerEntry(w: SiteWorld, keys: Map<string, string>, region: string) {
  const dir = tempDir('edgectl-writer-');
  writeSites(dir, keys, region);
  const read = await readFleet(w.store, w.t.trust, { now: new Date() });
  const plan = await planFleet(
    loadSiteDeclarations(dir),
    read.state,
    registryRefResolver(w.store, w.t.trust),
  );
  return buildEntry(read.applied, plan.ops, new Date());
}

async function wedge(w: SiteWorld, keys: Map<string, string>): Promise<void> {
  const sign = (payload: Buffer) => signFleetBytes(PayloadType.entry, payload, [w.t.fleet]);
  const writers = await Promise.all(['w1', 'w2', 'w3', 'w4'].map((r) => writerEntry(w, keys, r)));
  const [w1, , , w4] = writers;
  if (!w1 || !w4) throw new Error('no writers');
  // Writer 3 rolled forward over writer 1's entry 2 and wrote entry 3 on top of it.
  const w3on1 = buildEntry(w1.next, [{ op: 'site.delete', site: 'store-002' }], new Date());
  for (const wr of writers) await overwrite(w.store, fleetLogKey(2), sign(wr.payload));
  await w.store.putIfAbsent(fleetLogKey(3), sign(w3on1.payload));
  const head = buildHead({
    seq: 3,
    entryDigest: w3on1.next.entryDigest ?? '',
    snapshotSeq: null,
    now: new Date(),
    ttlMs: 86_400_000,
  });
  await overwrite(w.store, HEAD_KEY, signFleetObject(PayloadType.head, head, [w.t.fleet]));
  expect((await w.store.get(fleetLogKey(2)))?.body.equals(sign(w4.payload))).toBe(true);
}

interface ErrorOut {
  error: { code: string; exitCode: number; message: string };
}

it('refuses by default, applies with --single-writer, and repairs the 4-writer wedge', async () => {
  const store = new S3Store(s3.bucket, `repair-${process.pid}`, { env: s3.env });
  try {
    const w = await siteWorld(store);
    await publishBasics(w, 64 * 1024);
    const dir = tempDir('edgectl-repair-');
    mkdirSync(join(dir, 'trust'), { recursive: true });
    writeFileSync(join(dir, 'trust/root.json'), encodeEnvelope(w.t.envelope));
    writeKeyPair(join(dir, 'keys/fleet.key'), w.t.fleet);
    writeFileSync(join(dir, 'edgectl.yaml'), `registry: ${store.url}\nkeys:\n  fleet: keys/fleet.key\n`);
    const keys = new Map(SITES.map((s) => [s, Buffer.from(generateKeyPair().publicKey).toString('base64')]));
    writeSites(join(dir, 'sites'), keys, 'eu');
    const cli = (...args: string[]) => runCli(args, { cwd: dir, env: { ...s3.env } });

    // Refused by default: exit 2, the fix named, nothing written.
    const refused = await cli('site', 'apply', '--json');
    expect(refused.code, refused.stderr).toBe(2);
    const err = refused.json<ErrorOut>().error;
    expect(err.code).toBe('E_NO_CONDITIONAL_WRITES');
    expect(refused.stdout).toContain('--single-writer');
    expect(await store.head(HEAD_KEY)).toBeUndefined();
    expect(await store.head(fleetLogKey(1))).toBeUndefined();

    const applied = await cli('site', 'apply', '--single-writer', '--json');
    expect(applied.code, applied.stderr).toBe(0);
    expect(applied.stderr).toMatch(/single-writer mode: .* relies on you/);
    expect(applied.json<{ seq: number }>().seq).toBe(1);
    expect(await store.head(LEASE_KEY)).toBeUndefined(); // released
    for (const s of SITES) {
      const r = await cli('site', 'sync', s, '--once', '--json');
      expect(r.code, r.stderr).toBe(0);
      expect(r.json<SyncResult>().seq).toBe(1);
    }

    await wedge(w, keys);
    // The symptoms: readers and writers exit 4; doctor fails naming the seq.
    expect((await cli('fleet', 'log')).code).toBe(4);
    expect((await cli('site', 'sync', 'store-001', '--once')).code).toBe(4);
    expect((await cli('site', 'apply', '--single-writer')).code).toBe(4);
    const doc = await cli('doctor', '--json');
    const chain = doc.json<DoctorReport>().checks.find((c) => c.id === 'fleet.chain');
    expect(chain?.status).toBe('fail');
    expect(chain?.detail).toMatch(/seq 3: fleet entry 3 does not continue the chain/);
    expect(chain?.fix).toContain('fleet repair');

    const headBefore = (await store.get(HEAD_KEY))?.body;
    const dry = await cli('fleet', 'repair', '--json');
    expect(dry.code, dry.stderr).toBe(0);
    const plan = dry.json<FleetRepairResult>();
    expect(plan).toMatchObject({
      applied: false,
      changes: true,
      headBefore: { seq: 3 },
      headAfter: { seq: 2 },
    });
    expect(plan.dropped.map((d) => d.seq)).toEqual([3]);
    expect((await store.get(HEAD_KEY))?.body.equals(headBefore ?? Buffer.alloc(0))).toBe(true);
    expect((await cli('fleet', 'repair', '--apply')).code).toBe(2); // refused without --single-writer

    const fixed = await cli('fleet', 'repair', '--apply', '--single-writer', '--json');
    expect(fixed.code, fixed.stderr).toBe(0);
    const done = fixed.json<FleetRepairResult>();
    expect(done).toMatchObject({ applied: true, headAfter: { seq: 2 } });
    const orphan = done.dropped[0]?.orphan ?? '';
    expect(orphan).toMatch(/^fleet\/orphans\/log\/000000000003-[0-9a-f]{16}\.json$/);
    expect(await store.head(orphan)).toBeDefined();
    expect(await store.head(fleetLogKey(3))).toBeUndefined();

    expect((await cli('fleet', 'log')).code).toBe(0);
    const again = await cli('fleet', 'repair', '--json');
    expect(again.json<FleetRepairResult>().changes).toBe(false);
    for (const s of SITES) {
      const r = await cli('site', 'sync', s, '--once', '--json');
      expect(r.code, r.stderr).toBe(0);
      expect(r.json<SyncResult>().seq).toBe(2);
    }
    // Apply works again: it writes back what git declares (writer 4's relabelling is undone).
    const reapplied = await cli('site', 'apply', '--single-writer', '--json');
    expect(reapplied.code, reapplied.stderr).toBe(0);
    expect(reapplied.json<{ seq: number }>().seq).toBe(3);
  } finally {
    await store.close();
  }
}, 300_000);
