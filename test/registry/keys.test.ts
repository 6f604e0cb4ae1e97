import { chmodSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nacl from 'tweetnacl';
import { describe, expect, it } from 'vitest';
import { UserError } from '../../src/foundation/errors.js';
import { sha256Hex } from '../../src/foundation/digest.js';
import {
  encodeSecretKeyFile,
  generateKeyPair,
  keyIdOf,
  loadSigningKey,
  readPublicKeyFile,
  writeKeyPair,
} from '../../src/registry/keys.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'edgectl-keys-'));

function errorOf(fn: () => unknown): UserError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(UserError);
    return err as UserError;
  }
  throw new Error('expected a UserError');
}

describe('keys', () => {
  it('key id is sha256: + hex of the first 16 bytes of SHA-256(public key)', () => {
    const kp = generateKeyPair();
    expect(kp.keyid).toBe(`sha256:${sha256Hex(kp.publicKey).slice(0, 32)}`);
    expect(keyIdOf(new Uint8Array(32))).toBe('sha256:66687aadf862bd776c8fc18b8e9f8e20');
  });

  it('writes a 0600 secret key and a .pub that round-trip, and refuses to overwrite without force', () => {
    const dir = tmp();
    const path = join(dir, 'k', 'root.key');
    const kp = generateKeyPair();
    const { secretPath, publicPath } = writeKeyPair(path, kp);
    expect(statSync(secretPath).mode & 0o777).toBe(0o600);
    expect(publicPath).toBe(`${path}.pub`);
    expect(readFileSync(publicPath, 'utf8')).not.toContain('secretKey');
    const loaded = loadSigningKey(path, {});
    expect(loaded.keyid).toBe(kp.keyid);
    expect(Buffer.from(loaded.secretKey).equals(Buffer.from(kp.secretKey))).toBe(true);
    expect(readPublicKeyFile(publicPath).keyid).toBe(kp.keyid);
    expect(readPublicKeyFile(secretPath).keyid).toBe(kp.keyid);

    const err = errorOf(() => writeKeyPair(path, generateKeyPair()));
    expect(err.message).toContain('refusing to overwrite');
    expect(loadSigningKey(path, {}).keyid).toBe(kp.keyid);

    const other = generateKeyPair();
    writeKeyPair(path, other, { force: true });
    expect(loadSigningKey(path, {}).keyid).toBe(other.keyid);
    expect(statSync(secretPath).mode & 0o777).toBe(0o600);
  });

  it('refuses a secret key readable by group or others, with the chmod fix', () => {
    const path = join(tmp(), 'root.key');
    writeKeyPair(path, generateKeyPair());
    chmodSync(path, 0o640);
    const err = errorOf(() => loadSigningKey(path, {}));
    expect(err.exitCode).toBe(2);
    expect(err.message).toMatch(/readable by group or others \(mode 0640\)/);
    expect(err.suggestion).toBe(`chmod 600 ${path}`);
  });

  it('loads EDGECTL_SIGNING_KEY as key file JSON or base64, and names flag, config key and env when neither', () => {
    const kp = generateKeyPair();
    expect(loadSigningKey(undefined, { EDGECTL_SIGNING_KEY: encodeSecretKeyFile(kp) }).keyid).toBe(kp.keyid);
    const b64 = Buffer.from(kp.secretKey).toString('base64');
    expect(loadSigningKey(undefined, { EDGECTL_SIGNING_KEY: b64 }).keyid).toBe(kp.keyid);
    const seed = Buffer.from(kp.secretKey.subarray(0, 32)).toString('base64url');
    expect(loadSigningKey(undefined, { EDGECTL_SIGNING_KEY: seed }).keyid).toBe(kp.keyid);

    const err = errorOf(() => loadSigningKey(undefined, {}, { flag: '--key', configKey: 'keys.artifacts' }));
    expect(err.suggestion).toContain('--key');
    expect(err.suggestion).toContain('keys.artifacts');
    expect(err.suggestion).toContain('EDGECTL_SIGNING_KEY');
  });

  it('reports a broken or spliced key file without echoing the secret', () => {
    const dir = tmp();
    const kp = generateKeyPair();
    const secretB64 = Buffer.from(kp.secretKey).toString('base64');
    const bad = join(dir, 'bad.key');
    writeFileSync(bad, `{"type":"edgectl-ed25519-secret-key","secretKey":"${secretB64}" oops`, {
      mode: 0o600,
    });
    const e1 = errorOf(() => loadSigningKey(bad, {}));
    expect(e1.message).toContain(bad);
    expect(e1.message).not.toContain(secretB64.slice(0, 20));

    // Another key's public half next to this secret key.
    const spliced = JSON.parse(encodeSecretKeyFile(kp)) as Record<string, string>;
    const other = generateKeyPair();
    spliced.publicKey = Buffer.from(other.publicKey).toString('base64');
    spliced.keyid = other.keyid;
    const sp = join(dir, 'spliced.key');
    writeFileSync(sp, JSON.stringify(spliced), { mode: 0o600 });
    const e2 = errorOf(() => loadSigningKey(sp, {}));
    expect(e2.message).toMatch(/does not belong to the public key/);
    expect(e2.message).not.toContain(secretB64.slice(0, 20));

    const wrongId = JSON.parse(encodeSecretKeyFile(kp)) as Record<string, string>;
    wrongId.keyid = other.keyid;
    const wp = join(dir, 'wrongid.key');
    writeFileSync(wp, JSON.stringify(wrongId), { mode: 0o600 });
    expect(errorOf(() => loadSigningKey(wp, {})).message).toMatch(/keyid does not match the public key/);

    expect(errorOf(() => loadSigningKey(join(dir, 'missing.key'), {})).message).toMatch(/does not exist/);
    expect(
      errorOf(() => loadSigningKey(`${join(dir, 'x')}`, { EDGECTL_SIGNING_KEY: 'ignored' })).message,
    ).toMatch(/does not exist/);
  });

  it('refuses to sign with a .pub file', () => {
    const path = join(tmp(), 'a.key');
    writeKeyPair(path, generateKeyPair());
    chmodSync(`${path}.pub`, 0o600);
    expect(errorOf(() => loadSigningKey(`${path}.pub`, {})).message).toMatch(/holds only a public key/);
  });

  it('signatures made with a loaded key verify under its public key', () => {
    const path = join(tmp(), 'a.key');
    writeKeyPair(path, generateKeyPair());
    const kp = loadSigningKey(path, {});
    const msg = Buffer.from('hello');
    const sig = nacl.sign.detached(msg, kp.secretKey);
    expect(nacl.sign.detached.verify(msg, sig, readPublicKeyFile(`${path}.pub`).publicKey)).toBe(true);
  });
});
