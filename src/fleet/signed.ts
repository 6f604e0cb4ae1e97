/**
 * Signing and verifying the fleet's registry objects (entries, snapshots, head) with the trust
 * root's `fleet` role (docs/formats.md "Signatures across key rotations", docs/operations.md "Key rotation"). Verification goes through
 * registry/envelope.ts's verifyEnvelope, the single place signatures are counted; this module adds
 * the fleet-specific parts: which role, the payload bytes the entry digest is taken over, and a
 * check before signing that the given keys can actually meet the role's threshold.
 */
import { UserError } from '../foundation/errors.js';
import {
  decodeEnvelope,
  encodeEnvelope,
  envelopePayloadBytes,
  signEnvelope,
  signPayloadBytes,
  verifyEnvelope,
  type Envelope,
  type RoleSpec,
} from '../registry/envelope.js';
import type { KeyPair } from '../registry/keys.js';
import { roleKeys, type TrustRoot } from '../registry/trust.js';
import { roleInForce, verifyInForce, type RoleInForce } from '../registry/trust-history.js';

/** The fleet role of a trust root, in the form verifyEnvelope takes. */
export interface FleetKeys {
  role: RoleSpec;
  keys: Record<string, Uint8Array>;
  /** The role across rotations (earlier versions, revoked keys): set by fleetKeys(root). */
  inForce?: RoleInForce;
}

export function fleetKeys(root: TrustRoot): FleetKeys {
  return { ...roleKeys(root, 'fleet'), inForce: roleInForce(root, 'fleet') };
}

/** How a fleet object may be signed (trust-history.ts): by the current role only, or also earlier ones. */
export interface SignerRule {
  /**
   * Also accept a threshold of an earlier root version's fleet role (revoked keys excluded): only
   * for objects the caller checks against the hash chain from a head signed by a current key, or
   * for a writer that re-signs what it read.
   */
  allowPast?: boolean;
  /** Count revoked keys of earlier versions too: only `fleet resign --accept-revoked`. */
  allowRevoked?: boolean;
}

/** What re-signs fleet objects whose signer left the fleet role (named in errors and by doctor). */
export const FLEET_RESIGN_FIX = 'edgectl fleet resign';

export interface VerifiedObject {
  /** Parsed payload JSON (shape not yet validated). */
  raw: unknown;
  /** The exact signed payload bytes. */
  payload: Buffer;
  /** Key ids of the signatures on the envelope (all verified against the fleet role). */
  keyids: string[];
  /** Set when an earlier root version's fleet role verified it (see SignerRule). */
  pastVersion?: number;
}

/** Decodes and verifies envelope bytes; VerificationError (exit 4) names `what` on any failure. */
export function verifyFleetObject(
  bytes: Uint8Array,
  payloadType: string,
  keys: FleetKeys,
  what: string,
  rule: SignerRule = {},
): VerifiedObject {
  const env = decodeEnvelope(bytes, what);
  if (keys.inForce) {
    const v = verifyInForce<unknown>(env, payloadType, keys.inForce, what, {
      allowPast: rule.allowPast ?? false,
      allowRevoked: rule.allowRevoked ?? false,
      fix: FLEET_RESIGN_FIX,
    });
    return {
      raw: v.payload,
      payload: envelopePayloadBytes(env),
      keyids: v.signedBy,
      ...(v.pastVersion !== undefined ? { pastVersion: v.pastVersion } : {}),
    };
  }
  const raw = verifyEnvelope<unknown>(env, payloadType, keys.role, keys.keys, what);
  const inRole = new Set(keys.role.keyids);
  return {
    raw,
    payload: envelopePayloadBytes(env),
    keyids: env.signatures.map((s) => s.keyid).filter((k) => inRole.has(k)),
  };
}

/** Refuses (UserError, before anything is written) signers that cannot meet the fleet threshold. */
export function checkFleetSigners(signers: KeyPair[], keys: FleetKeys): void {
  const valid = new Set(signers.map((s) => s.keyid).filter((k) => keys.role.keyids.includes(k)));
  if (valid.size >= keys.role.threshold) return;
  const given = signers.map((s) => s.keyid).join(', ') || 'none';
  throw new UserError(
    `the signing key (${given}) is not enough to sign fleet objects: the trust root's fleet role needs ` +
      `${keys.role.threshold} of ${keys.role.keyids.join(', ')}`,
    {
      code: 'E_NOT_FLEET_KEY',
      suggestion: 'pass the fleet key with --key (or keys.fleet in edgectl.yaml, or EDGECTL_SIGNING_KEY)',
    },
  );
}

/** Signs a fleet payload (serialized as canonical JSON) and returns the bytes to store. */
export function signFleetObject(payloadType: string, payload: unknown, signers: KeyPair[]): Buffer {
  const env: Envelope = signEnvelope(payloadType, payload, signers);
  return encodeEnvelope(env);
}

/** Signs payload bytes that are already canonical JSON (a snapshot built from cached pieces). */
export function signFleetBytes(payloadType: string, payload: Buffer, signers: KeyPair[]): Buffer {
  return encodeEnvelope(signPayloadBytes(payloadType, payload, signers));
}
