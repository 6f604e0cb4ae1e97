/**
 * The rule for signatures across key rotations (src/registry/trust-history.ts), in-process on a
 * directory registry: which fleet objects and manifests an earlier root version's keys may still
 * sign, what a revoked key's signatures are worth, and that the earlier roots are verified
 * backwards (a forged old root adds no keys). The CLI procedures are key-rotation.test.ts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { UserError } from '../../src/foundation/errors.js';
import { resolveRef } from '../../src/artifact/manifest-store.js';
import { parseRef } from '../../src/artifact/ref.js';
import { resignArtifact } from '../../src/artifact/resign.js';
import { applyFleet } from '../../src/fleet/apply.js';
import { buildEntry } from '../../src/fleet/entry.js';
import { readFleet } from '../../src/fleet/read.js';
import { resignFleet } from '../../src/fleet/resign.js';
import { signFleetBytes, signFleetObject } from '../../src/fleet/signed.js';
import { buildSnapshot } from '../../src/fleet/snapshot.js';
import { PayloadType, encodeEnvelope, type Envelope } from '../../src/registry/envelope.js';
import { FsStore } from '../../src/registry/fs-store.js';
import { generateKeyPair, type KeyPair } from '../../src/registry/keys.js';
import { fleetLogKey, snapshotKey, trustRootKey } from '../../src/registry/layout.js';
import {
  createTrustRoot,
  rotateTrustRoot,
  verifySelfSignedRoot,
  type TrustRoot,
} from '../../src/registry/trust.js';
import { loadPastRoots, walkTrustInForce } from '../../src/registry/trust-history.js';
import {
  EXAMPLE_REFS,
  makeTrust,
  publishManifest,
  siteYaml,
  writeSite,
  type TestTrust,
} from './registry-fixture.js';

const YEAR = () => new Date(Date.now() + 365 * 86_400_000);

async function rejects(p: Promise<unknown>, code: string): Promise<Error> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `expected ${code}`).toBeInstanceOf(Error);
  expect((err as { code?: string }).code, (err as Error).message).toBe(code);
  return err as Error;
}

describe('signatures across key rotations', () => {
  let dir: string;
  let store: FsStore;
  let t: TestTrust;
  let env: Envelope;
  const now = () => new Date();

  async function publishRoot(next: Envelope): Promise<TrustRoot> {
    const root = verifySelfSignedRoot(next);
    await store.putIfAbsent(trustRootKey(root.version), encodeEnvelope(next));
    env = next;
    return (await walkTrustInForce(store, t.envelope, now())).root;
  }

  async function apply(trust: TrustRoot, signer: KeyPair, sites = ['s1']) {
    for (const s of sites) writeSite(join(dir, 'sites'), s, siteYaml(s));
    return applyFleet({ store, trust, signer, sitesDir: join(dir, 'sites'), clock: now, snapshotEvery: 1 });
  }

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'edgectl-rotrule-'));
    store = new FsStore(join(dir, 'registry'));
    t = makeTrust();
    env = t.envelope;
    await store.putIfAbsent(trustRootKey(1), encodeEnvelope(t.envelope));
    for (const ref of EXAMPLE_REFS) await publishManifest(store, t.artifacts, ref);
    await apply(t.trust, t.fleet);
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('after a fleet-key rotation: old entries and snapshots count, an old head only for a writer', async () => {
    const f2 = generateKeyPair();
    const trust = await publishRoot(rotateTrustRoot(env, { fleetKeys: [f2], expires: YEAR() }, [t.root]));
    await rejects(readFleet(store, trust, { now: now() }), 'E_SIGNER_ROTATED');
    const asWriter = await readFleet(store, trust, { now: now(), writer: true });
    expect(asWriter.headPastVersion).toBe(1);

    // An entry past the head signed by the old key is not covered by anything: refused.
    const fresh = buildEntry(asWriter.applied, [{ op: 'site.delete', site: 's1' }], now());
    await store.putIfAbsent(fleetLogKey(2), signFleetBytes(PayloadType.entry, fresh.payload, [t.fleet]));
    await rejects(apply(trust, f2), 'E_SIGNER_ROTATED');
    await store.delete(fleetLogKey(2));

    const r = await apply(trust, f2, ['s1', 's2']);
    expect(r).toMatchObject({ seq: 2, headMoved: true });
    // Entry 1 and snapshot 1 are still the old key's, valid through the chain.
    const read = await readFleet(store, trust, { now: now() });
    expect(Object.keys(read.state.sites).sort()).toEqual(['s1', 's2']);
  });

  it('a snapshot signed by an earlier key must be the state of its entry', async () => {
    const f2 = generateKeyPair();
    const trust = await publishRoot(rotateTrustRoot(env, { fleetKeys: [f2], expires: YEAR() }, [t.root]));
    await resignFleet({ store, trust, signers: [f2], clock: now });
    await readFleet(store, trust, { now: now() });
    // Another state at seq 1, validly signed by the old key (someone still holding it).
    const real = (await readFleet(store, trust, { now: now() })).applied;
    const snap = buildSnapshot({ ...real, state: { sites: {} } });
    const forged = signFleetObject(PayloadType.snapshot, snap, [t.fleet]);
    await store.delete(snapshotKey(1));
    await store.putIfAbsent(snapshotKey(1), forged);
    await rejects(readFleet(store, trust, { now: now() }), 'E_SNAPSHOT_INVALID');
  });

  it('a revoked key counts nowhere until fleet resign --accept-revoked re-signs its objects', async () => {
    const f2 = generateKeyPair();
    const a2 = generateKeyPair();
    const trust = await publishRoot(
      rotateTrustRoot(
        env,
        { fleetKeys: [f2], artifactsKeys: [a2], revoke: [t.fleet.keyid, t.artifacts.keyid], expires: YEAR() },
        [t.root],
      ),
    );
    expect(trust.revoked).toEqual([t.artifacts.keyid, t.fleet.keyid].sort());
    await rejects(readFleet(store, trust, { now: now(), writer: true }), 'E_KEY_REVOKED');
    await rejects(resignFleet({ store, trust, signers: [f2], clock: now }), 'E_KEY_REVOKED');
    const r = await resignFleet({ store, trust, signers: [f2], clock: now, acceptRevoked: true });
    expect(r).toMatchObject({ seq: 1, entries: [1], snapshots: [1] });
    await readFleet(store, trust, { now: now() });

    // A manifest the fleet pins, signed by the revoked artifacts key: refused even when pinned.
    const ref = parseRef('model/draft@1.0.0');
    const digest = (await resolveRef(store, ref, undefined)).digest;
    await rejects(resolveRef(store, ref, trust, { pinned: new Set([digest]) }), 'E_KEY_REVOKED');
    await rejects(resignArtifact(store, trust, 'model/draft@1.0.0', [a2]), 'E_KEY_REVOKED');
    const re = await resignArtifact(store, trust, 'model/draft@1.0.0', [a2], true);
    expect(re).toMatchObject({ resigned: true, manifestDigest: digest, signedBy: [a2.keyid] });
    expect((await resolveRef(store, ref, trust)).digest).toBe(digest);
  });

  it('an earlier artifacts key counts only for manifests the fleet state pins', async () => {
    const a2 = generateKeyPair();
    const trust = await publishRoot(rotateTrustRoot(env, { artifactsKeys: [a2], expires: YEAR() }, [t.root]));
    const ref = parseRef('policy/default@1.0.0');
    const digest = (await resolveRef(store, ref, undefined)).digest;
    await rejects(resolveRef(store, ref, trust), 'E_SIGNER_ROTATED');
    expect((await resolveRef(store, ref, trust, { pinned: new Set([digest]) })).digest).toBe(digest);
  });

  it('rotations refuse to revoke unknown keys, to empty a role, or to give a revoked key a role', () => {
    expect(() =>
      rotateTrustRoot(env, { revoke: [generateKeyPair().keyid], expires: YEAR() }, [t.root]),
    ).toThrow(/not a key of trust root version 1/);
    expect(() => rotateTrustRoot(env, { revoke: [t.fleet.keyid], expires: YEAR() }, [t.root])).toThrow(
      /leaves the fleet role without keys/,
    );
    const v2 = rotateTrustRoot(
      env,
      { fleetKeys: [generateKeyPair()], revoke: [t.fleet.keyid], expires: YEAR() },
      [t.root],
    );
    const err = (() => {
      try {
        rotateTrustRoot(v2, { artifactsKeys: [t.fleet], expires: YEAR() }, [t.root]);
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).code).toBe('E_KEY_REVOKED');
  });

  it('earlier roots are verified backwards: a forged old root adds no keys', async () => {
    const f2 = generateKeyPair();
    const v2 = rotateTrustRoot(env, { fleetKeys: [f2], expires: YEAR() }, [t.root]);
    // A registry whose version 1 is another project's root (an attacker's keys in every role).
    const forgedStore = new FsStore(join(dir, 'forged'));
    try {
      const attacker = generateKeyPair();
      const forged = createTrustRoot({ rootKeys: [attacker], expires: YEAR() });
      await forgedStore.putIfAbsent(trustRootKey(1), encodeEnvelope(forged));
      await forgedStore.putIfAbsent(trustRootKey(2), encodeEnvelope(v2));
      expect(await loadPastRoots(forgedStore, v2)).toEqual([]);
      await store.putIfAbsent(trustRootKey(2), encodeEnvelope(v2));
      expect((await loadPastRoots(store, v2)).map((r) => r.version)).toEqual([1]);
    } finally {
      await forgedStore.close();
    }
  });
});
