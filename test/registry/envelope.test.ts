import nacl from 'tweetnacl';
import { describe, expect, it } from 'vitest';
import { VerificationError } from '../../src/foundation/errors.js';
import {
  PayloadType,
  decodeEnvelope,
  encodeEnvelope,
  pae,
  signEnvelope,
  verifyEnvelope,
  type Envelope,
} from '../../src/registry/envelope.js';
import { generateKeyPair, type KeyPair } from '../../src/registry/keys.js';

function roleOf(keys: KeyPair[], threshold: number) {
  return {
    role: { keyids: keys.map((k) => k.keyid), threshold },
    keys: Object.fromEntries(keys.map((k) => [k.keyid, k.publicKey])),
  };
}

function verificationError(fn: () => unknown): VerificationError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(VerificationError);
    expect((err as VerificationError).exitCode).toBe(4);
    return err as VerificationError;
  }
  throw new Error('expected a VerificationError');
}

const manifest = { kind: 'model', name: 'draft', version: '1.0.0', files: [{ path: 'model.onnx', size: 3 }] };

describe('DSSE envelope', () => {
  it('PAE matches the DSSE spec example', () => {
    expect(pae('http://example.com/HelloWorld', Buffer.from('hello world')).toString()).toBe(
      'DSSEv1 29 http://example.com/HelloWorld 11 hello world',
    );
    // Lengths are in bytes, not characters.
    expect(pae('t', Buffer.from('é')).toString()).toBe('DSSEv1 1 t 2 é');
  });

  it('payload types are the edgectl media types', () => {
    expect(PayloadType.artifact).toBe('application/vnd.edgectl.artifact.v1+json');
    expect(PayloadType.entry).toBe('application/vnd.edgectl.fleet-entry.v1+json');
    expect(PayloadType.head).toBe('application/vnd.edgectl.fleet-head.v1+json');
  });

  it('signs canonical JSON and verifies it back; equal inputs give equal bytes', () => {
    const k = generateKeyPair();
    const env = signEnvelope(PayloadType.artifact, manifest, [k]);
    expect(Buffer.from(env.payload, 'base64').toString()).toBe(
      '{"files":[{"path":"model.onnx","size":3}],"kind":"model","name":"draft","version":"1.0.0"}',
    );
    const { role, keys } = roleOf([k], 1);
    expect(verifyEnvelope(env, PayloadType.artifact, role, keys)).toEqual(manifest);
    const reordered = { version: '1.0.0', name: 'draft', files: manifest.files, kind: 'model' };
    expect(
      encodeEnvelope(signEnvelope(PayloadType.artifact, reordered, [k])).equals(encodeEnvelope(env)),
    ).toBe(true);
    const decoded = decodeEnvelope(encodeEnvelope(env), 'x.json');
    expect(verifyEnvelope(decoded, PayloadType.artifact, role, keys)).toEqual(manifest);
  });

  it('accepts URL-safe base64 (DSSE requires it)', () => {
    const k = generateKeyPair();
    const env = signEnvelope(PayloadType.artifact, manifest, [k]);
    const urlSafe: Envelope = {
      ...env,
      payload: Buffer.from(env.payload, 'base64').toString('base64url'),
      signatures: env.signatures.map((s) => ({
        ...s,
        sig: Buffer.from(s.sig, 'base64').toString('base64url'),
      })),
    };
    const { role, keys } = roleOf([k], 1);
    expect(verifyEnvelope(urlSafe, PayloadType.artifact, role, keys)).toEqual(manifest);
  });

  it('refuses a tampered payload', () => {
    const k = generateKeyPair();
    const env = signEnvelope(PayloadType.artifact, manifest, [k]);
    const tampered = {
      ...env,
      payload: Buffer.from(JSON.stringify({ ...manifest, version: '6.6.6' })).toString('base64'),
    };
    const { role, keys } = roleOf([k], 1);
    const err = verificationError(() =>
      verifyEnvelope(tampered, PayloadType.artifact, role, keys, 'artifacts/model/draft/1.0.0.json'),
    );
    expect(err.message).toMatch(
      /^artifacts\/model\/draft\/1\.0\.0\.json: bad signature: 0 of 1 required valid signatures/,
    );
    expect(err.message).toContain(`bad signature ${k.keyid}`);
  });

  it('refuses a tampered signature', () => {
    const k = generateKeyPair();
    const env = signEnvelope(PayloadType.artifact, manifest, [k]);
    const sig = Buffer.from(env.signatures[0]!.sig, 'base64');
    sig[10] = (sig[10] ?? 0) ^ 1;
    const tampered = { ...env, signatures: [{ keyid: k.keyid, sig: sig.toString('base64') }] };
    const { role, keys } = roleOf([k], 1);
    expect(
      verificationError(() => verifyEnvelope(tampered, PayloadType.artifact, role, keys)).message,
    ).toMatch(/bad signature/);
  });

  it('refuses a signature by a key the role does not list, even if it claims a listed keyid', () => {
    const trusted = generateKeyPair();
    const attacker = generateKeyPair();
    const { role, keys } = roleOf([trusted], 1);
    const byAttacker = signEnvelope(PayloadType.artifact, manifest, [attacker]);
    const err = verificationError(() => verifyEnvelope(byAttacker, PayloadType.artifact, role, keys));
    expect(err.message).toMatch(/signed by unknown key/);
    expect(err.message).toContain(`unknown key ${attacker.keyid}`);
    // The keyid is only a hint: relabelling the attacker's signature does not help.
    const relabelled = {
      ...byAttacker,
      signatures: [{ keyid: trusted.keyid, sig: byAttacker.signatures[0]!.sig }],
    };
    expect(
      verificationError(() => verifyEnvelope(relabelled, PayloadType.artifact, role, keys)).message,
    ).toMatch(/bad signature/);
  });

  it('requires the threshold from distinct keys: duplicates do not count twice', () => {
    const [a, b, c] = [generateKeyPair(), generateKeyPair(), generateKeyPair()];
    const { role, keys } = roleOf([a!, b!, c!], 2);
    expect(
      verifyEnvelope(signEnvelope(PayloadType.head, { seq: 1 }, [a!, c!]), PayloadType.head, role, keys),
    ).toEqual({ seq: 1 });
    const one = signEnvelope(PayloadType.head, { seq: 1 }, [a!]);
    const err = verificationError(() => verifyEnvelope(one, PayloadType.head, role, keys));
    expect(err.message).toMatch(/below threshold: 1 of 2 required valid signatures/);
    const doubled = { ...one, signatures: [one.signatures[0]!, one.signatures[0]!] };
    const err2 = verificationError(() => verifyEnvelope(doubled, PayloadType.head, role, keys));
    expect(err2.message).toMatch(/1 of 2 required/);
    expect(err2.message).toContain('duplicate key');
    expect(
      verificationError(() => verifyEnvelope({ ...one, signatures: [] }, PayloadType.head, role, keys))
        .message,
    ).toMatch(/no signatures/);
  });

  it('refuses another payload type, so an entry is never accepted as a manifest', () => {
    const k = generateKeyPair();
    const entry = signEnvelope(PayloadType.entry, manifest, [k]);
    const { role, keys } = roleOf([k], 1);
    const err = verificationError(() => verifyEnvelope(entry, PayloadType.artifact, role, keys));
    expect(err.message).toContain(
      'wrong payload type: expected application/vnd.edgectl.artifact.v1+json, got application/vnd.edgectl.fleet-entry.v1+json',
    );
    // Changing the declared type breaks the signature (the type is inside the PAE).
    const relabelled = { ...entry, payloadType: PayloadType.artifact };
    expect(
      verificationError(() => verifyEnvelope(relabelled, PayloadType.artifact, role, keys)).message,
    ).toMatch(/bad signature/);
  });

  it('refuses malformed envelopes with a specific message', () => {
    const k = generateKeyPair();
    const { role, keys } = roleOf([k], 1);
    expect(
      verificationError(() => decodeEnvelope(Buffer.from('{"payloadType": '), 'fleet/head.json')).message,
    ).toMatch(/^fleet\/head\.json: malformed envelope: not JSON/);
    expect(verificationError(() => verifyEnvelope([], PayloadType.head, role, keys)).message).toMatch(
      /expected a JSON object/,
    );
    expect(
      verificationError(() =>
        verifyEnvelope(
          { payloadType: PayloadType.head, payload: '!!', signatures: [] },
          PayloadType.head,
          role,
          keys,
        ),
      ).message,
    ).toMatch(/payload must be a base64 string/);
    expect(
      verificationError(() =>
        verifyEnvelope(
          { payloadType: PayloadType.head, payload: '', signatures: {} },
          PayloadType.head,
          role,
          keys,
        ),
      ).message,
    ).toMatch(/signatures must be an array/);
    // A correctly signed payload that is not JSON.
    const body = Buffer.from('not json');
    const sig = nacl.sign.detached(pae(PayloadType.head, body), k.secretKey);
    const notJson = {
      payloadType: PayloadType.head,
      payload: body.toString('base64'),
      signatures: [{ keyid: k.keyid, sig: Buffer.from(sig).toString('base64') }],
    };
    expect(verificationError(() => verifyEnvelope(notJson, PayloadType.head, role, keys)).message).toMatch(
      /payload is not JSON/,
    );
  });
});
