import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { UserError, VerificationError } from '../../src/foundation/errors.js';
import { PayloadType, encodeEnvelope, signEnvelope, type Envelope } from '../../src/registry/envelope.js';
import { initRegistry } from '../../src/registry/init.js';
import { generateKeyPair } from '../../src/registry/keys.js';
import { trustRootKey } from '../../src/registry/layout.js';
import {
  buildTrustRoot,
  createTrustRoot,
  loadRegistryTrust,
  loadTrustRootFile,
  roleKeys,
  rotateTrustRoot,
  verifyTrustChain,
  verifyWithRole,
} from '../../src/registry/trust.js';
import { forEachBackend } from '../helpers/stores.js';

const now = new Date('2026-01-01T00:00:00Z');
const inAYear = new Date('2027-01-01T00:00:00Z');

async function rejection(p: Promise<unknown> | (() => unknown)): Promise<Error> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected an error');
}

function setup() {
  const root1 = generateKeyPair();
  const artifacts = generateKeyPair();
  const fleet = generateKeyPair();
  const v1 = createTrustRoot({
    rootKeys: [root1],
    artifactsKeys: [artifacts],
    fleetKeys: [fleet],
    expires: inAYear,
  });
  return { root1, artifacts, fleet, v1 };
}

describe('trust root', () => {
  it('creates a self-signed version 1 whose roles verify the right envelopes', () => {
    const { artifacts, fleet, v1 } = setup();
    const root = verifyTrustChain(v1, [], now);
    expect(root.version).toBe(1);
    expect(root.roles.artifacts).toEqual({ keyids: [artifacts.keyid], threshold: 1 });
    const manifest = signEnvelope(PayloadType.artifact, { name: 'm' }, [artifacts]);
    expect(verifyWithRole(root, 'artifacts', manifest, PayloadType.artifact, 'm')).toEqual({ name: 'm' });
    // The fleet key cannot sign manifests.
    const forged = signEnvelope(PayloadType.artifact, { name: 'm' }, [fleet]);
    expect(() => verifyWithRole(root, 'artifacts', forged, PayloadType.artifact, 'm')).toThrow(/unknown key/);
    expect(Object.keys(roleKeys(root, 'fleet').keys)).toEqual([fleet.keyid]);
  });

  it('one key may hold every role; thresholds the keys cannot meet are refused', () => {
    const k = generateKeyPair();
    const root = verifyTrustChain(createTrustRoot({ rootKeys: [k], expires: inAYear }), [], now);
    expect(root.roles.fleet.keyids).toEqual([k.keyid]);
    expect(() => buildTrustRoot({ rootKeys: [k], threshold: 2, expires: inAYear })).toThrow(UserError);
  });

  it('walks a rotation to new root keys signed by the old and the new keys', () => {
    const { root1, v1 } = setup();
    const root2 = generateKeyPair();
    const v2 = rotateTrustRoot(v1, { rootKeys: [root2], expires: inAYear }, [root1, root2]);
    const root3 = generateKeyPair();
    const v3 = rotateTrustRoot(v2, { rootKeys: [root3], expires: inAYear }, [root2, root3]);
    const latest = verifyTrustChain(v1, [v3, v2], now);
    expect(latest.version).toBe(3);
    expect(latest.roles.root.keyids).toEqual([root3.keyid]);
  });

  it('refuses a rotation signed only by the new keys', async () => {
    const { root1, v1 } = setup();
    const attacker = generateKeyPair();
    // The tool refuses to produce it...
    const err = await rejection(() =>
      rotateTrustRoot(v1, { rootKeys: [attacker], expires: inAYear }, [attacker]),
    );
    expect(err).toBeInstanceOf(UserError);
    expect(err.message).toMatch(/needs 1 signature\(s\) from version 1's \(current\) root keys/);
    // ...and a hand-made one is refused by every client.
    const forged = buildTrustRoot({ version: 2, rootKeys: [attacker], expires: inAYear });
    const env = signEnvelope(PayloadType.root, forged, [attacker]);
    const verr = await rejection(() => verifyTrustChain(v1, [env], now));
    expect(verr).toBeInstanceOf(VerificationError);
    expect(verr.message).toMatch(/signatures of version 1's root keys.*unknown key/);
    // Signed by the old key only, without the new keys' own signatures: also refused.
    const oldOnly = signEnvelope(PayloadType.root, forged, [root1]);
    expect((await rejection(() => verifyTrustChain(v1, [oldOnly], now))).message).toMatch(
      /signatures of its own root keys/,
    );
  });

  it('refuses rollback to an older version, forks, skipped versions and version jumps', async () => {
    const { root1, v1 } = setup();
    const v2 = rotateTrustRoot(v1, { expires: inAYear }, [root1]);
    const v3 = rotateTrustRoot(v2, { expires: inAYear }, [root1]);
    const rollback = await rejection(() => verifyTrustChain(v2, [v1], now));
    expect(rollback).toBeInstanceOf(VerificationError);
    expect(rollback.message).toMatch(/version 1, older than the trusted version 2: rollback refused/);
    const otherV2 = rotateTrustRoot(v1, { expires: new Date('2026-06-01T00:00:00Z') }, [root1]);
    expect((await rejection(() => verifyTrustChain(v1, [v2, otherV2], now))).message).toMatch(
      /two different trust roots claim version 2/,
    );
    expect((await rejection(() => verifyTrustChain(v1, [v3], now))).message).toMatch(/version 2 is missing/);
    // A validly signed root that skips a version number.
    const jump = signEnvelope(
      PayloadType.root,
      buildTrustRoot({ version: 3, rootKeys: [root1], expires: inAYear }),
      [root1],
    );
    expect((await rejection(() => verifyTrustChain(v1, [jump], now))).message).toMatch(
      /version 2 is missing/,
    );
    // The pinned root itself among the candidates is fine.
    expect(verifyTrustChain(v2, [v2, v3], now).version).toBe(3);
  });

  it('refuses an expired final root (exit 4) but walks through an expired pinned root', async () => {
    const k = generateKeyPair();
    const v1 = createTrustRoot({ rootKeys: [k], expires: new Date('2025-06-01T00:00:00Z') });
    const err = await rejection(() => verifyTrustChain(v1, [], now));
    expect(err).toBeInstanceOf(VerificationError);
    expect((err as VerificationError).exitCode).toBe(4);
    expect(err.message).toMatch(/version 1 expired at 2025-06-01T00:00:00.000Z/);
    const v2 = rotateTrustRoot(v1, { expires: inAYear }, [k]);
    expect(verifyTrustChain(v1, [v2], now).version).toBe(2);
  });

  it('loadTrustRootFile verifies the self-signature and expiry of trust/root.json', async () => {
    const { v1 } = setup();
    const dir = mkdtempSync(join(tmpdir(), 'edgectl-trust-'));
    const path = join(dir, 'root.json');
    writeFileSync(path, encodeEnvelope(v1));
    expect(loadTrustRootFile(path, now).version).toBe(1);
    expect(
      ((await rejection(() => loadTrustRootFile(path, new Date('2030-01-01')))) as VerificationError)
        .exitCode,
    ).toBe(4);
    const payload = JSON.parse(Buffer.from(v1.payload, 'base64').toString()) as { expires: string };
    payload.expires = '2099-01-01T00:00:00.000Z';
    writeFileSync(
      path,
      encodeEnvelope({ ...v1, payload: Buffer.from(JSON.stringify(payload)).toString('base64') }),
    );
    expect((await rejection(() => loadTrustRootFile(path, now))).message).toMatch(/bad signature/);
    expect((await rejection(() => loadTrustRootFile(join(dir, 'missing.json'), now))).message).toMatch(
      /no trust root at/,
    );
  });
});

describe('trust root in the registry', () => {
  forEachBackend((mk) => {
    it('initRegistry publishes the chain and loadRegistryTrust walks it from the pinned file', async () => {
      const store = await mk();
      const { root1, v1 } = setup();
      const dir = mkdtempSync(join(tmpdir(), 'edgectl-trust-'));
      const pinned = join(dir, 'root.json');
      writeFileSync(pinned, encodeEnvelope(v1));

      const first = await initRegistry(store, v1, { now });
      expect(first).toMatchObject({ trustVersion: 1, created: true, uploaded: [1] });
      expect(first.conditionalWrites).toBe(mk.backend === 'fs'); // s3rver ignores If-None-Match
      expect((await initRegistry(store, v1, { now })).created).toBe(false);

      const root2 = generateKeyPair();
      const v2 = rotateTrustRoot(v1, { rootKeys: [root2], expires: inAYear }, [root1, root2]);
      const v3 = rotateTrustRoot(v2, { expires: inAYear }, [root2]);
      const res = await initRegistry(store, v3, { history: [v1, v2], now });
      expect(res).toMatchObject({ trustVersion: 3, created: true, uploaded: [2, 3] });
      expect((await loadRegistryTrust(store, pinned, now)).version).toBe(3);
    });

    it('refuses a registry file that replays an older root under a newer name', async () => {
      const store = await mk();
      const { root1, v1 } = setup();
      const v2 = rotateTrustRoot(v1, { expires: inAYear }, [root1]);
      await store.putIfAbsent(trustRootKey(1), encodeEnvelope(v1));
      await store.putIfAbsent(trustRootKey(2), encodeEnvelope(v2));
      await store.putIfAbsent(trustRootKey(3), encodeEnvelope(v1));
      const dir = mkdtempSync(join(tmpdir(), 'edgectl-trust-'));
      writeFileSync(join(dir, 'root.json'), encodeEnvelope(v1));
      const err = await rejection(loadRegistryTrust(store, join(dir, 'root.json'), now));
      expect(err).toBeInstanceOf(VerificationError);
      expect(err.message).toMatch(/trust\/root\/3\.json holds trust root version 1, not 3: rollback refused/);
    });

    it('refuses to initialise a registry that holds another trust root', async () => {
      const store = await mk();
      await initRegistry(store, setup().v1, { now });
      const err = await rejection(initRegistry(store, setup().v1, { now }));
      expect(err).toBeInstanceOf(UserError);
      expect(err.message).toMatch(/already holds a different trust root version 1/);
    });

    it('refuses an expired local root before writing anything', async () => {
      const store = await mk();
      const k = generateKeyPair();
      const expired: Envelope = createTrustRoot({ rootKeys: [k], expires: new Date('2025-01-01T00:00:00Z') });
      const err = await rejection(initRegistry(store, expired, { now }));
      expect((err as VerificationError).exitCode).toBe(4);
      expect(await store.list('')).toEqual([]);
    });
  });
});
