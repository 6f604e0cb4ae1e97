/**
 * DSSE envelopes (docs/formats.md "Signatures across key rotations", docs/operations.md "Key rotation"): every signed object in the registry (trust root,
 * artifact manifest, fleet entry, snapshot, head, feedback) is one of these. The signature covers the
 * DSSE pre-authentication encoding of the payload type and the payload bytes, so a payload can never
 * be replayed as another type; the payload is RFC 8785 canonical JSON, so the same object always
 * signs to the same bytes (Ed25519 is deterministic too, which keeps create-only writes idempotent).
 *
 * verifyEnvelope is the single place signatures are counted against a role: only valid signatures by
 * distinct key ids listed in the role count, and every failure is a VerificationError (exit 4) that
 * says what failed. The keyid in a signature is only a hint for which key to try (DSSE): it is
 * trusted only because the signature must verify under the key the trust root lists for that id.
 */
import { createPublicKey, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import nacl from 'tweetnacl';
import { VerificationError } from '../foundation/errors.js';
import { canonicalJsonBytes } from '../foundation/canonical-json.js';
import { decodeBase64, type KeyPair } from './keys.js';

export interface Signature {
  keyid: string;
  /** base64 Ed25519 signature over PAE(payloadType, payload bytes). */
  sig: string;
}

export interface Envelope {
  payloadType: string;
  /** base64 of the payload bytes (canonical JSON). */
  payload: string;
  signatures: Signature[];
}

/** The part of a trust-root role that verification needs. */
export interface RoleSpec {
  keyids: string[];
  threshold: number;
}

const typeOf = (name: string) => `application/vnd.edgectl.${name}.v1+json`;

export const PayloadType = {
  root: typeOf('root'),
  artifact: typeOf('artifact'),
  entry: typeOf('fleet-entry'),
  snapshot: typeOf('fleet-snapshot'),
  head: typeOf('fleet-head'),
  feedback: typeOf('feedback'),
} as const;
export type PayloadTypeName = keyof typeof PayloadType;

/** DSSE pre-authentication encoding: `DSSEv1 SP len(type) SP type SP len(body) SP body`. */
export function pae(payloadType: string, payload: Uint8Array): Buffer {
  const type = Buffer.from(payloadType, 'utf8');
  return Buffer.concat([
    Buffer.from(`DSSEv1 ${type.length} `, 'utf8'),
    type,
    Buffer.from(` ${payload.length} `, 'utf8'),
    payload,
  ]);
}

/** Signs `payload` (serialized as canonical JSON) with every key; duplicate keys sign once. */
export function signEnvelope(payloadType: string, payload: unknown, keys: KeyPair[]): Envelope {
  if (keys.length === 0) throw new TypeError('signEnvelope needs at least one key');
  const body = canonicalJsonBytes(payload);
  return signPayloadBytes(payloadType, body, keys);
}

/** Signs bytes that are already serialized (used to add signatures to an existing payload). */
export function signPayloadBytes(payloadType: string, body: Uint8Array, keys: KeyPair[]): Envelope {
  const message = pae(payloadType, body);
  const seen = new Set<string>();
  const signatures: Signature[] = [];
  for (const key of keys) {
    if (seen.has(key.keyid)) continue;
    seen.add(key.keyid);
    const sig = nacl.sign.detached(message, key.secretKey);
    signatures.push({ keyid: key.keyid, sig: Buffer.from(sig).toString('base64') });
  }
  return { payloadType, payload: Buffer.from(body).toString('base64'), signatures };
}

function malformed(what: string, why: string): VerificationError {
  return new VerificationError(`${what}: malformed envelope: ${why}`, {
    code: 'E_ENVELOPE_MALFORMED',
    details: { object: what },
  });
}

/** Checks the DSSE shape of an already-parsed value. */
export function parseEnvelope(value: unknown, what = 'envelope'): Envelope {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw malformed(what, 'expected a JSON object');
  }
  const v = value as Record<string, unknown>;
  if (typeof v.payloadType !== 'string' || v.payloadType === '') throw malformed(what, 'payloadType missing');
  if (typeof v.payload !== 'string' || decodeBase64(v.payload) === undefined) {
    throw malformed(what, 'payload must be a base64 string');
  }
  if (!Array.isArray(v.signatures)) throw malformed(what, 'signatures must be an array');
  const signatures: Signature[] = [];
  for (const [i, s] of v.signatures.entries()) {
    const sig = s as Record<string, unknown> | null;
    if (typeof sig !== 'object' || sig === null || typeof sig.sig !== 'string') {
      throw malformed(what, `signatures[${i}] must be an object with a base64 sig`);
    }
    const keyid = typeof sig.keyid === 'string' ? sig.keyid : '';
    signatures.push({ keyid, sig: sig.sig });
  }
  return { payloadType: v.payloadType, payload: v.payload, signatures };
}

/** The bytes written to the registry: stable key order, so equal envelopes are equal bytes. */
export function encodeEnvelope(env: Envelope): Buffer {
  const ordered: Envelope = {
    payloadType: env.payloadType,
    payload: env.payload,
    signatures: env.signatures.map((s) => ({ keyid: s.keyid, sig: s.sig })),
  };
  return Buffer.from(`${JSON.stringify(ordered, null, 2)}\n`, 'utf8');
}

/** Parses envelope bytes; `what` names the object (a key or path) in errors. */
export function decodeEnvelope(buf: Uint8Array | string, what: string): Envelope {
  let value: unknown;
  try {
    value = JSON.parse(typeof buf === 'string' ? buf : Buffer.from(buf).toString('utf8'));
  } catch (err) {
    throw malformed(what, `not JSON (${(err as Error).message})`);
  }
  return parseEnvelope(value, what);
}

/** Payload bytes of an envelope, without any signature check. */
export function envelopePayloadBytes(env: Envelope): Buffer {
  const bytes = decodeBase64(env.payload);
  if (!bytes) throw malformed('envelope', 'payload must be a base64 string');
  return bytes;
}

/**
 * Parses the payload JSON WITHOUT checking signatures: only for choosing which envelope to verify
 * (a version number) or for displaying something that is then verified. Never trust the result.
 */
export function peekPayload(env: Envelope, what = 'envelope'): unknown {
  try {
    return JSON.parse(envelopePayloadBytes(env).toString('utf8'));
  } catch {
    throw malformed(what, 'payload is not JSON');
  }
}

export interface SignatureCheck {
  /** Key ids of the role whose signatures verified. */
  valid: string[];
  /** Signatures that did not count, and why. */
  rejected: { keyid: string; reason: 'unknown key' | 'bad signature' | 'duplicate key' }[];
}

const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const publicKeyObjects = new Map<string, KeyObject>();

/**
 * Ed25519 verification with node:crypto (OpenSSL): the same answer as tweetnacl's verify for every
 * signature tweetnacl makes, about 100 times faster (tweetnacl's pure-JS verify ran ~200/s and
 * dominated a site catching up on 100 fleet entries).
 */
function verifyEd25519(message: Uint8Array, sig: Uint8Array, publicKey: Uint8Array): boolean {
  const id = Buffer.from(publicKey).toString('base64');
  let key = publicKeyObjects.get(id);
  if (!key) {
    try {
      key = createPublicKey({
        key: Buffer.concat([ED25519_SPKI_PREFIX, publicKey]),
        format: 'der',
        type: 'spki',
      });
    } catch {
      return false;
    }
    if (publicKeyObjects.size > 1024) publicKeyObjects.clear();
    publicKeyObjects.set(id, key);
  }
  try {
    return cryptoVerify(null, message, key, sig);
  } catch {
    return false;
  }
}

/** Checks every signature against a role; never throws for bad signatures, only reports them. */
export function checkSignatures(
  env: Envelope,
  role: RoleSpec,
  keys: Record<string, Uint8Array>,
): SignatureCheck {
  const message = pae(env.payloadType, envelopePayloadBytes(env));
  const inRole = new Set(role.keyids);
  const valid: string[] = [];
  const rejected: SignatureCheck['rejected'] = [];
  for (const s of env.signatures) {
    const publicKey = inRole.has(s.keyid) ? keys[s.keyid] : undefined;
    if (!publicKey) {
      rejected.push({ keyid: s.keyid, reason: 'unknown key' });
      continue;
    }
    if (valid.includes(s.keyid)) {
      rejected.push({ keyid: s.keyid, reason: 'duplicate key' });
      continue;
    }
    const sig = decodeBase64(s.sig);
    const ok =
      sig !== undefined &&
      sig.length === nacl.sign.signatureLength &&
      publicKey.length === nacl.sign.publicKeyLength &&
      verifyEd25519(message, sig, publicKey);
    if (ok) valid.push(s.keyid);
    else rejected.push({ keyid: s.keyid, reason: 'bad signature' });
  }
  return { valid, rejected };
}

function describeRejections(rejected: SignatureCheck['rejected']): string {
  if (rejected.length === 0) return '';
  const parts = rejected.map((r) => `${r.reason} ${r.keyid || '(no keyid)'}`);
  return `; ${parts.join(', ')}`;
}

/**
 * Verifies an envelope against a role and returns its parsed payload. Throws VerificationError for:
 * a malformed envelope, a different payload type, fewer than `threshold` valid signatures by
 * distinct key ids of the role (the message lists unknown keys and bad signatures), or a payload
 * that is not JSON. `what` names the object in messages (e.g. `artifacts/model/m/1.0.0.json`).
 */
export function verifyEnvelope<T>(
  envelope: unknown,
  expectedType: string,
  role: RoleSpec,
  keys: Record<string, Uint8Array>,
  what = 'envelope',
): T {
  const env = parseEnvelope(envelope, what);
  if (env.payloadType !== expectedType) {
    throw new VerificationError(
      `${what}: wrong payload type: expected ${expectedType}, got ${env.payloadType}`,
      { code: 'E_PAYLOAD_TYPE', details: { object: what, expected: expectedType, actual: env.payloadType } },
    );
  }
  if (!Number.isInteger(role.threshold) || role.threshold < 1) {
    throw new VerificationError(`${what}: the role's threshold ${role.threshold} is invalid (must be >= 1)`, {
      code: 'E_THRESHOLD',
    });
  }
  const check = checkSignatures(env, role, keys);
  if (check.valid.length < role.threshold) {
    const reason =
      env.signatures.length === 0
        ? 'no signatures'
        : check.valid.length === 0 && check.rejected.every((r) => r.reason === 'unknown key')
          ? 'signed by unknown key'
          : check.rejected.some((r) => r.reason === 'bad signature')
            ? 'bad signature'
            : 'below threshold';
    throw new VerificationError(
      `${what}: ${reason}: ${check.valid.length} of ${role.threshold} required valid signatures ` +
        `(role keys: ${role.keyids.join(', ')})${describeRejections(check.rejected)}`,
      {
        code: 'E_SIGNATURE',
        suggestion:
          'the object was not signed by the keys the trust root lists; it may have been tampered with',
        details: { object: what, valid: check.valid, rejected: check.rejected, threshold: role.threshold },
      },
    );
  }
  try {
    return JSON.parse(envelopePayloadBytes(env).toString('utf8')) as T;
  } catch {
    throw malformed(what, 'payload is not JSON');
  }
}
