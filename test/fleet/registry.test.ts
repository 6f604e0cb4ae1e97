import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConflictError, UserError, VerificationError } from '../../src/foundation/errors.js';
import { applyFleet, applyFleetWithRetries, type ApplyFleetOptions } from '../../src/fleet/apply.js';
import { buildEntry } from '../../src/fleet/entry.js';
import { buildHead } from '../../src/fleet/head.js';
import { listFleetLog } from '../../src/fleet/log.js';
import { readFleet } from '../../src/fleet/read.js';
import { signFleetObject } from '../../src/fleet/signed.js';
import { loadSiteDeclarations } from '../../src/fleet/site-files.js';
import { buildSnapshot } from '../../src/fleet/snapshot.js';
import { stateDigest } from '../../src/fleet/state.js';
import {
  PayloadType,
  decodeEnvelope,
  encodeEnvelope,
  envelopePayloadBytes,
  signPayloadBytes,
} from '../../src/registry/envelope.js';
import { generateKeyPair } from '../../src/registry/keys.js';
import { HEAD_KEY, fleetLogKey, snapshotKey } from '../../src/registry/layout.js';
import type { Store } from '../../src/registry/store.js';
import { forEachBackend } from '../helpers/stores.js';
import { at, declaration, fakeDigest } from './fixtures.js';
import {
  EXAMPLE_REFS,
  makeTrust,
  publishManifest,
  siteYaml,
  writeSite,
  type TestTrust,
} from './registry-fixture.js';

async function expectRejects(
  p: Promise<unknown>,
  cls: new (...a: never[]) => Error,
  code: string,
  msg?: RegExp,
) {
  let err: unknown;
  try {
    await p;
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(cls);
  expect((err as { code: string }).code).toBe(code);
  if (msg) expect((err as Error).message).toMatch(msg);
}

/** Replaces an immutable object, as an attacker with write access to the bucket could. */
async function overwrite(store: Store, key: string, body: Buffer): Promise<void> {
  await store.delete(key);
  await store.putIfAbsent(key, body);
}

forEachBackend((mk) => {
  let t: TestTrust;
  let sitesDir: string;
  let store: Store;
  let clockMinutes: number;

  beforeEach(async () => {
    t = makeTrust();
    sitesDir = mkdtempSync(join(tmpdir(), 'edgectl-sites-'));
    store = await mk();
    for (const ref of EXAMPLE_REFS) await publishManifest(store, t.artifacts, ref);
    clockMinutes = 0;
  });
  afterEach(() => rmSync(sitesDir, { recursive: true, force: true }));

  const opts = (extra: Partial<ApplyFleetOptions> = {}): ApplyFleetOptions => ({
    store,
    trust: t.trust,
    signer: t.fleet,
    sitesDir,
    clock: () => at(++clockMinutes),
    ...extra,
  });
  const read = (now = at(clockMinutes)) => readFleet(store, t.trust, { now });

  it('apply writes entry 1 and the head; readFleet returns the declared state', async () => {
    writeSite(sitesDir, 'store-001', siteYaml('store-001'));
    writeSite(sitesDir, 'store-002', siteYaml('store-002', { labels: { region: 'us-east' } }));
    const r = await applyFleet(opts());
    expect(r).toMatchObject({
      seq: 1,
      previousSeq: 0,
      snapshot: false,
      headMoved: true,
      summary: { add: 2 },
    });
    const fleet = await read();
    expect(fleet.seq).toBe(1);
    expect(stateDigest(fleet.state)).toBe(r.stateDigest);
    expect(Object.keys(fleet.state.sites)).toEqual(['store-001', 'store-002']);
    expect(fleet.state.sites['store-002']?.assignments.adapters.map((a) => a.ref)).toEqual([
      'adapter/support@1.0.0',
    ]);
    expect(fleet.head?.entryDigest).toBe(r.entryDigest);
  });

  it('apply with nothing to change writes nothing', async () => {
    writeSite(sitesDir, 'store-001', siteYaml('store-001'));
    await applyFleet(opts());
    store.resetStats();
    const r = await applyFleet(opts());
    expect(r.ops).toEqual([]);
    expect(r.headMoved).toBe(false);
    expect(store.stats.puts).toBe(0);
  });

  it('re-signs a head past half its lifetime even without changes', async () => {
    writeSite(sitesDir, 'store-001', siteYaml('store-001'));
    await applyFleet(opts({ headTtlMs: 10 * 60_000 }));
    clockMinutes += 6;
    const before = (await store.head(HEAD_KEY))?.etag;
    const r = await applyFleet(opts({ headTtlMs: 10 * 60_000 }));
    expect(r).toMatchObject({ ops: [], headMoved: true, seq: 1 });
    expect((await store.head(HEAD_KEY))?.etag).not.toBe(before);
    // The refreshed head is valid at a time the old one had expired.
    expect((await readFleet(store, t.trust, { now: at(clockMinutes + 9) })).seq).toBe(1);
  });

  it('writes snapshots every N entries and reads through the latest one', async () => {
    for (let i = 1; i <= 5; i++) {
      writeSite(sitesDir, `s${i}`, siteYaml(`s${i}`));
      const r = await applyFleet(opts({ snapshotEvery: 2 }));
      expect(r.snapshot).toBe(i % 2 === 0);
    }
    store.resetStats();
    const fleet = await read();
    expect(fleet.seq).toBe(5);
    expect(fleet.head?.snapshotSeq).toBe(4);
    expect(Object.keys(fleet.state.sites)).toHaveLength(5);
    // head + snapshot 4 + entry 5: the reader did not replay entries 1-4.
    expect(store.stats.gets).toBe(3);
  });

  it('an artifact missing from the registry is a UserError naming file:line', async () => {
    writeSite(
      sitesDir,
      'store-001',
      siteYaml('store-001', { adapters: ['adapter/support@1.0.0', 'adapter/legal@9.0.0'] }),
    );
    await expectRejects(
      applyFleet(opts({ display: (p) => p.replace(`${sitesDir}/`, 'sites/') })),
      UserError,
      'E_ARTIFACT_MISSING',
      /sites\/store-001\.yaml:9: assignments\.adapters\.1: adapter\/legal@9\.0\.0 is not in the registry/,
    );
    expect(await store.get(fleetLogKey(1))).toBeUndefined();
  });

  it('refuses a signer outside the fleet role before writing', async () => {
    writeSite(sitesDir, 'store-001', siteYaml('store-001'));
    await expectRejects(applyFleet(opts({ signer: t.artifacts })), UserError, 'E_NOT_FLEET_KEY');
    expect(await store.list('fleet/')).toEqual([]);
  });

  describe('verification', () => {
    beforeEach(async () => {
      writeSite(sitesDir, 'store-001', siteYaml('store-001'));
      await applyFleet(opts({ snapshotEvery: 2 }));
      writeSite(sitesDir, 'store-002', siteYaml('store-002'));
      await applyFleet(opts({ snapshotEvery: 2 }));
      writeSite(sitesDir, 'store-003', siteYaml('store-003'));
      await applyFleet(opts({ snapshotEvery: 2 }));
    });

    it('refuses a tampered entry', async () => {
      const obj = await store.get(fleetLogKey(3));
      const env = decodeEnvelope(obj!.body, 'x');
      const payload = envelopePayloadBytes(env).toString().replace('store-003', 'store-666');
      await overwrite(
        store,
        fleetLogKey(3),
        encodeEnvelope({ ...env, payload: Buffer.from(payload).toString('base64') }),
      );
      await expectRejects(
        read(),
        VerificationError,
        'E_SIGNATURE',
        /fleet\/log\/000000000003\.json: bad signature/,
      );
    });

    it('refuses an entry signed by an unknown key', async () => {
      const obj = await store.get(fleetLogKey(3));
      const env = decodeEnvelope(obj!.body, 'x');
      const forged = signPayloadBytes(PayloadType.entry, envelopePayloadBytes(env), [generateKeyPair()]);
      await overwrite(store, fleetLogKey(3), encodeEnvelope(forged));
      await expectRejects(read(), VerificationError, 'E_SIGNATURE', /signed by unknown key/);
    });

    it('refuses an entry stored under another seq', async () => {
      const two = await store.get(fleetLogKey(2));
      await overwrite(store, fleetLogKey(3), two!.body);
      await expectRejects(read(), VerificationError, 'E_ENTRY_INVALID', /holds entry seq 2, not 3/);
    });

    it('refuses a tampered snapshot and one whose state does not match its digest', async () => {
      const fleet = await read();
      const snap = buildSnapshot({ ...fleet.applied, seq: 2 });
      // Correctly signed by the fleet key, but the state is not the one the digest names.
      const lying = { ...snap, stateDigest: fakeDigest('another state') };
      await overwrite(store, snapshotKey(2), signFleetObject(PayloadType.snapshot, lying, [t.fleet]));
      await expectRejects(read(), VerificationError, 'E_STATE_DIGEST', /does not match its stateDigest/);

      const obj = await store.get(snapshotKey(2));
      const env = decodeEnvelope(obj!.body, 'x');
      await overwrite(
        store,
        snapshotKey(2),
        encodeEnvelope({
          ...env,
          signatures: [
            {
              ...env.signatures[0]!,
              sig: env.signatures[0]!.sig.replace(/^./, (c) => (c === 'A' ? 'B' : 'A')),
            },
          ],
        }),
      );
      await expectRejects(read(), VerificationError, 'E_SIGNATURE');
    });

    it('refuses a tampered head, a head naming another entry, and an expired head', async () => {
      const obj = await store.get(HEAD_KEY);
      const env = decodeEnvelope(obj!.body, 'x');
      const payload = envelopePayloadBytes(env).toString().replace('"seq":3', '"seq":2');
      await store.compareAndSwap(
        HEAD_KEY,
        encodeEnvelope({ ...env, payload: Buffer.from(payload).toString('base64') }),
        obj!.etag,
      );
      await expectRejects(read(), VerificationError, 'E_SIGNATURE', /fleet\/head\.json/);

      const lying = buildHead({
        seq: 3,
        entryDigest: fakeDigest('x'),
        snapshotSeq: 2,
        now: at(clockMinutes),
        ttlMs: 86_400_000,
      });
      const cur = await store.head(HEAD_KEY);
      await store.compareAndSwap(HEAD_KEY, signFleetObject(PayloadType.head, lying, [t.fleet]), cur!.etag);
      await expectRejects(read(), VerificationError, 'E_HEAD_MISMATCH');

      await expectRejects(read(at(60 * 24 * 30)), VerificationError, 'E_EXPIRED', /expired/);
    });

    it('fleet log lists and verifies the entries', async () => {
      const log = await listFleetLog(store, t.trust, { now: at(clockMinutes) });
      expect(log.head).toMatchObject({ seq: 3, snapshotSeq: 2, expired: false });
      expect(log.entries.map((e) => e.seq)).toEqual([1, 2, 3]);
      expect(log.entries[0]!.keyids).toEqual([t.fleet.keyid]);
      expect(log.entries[1]!.ops).toEqual([
        'site.put store-002',
        'assign model model/draft@1.0.0 -> 1 site (store-002)',
        expect.any(String),
        expect.any(String),
      ]);
      expect(
        (await listFleetLog(store, t.trust, { now: at(clockMinutes), since: 2 })).entries.map((e) => e.seq),
      ).toEqual([3]);
    });
  });

  it('includes an entry written past the head by a crashed apply, and moves the head to it', async () => {
    writeSite(sitesDir, 'store-001', siteYaml('store-001'));
    await applyFleet(opts());
    const fleet = await read();
    // A valid entry 2 whose writer died before moving the head.
    const { entry } = buildEntry(fleet.applied, [{ op: 'site.put', site: declaration('orphan') }], at(50));
    await store.putIfAbsent(fleetLogKey(2), signFleetObject(PayloadType.entry, entry, [t.fleet]));
    writeSite(sitesDir, 'store-002', siteYaml('store-002'));
    const r = await applyFleet(opts());
    expect(r).toMatchObject({ rolledForward: 1, previousSeq: 1, seq: 3 });
    // sites/ does not declare "orphan": the new entry removes it, nothing was overwritten.
    expect(r.ops.map((o) => o.op)).toContain('site.delete');
    expect(Object.keys((await read()).state.sites)).toEqual(['store-001', 'store-002']);
  });

  it('loads declarations written to disk for the plan', () => {
    writeSite(sitesDir, 'store-001', siteYaml('store-001'));
    expect(loadSiteDeclarations(sitesDir).map((s) => s.declaration.name)).toEqual(['store-001']);
  });
});

describe('racing applies (deterministic interleavings)', () => {
  forEachBackend(
    (mk) => {
      let t: TestTrust;
      let dirA: string;
      let dirB: string;

      beforeEach(() => {
        t = makeTrust();
        dirA = mkdtempSync(join(tmpdir(), 'edgectl-sites-a-'));
        dirB = mkdtempSync(join(tmpdir(), 'edgectl-sites-b-'));
        writeSite(dirA, 'store-001', siteYaml('store-001'));
        writeSite(dirB, 'store-002', siteYaml('store-002'));
      });
      afterEach(() => {
        rmSync(dirA, { recursive: true, force: true });
        rmSync(dirB, { recursive: true, force: true });
      });

      /** A store that lets `competitor` run to completion right before our first write of `method`. */
      function interleaved(
        store: Store,
        method: 'putIfAbsent' | 'compareAndSwap',
        competitor: () => Promise<unknown>,
      ): Store {
        let fired = false;
        return new Proxy(store, {
          get(target, prop, receiver) {
            const value = Reflect.get(target, prop, receiver) as unknown;
            if (prop !== method || typeof value !== 'function')
              return typeof value === 'function' ? value.bind(target) : value;
            return async (...args: unknown[]) => {
              const key = args[0] as string;
              if (!fired && key.startsWith('fleet/')) {
                fired = true;
                await competitor();
              }
              return (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
            };
          },
        });
      }

      it('the loser of the entry race gets a retryable conflict; the log does not fork', async () => {
        const store = await mk();
        for (const ref of EXAMPLE_REFS) await publishManifest(store, t.artifacts, ref);
        const base = { trust: t.trust, signer: t.fleet, clock: () => new Date() };
        const b = () => applyFleet({ ...base, store, sitesDir: dirB });
        const racingStore = interleaved(store, 'putIfAbsent', b);
        await expectRejects(
          applyFleet({ ...base, store: racingStore, sitesDir: dirA }),
          ConflictError,
          'E_APPLY_CONFLICT',
          /another `site apply` wrote this seq first \(fleet seq 1\)/,
        );
        const fleet = await readFleet(store, t.trust, { now: new Date() });
        expect(fleet.seq).toBe(1);
        expect(Object.keys(fleet.state.sites)).toEqual(['store-002']);
        // With retries it re-plans against B's entry and succeeds.
        const again = interleaved(store, 'putIfAbsent', async () => {});
        const r = await applyFleetWithRetries({ ...base, store: again, sitesDir: dirA }, 2);
        expect(r.seq).toBe(2);
        expect(Object.keys((await readFleet(store, t.trust, { now: new Date() })).state.sites)).toEqual([
          'store-001',
        ]);
      });

      it('a head deleted behind the apply is reported as such (retryable), not as a race; retry rebuilds it', async () => {
        const store = await mk();
        for (const ref of EXAMPLE_REFS) await publishManifest(store, t.artifacts, ref);
        const base = { trust: t.trust, signer: t.fleet, clock: () => new Date() };
        await applyFleet({ ...base, store, sitesDir: dirB });
        writeSite(dirB, 'store-001', siteYaml('store-001'));
        const deleting = interleaved(store, 'compareAndSwap', () => store.delete(HEAD_KEY));
        await expectRejects(
          applyFleet({ ...base, store: deleting, sitesDir: dirB }),
          ConflictError,
          'E_HEAD_DELETED',
          /fleet\/head\.json was deleted while this apply ran \(fleet seq 2 was written; the head was not moved\)/,
        );
        // Nothing past the failed precondition: no head was re-created by the failed apply.
        expect(await store.head(HEAD_KEY)).toBeUndefined();
        const r = await applyFleetWithRetries({ ...base, store, sitesDir: dirB }, 1);
        expect(r).toMatchObject({ seq: 2, rolledForward: 2, headMoved: true });
        expect((await readFleet(store, t.trust, { now: new Date() })).seq).toBe(2);
      });

      it('a head replaced behind the apply is a lost race (the head really moved); the replacement stays', async () => {
        const store = await mk();
        for (const ref of EXAMPLE_REFS) await publishManifest(store, t.artifacts, ref);
        const base = { trust: t.trust, signer: t.fleet, clock: () => new Date() };
        await applyFleet({ ...base, store, sitesDir: dirB });
        const replacement = Buffer.from('{"not":"a head"}');
        const replacing = interleaved(store, 'compareAndSwap', async () => {
          const cur = await store.head(HEAD_KEY);
          await store.compareAndSwap(HEAD_KEY, replacement, cur?.etag);
        });
        writeSite(dirB, 'store-001', siteYaml('store-001'));
        await expectRejects(
          applyFleet({ ...base, store: replacing, sitesDir: dirB }),
          ConflictError,
          'E_APPLY_CONFLICT',
          /moved the fleet head first/,
        );
        expect((await store.get(HEAD_KEY))?.body.equals(replacement)).toBe(true);
      });

      // s3rver does not enforce If-Match, so only fs and RGW can lose a head race.
      if (mk.backend !== 's3') {
        it('the loser of the head race gets a conflict; its entry is kept and picked up next time', async () => {
          const store = await mk();
          for (const ref of EXAMPLE_REFS) await publishManifest(store, t.artifacts, ref);
          const base = { trust: t.trust, signer: t.fleet, clock: () => new Date() };
          const b = () => applyFleet({ ...base, store, sitesDir: dirB });
          await expectRejects(
            applyFleet({ ...base, store: interleaved(store, 'compareAndSwap', b), sitesDir: dirA }),
            ConflictError,
            'E_APPLY_CONFLICT',
            /moved the fleet head first/,
          );
          // B rolled forward over A's entry 1 and wrote entry 2 on top of it.
          const fleet = await readFleet(store, t.trust, { now: new Date() });
          expect(fleet.seq).toBe(2);
          const log = await listFleetLog(store, t.trust, { now: new Date() });
          expect(log.entries.map((e) => e.prev)).toEqual([null, log.entries[0]!.digest]);
        });
      }
    },
    ['fs', 's3', 'rgw'],
  );
});

describe('sites directory errors', () => {
  it('an unknown site file field names file:line', () => {
    const dir = mkdtempSync(join(tmpdir(), 'edgectl-sites-'));
    writeFileSync(join(dir, 'a.yaml'), siteYaml('a', { extra: 'colour: blue' }));
    expect(() => loadSiteDeclarations(dir)).toThrow(/a\.yaml:10: colour: unknown field "colour"/);
    rmSync(dir, { recursive: true, force: true });
  });
});
