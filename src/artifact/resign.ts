/**
 * `edgectl artifact resign`: re-signs a published manifest with the current artifacts key after an
 * artifacts-key rotation or revocation (docs/operations.md "Key rotation"). The payload is kept
 * byte for byte, so the manifest digest, which the fleet state pins, does not change: only the
 * envelope's signatures are replaced, with compare-and-swap on the object read. The manifest must
 * verify first under the current role or an earlier root version's artifacts role; one signed
 * only by a revoked key is re-signed only with `acceptRevoked` (the operator has checked it).
 * A manifest already signed by the current role is left alone.
 */
import { UserError, VerificationError } from '../foundation/errors.js';
import {
  PayloadType,
  decodeEnvelope,
  encodeEnvelope,
  envelopePayloadBytes,
  signPayloadBytes,
} from '../registry/envelope.js';
import type { KeyPair } from '../registry/keys.js';
import { openStore } from '../registry/open-store.js';
import type { Store } from '../registry/store.js';
import type { TrustRoot } from '../registry/trust.js';
import { checkInForce, loadTrustInForce, roleInForce, verifyInForce } from '../registry/trust-history.js';
import { envelopeManifestDigest } from './manifest.js';
import { listArtifacts, resolveRef } from './manifest-store.js';
import { formatRef, parseRef } from './ref.js';

export interface ResignedArtifact {
  ref: string;
  key: string;
  manifestDigest: string;
  /** False when the current artifacts role already signed it. */
  resigned: boolean;
  /** Key ids whose signatures verified before (current, earlier or revoked keys). */
  previousSigners: string[];
  /** The earlier root version whose artifacts role had signed it, if any. */
  previousVersion?: number;
  signedBy: string[];
}

function checkSigners(signers: KeyPair[], trust: TrustRoot): void {
  const role = trust.roles.artifacts;
  const valid = new Set(signers.map((s) => s.keyid).filter((k) => role.keyids.includes(k)));
  if (valid.size >= role.threshold) return;
  throw new UserError(
    `the signing key (${signers.map((s) => s.keyid).join(', ')}) is not an artifacts key of trust root ` +
      `version ${trust.version} (needs ${role.threshold} of ${role.keyids.join(', ')})`,
    {
      code: 'E_NOT_ARTIFACTS_KEY',
      suggestion: 'pass the new artifacts key with --key (or point keys.artifacts at it)',
    },
  );
}

/** Re-signs one manifest (see the module comment). */
export async function resignArtifact(
  store: Store,
  trust: TrustRoot,
  refText: string,
  signers: KeyPair[],
  acceptRevoked = false,
): Promise<ResignedArtifact> {
  checkSigners(signers, trust);
  const found = await resolveRef(store, parseRef(refText), undefined);
  const obj = await store.get(found.key);
  if (!obj)
    throw new VerificationError(`${found.key} disappeared while re-signing`, { code: 'E_MANIFEST_MISSING' });
  const env = decodeEnvelope(obj.body, found.key);
  const role = roleInForce(trust, 'artifacts');
  const base = { ref: found.ref, key: found.key, manifestDigest: envelopeManifestDigest(env) };
  const current = checkInForce(env, role, { allowPast: false });
  if (current)
    return { ...base, resigned: false, previousSigners: current.signedBy, signedBy: current.signedBy };
  const before = verifyInForce<unknown>(env, PayloadType.artifact, role, found.key, {
    allowPast: true,
    allowRevoked: acceptRevoked,
    fix: `edgectl artifact resign ${found.ref}`,
  });
  const next = signPayloadBytes(PayloadType.artifact, envelopePayloadBytes(env), signers);
  await store.compareAndSwap(found.key, encodeEnvelope(next), obj.etag);
  return {
    ...base,
    resigned: true,
    previousSigners: before.signedBy,
    ...(before.pastVersion !== undefined ? { previousVersion: before.pastVersion } : {}),
    signedBy: next.signatures.map((s) => s.keyid),
  };
}

export interface ResignArtifactsOptions {
  registryUrl: string;
  trustPath: string;
  /** Refs to re-sign; empty with `all` = every published manifest. */
  refs: string[];
  all?: boolean;
  signers: KeyPair[];
  acceptRevoked?: boolean;
  now?: Date;
}

/** `artifact resign`: opens the registry, walks its trust chain and re-signs the given manifests. */
export async function resignArtifacts(
  opts: ResignArtifactsOptions,
): Promise<{ registry: string; artifacts: ResignedArtifact[] }> {
  if (!opts.all && opts.refs.length === 0) {
    throw new UserError('name the artifact to re-sign (<kind>/<name>@<version>) or pass --all', {
      code: 'E_USAGE',
    });
  }
  const store = await openStore(opts.registryUrl);
  try {
    const trust = await loadTrustInForce(store, opts.trustPath, opts.now ?? new Date());
    const refs = opts.all
      ? (await listArtifacts(store)).map((e) => formatRef({ kind: e.kind, name: e.name, version: e.version }))
      : opts.refs;
    const artifacts: ResignedArtifact[] = [];
    for (const ref of refs) {
      artifacts.push(await resignArtifact(store, trust, ref, opts.signers, opts.acceptRevoked ?? false));
    }
    return { registry: store.url, artifacts };
  } finally {
    await store.close();
  }
}
