/**
 * Everything a site must refuse, on both registry backends: a tampered entry, snapshot or head; an
 * entry signed by an unknown key; a broken prev chain; a fork; a head with a lower seq than applied
 * (rollback); an expired head (freeze); a snapshot whose state does not match its digest; another
 * manifest swapped in for an assigned one (mix-and-match); a corrupted chunk. Each is a
 * VerificationError (exit 4) and the site keeps its current generation and its state.json bytes.
 */
import { readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { ExitCode } from '../../src/foundation/errors.js';
import { manifestDigest, parseManifest } from '../../src/artifact/manifest.js';
import {
  buildEntry,
  entryDigest,
  genesis,
  type AppliedFleet,
  type FleetEntry,
} from '../../src/fleet/entry.js';
import { buildHead } from '../../src/fleet/head.js';
import { readFleet } from '../../src/fleet/read.js';
import { signFleetObject } from '../../src/fleet/signed.js';
import { buildSnapshot } from '../../src/fleet/snapshot.js';
import {
  PayloadType,
  decodeEnvelope,
  encodeEnvelope,
  peekPayload,
  signEnvelope,
  type Envelope,
} from '../../src/registry/envelope.js';
import { generateKeyPair } from '../../src/registry/keys.js';
import { HEAD_KEY, artifactKey, blobKey, fleetLogKey, snapshotKey } from '../../src/registry/layout.js';
import type { Store } from '../../src/registry/store.js';
import { siteStatus } from '../../src/site/status.js';
import { overwrite } from '../artifact/fixtures.js';
import { fakeDigest } from '../fleet/fixtures.js';
import { forEachBackend, type MakeStore } from '../helpers/stores.js';
import {
  adapterDir,
  publishBasics,
  siteWorld,
  tempDir,
  type Assignment,
  type SiteWorld,
} from './fixtures.js';

interface Installed {
  w: SiteWorld;
  refs: Required<Omit<Assignment, 'indexes'>>;
  /** Bytes of the seq-1 head, for replaying it. */
  head1: Buffer;
}

/** A site that installed seq 1. */
async function installed(mk: MakeStore, opts: { snapshotEvery?: number } = {}): Promise<Installed> {
  const w = await siteWorld(await mk());
  const refs = await publishBasics(w, 64 * 1024);
  await w.assign(refs, opts);
  await w.sync();
  const head1 = (await w.store.get(HEAD_KEY))?.body ?? Buffer.alloc(0);
  return { w, refs, head1 };
}

/** Publishes adapter 1.1.0 and assigns it (seq 2), which the site has not installed yet. */
async function nextChange(x: Installed, opts: { snapshotEvery?: number; now?: Date } = {}): Promise<void> {
  await x.w.publish(adapterDir(tempDir(), { version: '1.1.0', base: 'model/draft@1.0.0', seed: 21 }));
  await x.w.assign({ ...x.refs, adapters: ['adapter/support@1.1.0'] }, opts);
}

function localState(w: SiteWorld): { current: string; state: string } {
  return {
    current: readlinkSync(join(w.dataDir, 'current')),
    state: readFileSync(join(w.dataDir, 'state.json'), 'utf8'),
  };
}

/** The sync is refused with `code` and exit 4, and nothing local moved. */
async function expectRefused(
  w: SiteWorld,
  code: string,
  extra: Parameters<SiteWorld['sync']>[0] = {},
): Promise<void> {
  const before = localState(w);
  const err = await w.sync(extra).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `expected ${code}`).toMatchObject({ code, exitCode: ExitCode.Verification });
  expect(localState(w)).toEqual(before);
  const last = JSON.parse(readFileSync(join(w.dataDir, 'last-sync.json'), 'utf8'));
  expect(last).toMatchObject({ result: 'refused', error: { code } });
}

async function envelopeAt(store: Store, key: string): Promise<Envelope> {
  const obj = await store.get(key);
  if (!obj) throw new Error(`missing ${key}`);
  return decodeEnvelope(obj.body, key);
}

/** Same signatures, one payload field changed. */
async function tamperPayload(
  store: Store,
  key: string,
  edit: (p: Record<string, unknown>) => void,
): Promise<void> {
  const env = await envelopeAt(store, key);
  const payload = peekPayload(env) as Record<string, unknown>;
  edit(payload);
  const tampered = { ...env, payload: Buffer.from(JSON.stringify(payload)).toString('base64') };
  await overwrite(store, key, encodeEnvelope(tampered));
}

async function fleetAt(w: SiteWorld): Promise<AppliedFleet> {
  return (await readFleet(w.store, w.t.trust, { now: new Date() })).applied;
}

/** Writes `entry` as seq N and a head naming it, both signed by the fleet key. */
async function forge(w: SiteWorld, entry: FleetEntry, snapshotSeq: number | null = null): Promise<void> {
  await overwrite(w.store, fleetLogKey(entry.seq), signFleetObject(PayloadType.entry, entry, [w.t.fleet]));
  const head = buildHead({
    seq: entry.seq,
    entryDigest: entryDigest(entry),
    snapshotSeq,
    now: new Date(),
    ttlMs: 86_400_000,
  });
  await overwrite(w.store, HEAD_KEY, signFleetObject(PayloadType.head, head, [w.t.fleet]));
}

forEachBackend((mk) => {
  it('a tampered entry', async () => {
    const x = await installed(mk);
    await nextChange(x);
    await tamperPayload(x.w.store, fleetLogKey(2), (p) => {
      p.time = '2031-01-01T00:00:00.000Z';
    });
    await expectRefused(x.w, 'E_SIGNATURE');
  });

  it('an entry signed by an unknown key', async () => {
    const x = await installed(mk);
    await nextChange(x);
    const env = await envelopeAt(x.w.store, fleetLogKey(2));
    const stranger = signEnvelope(PayloadType.entry, peekPayload(env), [generateKeyPair()]);
    await overwrite(x.w.store, fleetLogKey(2), encodeEnvelope(stranger));
    await expectRefused(x.w, 'E_SIGNATURE');
  });

  it('a tampered head', async () => {
    const x = await installed(mk);
    await nextChange(x);
    await tamperPayload(x.w.store, HEAD_KEY, (p) => {
      p.expires = '2099-01-01T00:00:00.000Z';
    });
    await expectRefused(x.w, 'E_SIGNATURE');
  });

  it('a tampered snapshot', async () => {
    const x = await installed(mk, { snapshotEvery: 1 });
    await nextChange(x, { snapshotEvery: 1 });
    await tamperPayload(x.w.store, snapshotKey(2), (p) => {
      p.seq = 2;
      (p.state as { sites: Record<string, unknown> }).sites = {};
    });
    await expectRefused(x.w, 'E_SIGNATURE', { snapshotWhenBehind: 0 });
  });

  it('a snapshot whose state does not match its digest', async () => {
    const x = await installed(mk, { snapshotEvery: 1 });
    await nextChange(x, { snapshotEvery: 1 });
    const snap = buildSnapshot(await fleetAt(x.w));
    const lying = { ...snap, stateDigest: fakeDigest('another state') };
    await overwrite(x.w.store, snapshotKey(2), signFleetObject(PayloadType.snapshot, lying, [x.w.t.fleet]));
    await expectRefused(x.w, 'E_STATE_DIGEST', { snapshotWhenBehind: 0 });
  });

  it('a broken prev chain', async () => {
    const x = await installed(mk);
    const applied = await fleetAt(x.w);
    const { entry } = buildEntry(applied, [{ op: 'site.delete', site: 'store-001' }], new Date());
    await forge(x.w, { ...entry, prev: fakeDigest('not entry 1') });
    await expectRefused(x.w, 'E_CHAIN');
  });

  it('a fork: another entry at the applied seq', async () => {
    const x = await installed(mk);
    // The same op as entry 1 at another time: a different, validly signed entry 1.
    const declaration = (await fleetAt(x.w)).state.sites['store-001']?.declaration;
    if (!declaration) throw new Error('no declaration');
    const { entry } = buildEntry(
      genesis(),
      [{ op: 'site.put', site: declaration }],
      new Date('2031-02-03T00:00:00Z'),
    );
    await forge(x.w, entry);
    await expectRefused(x.w, 'E_FORK');
  });

  it('a fork hidden behind a snapshot', async () => {
    const x = await installed(mk, { snapshotEvery: 1 });
    await nextChange(x, { snapshotEvery: 1 });
    // Entry 1 is rewritten; snapshot 2 and the head are genuine: the site still notices.
    const env = await envelopeAt(x.w.store, fleetLogKey(1));
    const payload = peekPayload(env) as FleetEntry;
    const rewritten = { ...payload, time: '2031-05-05T00:00:00.000Z' };
    await overwrite(x.w.store, fleetLogKey(1), signFleetObject(PayloadType.entry, rewritten, [x.w.t.fleet]));
    await expectRefused(x.w, 'E_FORK', { snapshotWhenBehind: 0 });
  });

  it('a head with a lower seq than applied (rollback)', async () => {
    const x = await installed(mk);
    await nextChange(x);
    expect((await x.w.sync()).seq).toBe(2);
    await overwrite(x.w.store, HEAD_KEY, x.head1);
    await expectRefused(x.w, 'E_ROLLBACK');
  });

  it('an expired head (freeze): nothing new installed, status says frozen', async () => {
    const x = await installed(mk);
    await nextChange(x);
    const later = new Date(Date.now() + 8 * 86_400_000);
    await expectRefused(x.w, 'E_FROZEN', { clock: () => later });
    const status = await siteStatus({ site: x.w.site, dataDir: x.w.dataDir, now: later });
    expect(status).toMatchObject({ frozen: true, seq: 1 });
    // An unchanged head that expires freezes the site too.
    expect((await x.w.sync()).seq).toBe(2);
    await expectRefused(x.w, 'E_FROZEN', { clock: () => later });
  });

  it('a manifest of another version swapped in (mix-and-match)', async () => {
    const x = await installed(mk);
    await nextChange(x);
    const key = artifactKey('adapter', 'support', '1.1.0');
    // Copied from 1.0.0: validly signed, but it names another version.
    await overwrite(
      x.w.store,
      key,
      (await x.w.store.get(artifactKey('adapter', 'support', '1.0.0')))?.body ?? Buffer.alloc(0),
    );
    await expectRefused(x.w, 'E_MANIFEST_IDENTITY');
    // Re-signed by the artifacts key with other content: valid, right identity, not the pinned digest.
    const env = await envelopeAt(x.w.store, artifactKey('adapter', 'support', '1.0.0'));
    const other = parseManifest({ ...(peekPayload(env) as object), version: '1.1.0' }, key);
    await overwrite(
      x.w.store,
      key,
      encodeEnvelope(signEnvelope(PayloadType.artifact, other, [x.w.t.artifacts])),
    );
    expect(manifestDigest(other)).not.toBe(
      (await fleetAt(x.w)).state.sites['store-001']?.assignments.adapters[0]?.manifestDigest,
    );
    await expectRefused(x.w, 'E_MANIFEST_PINNED');
  });

  it('a corrupted chunk', async () => {
    const x = await installed(mk);
    await nextChange(x);
    const env = await envelopeAt(x.w.store, artifactKey('adapter', 'support', '1.1.0'));
    const m = parseManifest(peekPayload(env), 'adapter');
    const blob = m.files.find((f) => f.path === 'adapter_model.safetensors')?.chunks[0]?.blob ?? '';
    const bytes = Buffer.from((await x.w.store.get(blobKey(blob)))?.body ?? Buffer.alloc(0));
    bytes[bytes.length - 10] = (bytes[bytes.length - 10] ?? 0) ^ 1;
    await overwrite(x.w.store, blobKey(blob), bytes);
    await expectRefused(x.w, 'E_CHUNK_HASH');
  });
});
