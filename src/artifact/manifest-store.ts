/**
 * Reading artifact manifests from a registry: listing versions, resolving refs (version or manifest
 * digest), and loading one manifest with its checks in the right order: size cap, DSSE envelope,
 * signature under the trust root's `artifacts` role (when a root is given), schema and consistency,
 * and finally that the manifest names the key it was found under (so a validly signed manifest of
 * one version copied over another is refused).
 */
import semver from 'semver';
import { NotFoundError, VerificationError } from '../foundation/errors.js';
import { PayloadType, decodeEnvelope, peekPayload, type Envelope } from '../registry/envelope.js';
import { ARTIFACT_PREFIX, artifactKey } from '../registry/layout.js';
import { DEFAULT_LIMITS } from '../registry/limits.js';
import type { Store } from '../registry/store.js';
import type { TrustRoot } from '../registry/trust.js';
import { checkInForce, roleInForce, verifyInForce } from '../registry/trust-history.js';
import { envelopeManifestDigest, parseManifest, type Manifest } from './manifest.js';
import { formatRef, type ArtifactKind, type ArtifactRef } from './ref.js';

/**
 * Manifests are a few MB at most (about 200 bytes per 64 KiB chunk); this bounds a hostile one.
 * Registry reads use the store's cap (EDGECTL_MAX_MANIFEST_BYTES, limits.ts), this by default.
 */
export const MAX_MANIFEST_BYTES = DEFAULT_LIMITS.manifest;

export interface LoadedManifest {
  /** `<kind>/<name>@<version>`. */
  ref: string;
  key: string;
  envelope: Envelope;
  manifest: Manifest;
  /** sha256 of the payload bytes. */
  digest: string;
  /** Key ids whose signatures verified, or empty when no trust root was given. */
  signedBy: string[];
}

function tooBig(key: string, size: number, max: number): VerificationError {
  return new VerificationError(`${key}: manifest is ${size} bytes, more than the ${max} allowed`, {
    code: 'E_MANIFEST_SIZE',
    details: { key, size },
  });
}

export interface ManifestTrustOptions {
  /**
   * Manifest digests the verified fleet state pins: for these, signatures of an earlier trust root
   * version's artifacts role (not revoked) also count (registry/trust-history.ts).
   */
  pinned?: ReadonlySet<string>;
}

/** Decodes and checks a stored manifest envelope (see the module comment for the order). */
export function openManifestEnvelope(
  body: Buffer,
  key: string,
  expected: { kind: string; name: string; version: string },
  trust: TrustRoot | undefined,
  opts: ManifestTrustOptions = {},
  maxBytes = MAX_MANIFEST_BYTES,
): LoadedManifest {
  if (body.length > maxBytes) throw tooBig(key, body.length, maxBytes);
  const envelope = decodeEnvelope(body, key);
  let payload: unknown;
  let signedBy: string[] = [];
  if (trust) {
    const role = roleInForce(trust, 'artifacts');
    // A manifest the signed fleet state pins by digest may carry an earlier root version's
    // artifacts signatures (registry/trust-history.ts); anything else needs the current role.
    const allowPast = opts.pinned?.has(envelopeManifestDigest(envelope)) ?? false;
    // One signature pass over the (MB-sized) payload; verifyInForce re-checks only to throw.
    const check =
      envelope.payloadType === PayloadType.artifact ? checkInForce(envelope, role, { allowPast }) : undefined;
    if (check) {
      signedBy = check.signedBy;
      payload = peekPayload(envelope, key);
    } else {
      const ref = `${expected.kind}/${expected.name}@${expected.version}`;
      payload = verifyInForce<unknown>(envelope, PayloadType.artifact, role, key, {
        allowPast,
        fix: `edgectl artifact resign ${ref}`,
      }).payload;
    }
  } else {
    if (envelope.payloadType !== PayloadType.artifact) {
      throw new VerificationError(
        `${key}: wrong payload type: expected ${PayloadType.artifact}, got ${envelope.payloadType}`,
        {
          code: 'E_PAYLOAD_TYPE',
        },
      );
    }
    payload = peekPayload(envelope, key);
  }
  const manifest = parseManifest(payload, key);
  if (
    manifest.kind !== expected.kind ||
    manifest.name !== expected.name ||
    manifest.version !== expected.version
  ) {
    throw new VerificationError(
      `${key}: the manifest describes ${manifest.kind}/${manifest.name}@${manifest.version}, not ` +
        `${expected.kind}/${expected.name}@${expected.version}`,
      {
        code: 'E_MANIFEST_IDENTITY',
        suggestion: 'a signed manifest was copied to another key; the registry has been tampered with',
        details: { key },
      },
    );
  }
  return {
    ref: formatRef({ kind: manifest.kind, name: manifest.name, version: manifest.version }),
    key,
    envelope,
    manifest,
    digest: envelopeManifestDigest(envelope),
    signedBy,
  };
}

/** One version's manifest, or undefined if it was never published. */
export async function readManifest(
  store: Store,
  kind: ArtifactKind,
  name: string,
  version: string,
  trust: TrustRoot | undefined,
  opts: ManifestTrustOptions = {},
): Promise<LoadedManifest | undefined> {
  const key = artifactKey(kind, name, version);
  const obj = await store.get(key);
  if (!obj) return undefined;
  return openManifestEnvelope(obj.body, key, { kind, name, version }, trust, opts, store.limits.manifest);
}

export interface ArtifactEntry {
  kind: ArtifactKind;
  name: string;
  version: string;
  key: string;
  /** Size of the signed manifest object. */
  manifestBytes: number;
}

const ENTRY_RE = /^artifacts\/([a-z]+)\/([a-z0-9_-]+)\/([^/]+)\.json$/;

/** Published versions under a prefix (all, one kind, or one kind/name), newest version first per name. */
export async function listArtifacts(
  store: Store,
  selector: { kind?: ArtifactKind; name?: string } = {},
): Promise<ArtifactEntry[]> {
  let prefix = ARTIFACT_PREFIX;
  if (selector.kind) prefix += `${selector.kind}/`;
  if (selector.kind && selector.name) prefix += `${selector.name}/`;
  const out: ArtifactEntry[] = [];
  for (const obj of await store.list(prefix)) {
    const m = ENTRY_RE.exec(obj.key);
    if (!m || semver.valid(m[3]) !== m[3]) continue;
    out.push({
      kind: m[1] as ArtifactKind,
      name: m[2] as string,
      version: m[3] as string,
      key: obj.key,
      manifestBytes: obj.size,
    });
  }
  out.sort((a, b) =>
    a.kind !== b.kind
      ? a.kind < b.kind
        ? -1
        : 1
      : a.name !== b.name
        ? a.name < b.name
          ? -1
          : 1
        : semver.rcompare(a.version, b.version),
  );
  return out;
}

/** Versions of one artifact, newest first. */
export async function listVersions(store: Store, kind: ArtifactKind, name: string): Promise<string[]> {
  return (await listArtifacts(store, { kind, name })).map((e) => e.version);
}

/**
 * The manifest a ref names. A digest ref is matched against every published version of the name
 * (O(versions) requests). Throws NotFoundError (exit 3) when nothing matches.
 */
export async function resolveRef(
  store: Store,
  ref: ArtifactRef,
  trust: TrustRoot | undefined,
  opts: ManifestTrustOptions = {},
): Promise<LoadedManifest> {
  const text = formatRef(ref);
  if (ref.version !== undefined) {
    const loaded = await readManifest(store, ref.kind, ref.name, ref.version, trust, opts);
    if (!loaded) {
      throw new NotFoundError(`${text} is not in the registry ${store.url}`, {
        code: 'E_ARTIFACT_NOT_FOUND',
        suggestion: `list what is there with \`edgectl artifact list ${ref.kind}/${ref.name}\``,
        details: { ref: text },
      });
    }
    return loaded;
  }
  for (const version of await listVersions(store, ref.kind, ref.name)) {
    const key = artifactKey(ref.kind, ref.name, version);
    // An oversized version cannot be the one asked for (it could never be installed): skip it.
    const obj = await store.get(key).catch((err: unknown) => {
      if (err instanceof VerificationError && err.code === 'E_OBJECT_TOO_LARGE') return undefined;
      throw err;
    });
    if (!obj) continue;
    // Cheap digest match first; only the match is fully verified.
    let digest: string;
    try {
      digest = envelopeManifestDigest(decodeEnvelope(obj.body, key));
    } catch {
      continue;
    }
    if (digest === ref.digest)
      return openManifestEnvelope(
        obj.body,
        key,
        { kind: ref.kind, name: ref.name, version },
        trust,
        opts,
        store.limits.manifest,
      );
  }
  throw new NotFoundError(
    `no published version of ${ref.kind}/${ref.name} has manifest digest ${ref.digest}`,
    {
      code: 'E_ARTIFACT_NOT_FOUND',
      suggestion: `list versions with \`edgectl artifact list ${ref.kind}/${ref.name}\``,
      details: { ref: text },
    },
  );
}
