/**
 * Signatures across key rotations (docs/formats.md "Signatures across key rotations"). A client
 * trusts the newest root of the chain; this module adds what it needs to keep accepting objects
 * signed before a rotation: the earlier root versions (read from `trust/root/<v>.json` and verified
 * backwards, each one by the signatures its successor carries), and one rule for using them.
 *
 * The rule: an object verifies when a threshold of the CURRENT role signed it. Where the caller
 * knows the object is covered by something the current keys signed (a fleet entry or snapshot
 * bound by the hash chain to a head signed by a current fleet key; a manifest whose digest the
 * signed fleet state pins), a threshold of the same role of an EARLIER root version also counts.
 * Keys the current root lists as `revoked` never count, so a compromised key's signatures stop
 * being accepted anywhere and the objects must be re-signed (`fleet resign`, `artifact resign`).
 * A fresh object (a head, an entry past the head, a manifest assigned for the first time) needs the
 * current role.
 *
 * The earlier roots of a chain are attached to the in-memory root object (a WeakMap, so the
 * TrustRoot payload type stays exactly what is signed) by `loadTrustInForce` / `attachPastRoots`.
 */
import { createHash } from 'node:crypto';
import { VerificationError } from '../foundation/errors.js';
import {
  checkSignatures,
  decodeEnvelope,
  encodeEnvelope,
  envelopePayloadBytes,
  parseEnvelope,
  verifyEnvelope,
  type Envelope,
  type RoleSpec,
} from './envelope.js';
import { trustRootKey } from './layout.js';
import type { Store } from './store.js';
import {
  MAX_ROOT_BYTES,
  roleKeys,
  verifyRootSuccessor,
  verifySelfSignedRoot,
  walkRegistryTrust,
  type RoleName,
  type TrustChainResult,
  type TrustRoot,
} from './trust.js';

const pastRoots = new WeakMap<TrustRoot, readonly TrustRoot[]>();
/** Earlier roots by store URL + newest root envelope digest: they never change. */
const pastCache = new Map<string, readonly TrustRoot[]>();

/** Earlier versions known for `root`, newest first (empty when none were loaded). */
export function pastRootsOf(root: TrustRoot): readonly TrustRoot[] {
  return pastRoots.get(root) ?? [];
}

export function withPastRoots(root: TrustRoot, past: readonly TrustRoot[]): TrustRoot {
  pastRoots.set(root, past);
  return root;
}

/**
 * Versions `current.version - 1` down to 1 from the registry, each verified as the predecessor of
 * the one after it (its own root keys signed it, and a threshold of them signed its successor).
 * The walk stops at the first missing or unverifiable version: older keys are then simply not
 * trusted, which can only refuse more, never accept more.
 */
export async function loadPastRoots(store: Store, envelope: Envelope): Promise<readonly TrustRoot[]> {
  const current = verifySelfSignedRoot(envelope, 'trust root');
  const id = `${store.url}\n${createHash('sha256').update(encodeEnvelope(envelope)).digest('hex')}`;
  const cached = pastCache.get(id);
  if (cached) return cached;
  const past: TrustRoot[] = [];
  let successor = envelope;
  for (let v = current.version - 1; v >= 1; v--) {
    const key = trustRootKey(v);
    const obj = await store.get(key);
    if (!obj || obj.body.length > MAX_ROOT_BYTES) break;
    try {
      const env = decodeEnvelope(obj.body, key);
      const root = verifySelfSignedRoot(env, key);
      if (root.version !== v) break;
      verifyRootSuccessor(root, successor, trustRootKey(v + 1));
      past.push(root);
      successor = env;
    } catch {
      break;
    }
  }
  if (pastCache.size > 64) pastCache.clear();
  pastCache.set(id, past);
  return past;
}

/** Attaches the registry's earlier roots to the walked root; returns the root. */
export async function attachPastRoots(store: Store, walked: TrustChainResult): Promise<TrustRoot> {
  return withPastRoots(walked.root, await loadPastRoots(store, walked.envelope));
}

/** walkRegistryTrust, with the earlier roots attached to the result's root. */
export async function walkTrustInForce(
  store: Store,
  pinned: Envelope | string,
  now: Date,
): Promise<TrustChainResult> {
  const walked = await walkRegistryTrust(store, pinned, now);
  await attachPastRoots(store, walked);
  return walked;
}

/** The newest trusted root of a registry with its earlier versions attached. */
export async function loadTrustInForce(store: Store, pinnedPath: string, now: Date): Promise<TrustRoot> {
  return (await walkTrustInForce(store, pinnedPath, now)).root;
}

interface RoleVersion {
  version: number;
  role: RoleSpec;
  keys: Record<string, Uint8Array>;
}

/** One role of a root and of its earlier versions, as verification needs it. */
export interface RoleInForce {
  name: RoleName;
  version: number;
  current: RoleVersion;
  /** Earlier versions, newest first, with revoked keys left out. */
  past: RoleVersion[];
  /** Earlier versions with revoked keys kept (only for an explicit `--accept-revoked` re-sign). */
  pastWithRevoked: RoleVersion[];
  revoked: ReadonlySet<string>;
}

export function roleInForce(root: TrustRoot, name: RoleName): RoleInForce {
  const revoked = new Set(root.revoked ?? []);
  const past: RoleVersion[] = [];
  const pastWithRevoked: RoleVersion[] = [];
  for (const r of pastRootsOf(root)) {
    const all = roleKeys(r, name);
    pastWithRevoked.push({ version: r.version, ...all });
    const keyids = all.role.keyids.filter((k) => !revoked.has(k));
    past.push({ version: r.version, role: { keyids, threshold: all.role.threshold }, keys: all.keys });
  }
  return {
    name,
    version: root.version,
    current: { version: root.version, ...roleKeys(root, name) },
    past,
    pastWithRevoked,
    revoked,
  };
}

export interface InForceCheck {
  /** Key ids whose signatures counted. */
  signedBy: string[];
  /** The earlier root version whose role verified it; undefined = the current role. */
  pastVersion?: number;
}

/**
 * Which role version a signature set meets, without throwing: the current role first, then (when
 * `allowPast`) earlier versions. Undefined when none does.
 */
export function checkInForce(
  env: Envelope,
  r: RoleInForce,
  opts: { allowPast: boolean; allowRevoked?: boolean },
): InForceCheck | undefined {
  const cur = checkSignatures(env, r.current.role, r.current.keys);
  if (cur.valid.length >= r.current.role.threshold) return { signedBy: cur.valid };
  if (!opts.allowPast) return undefined;
  for (const p of opts.allowRevoked ? r.pastWithRevoked : r.past) {
    if (p.role.keyids.length < p.role.threshold) continue;
    const c = checkSignatures(env, p.role, p.keys);
    if (c.valid.length >= p.role.threshold) return { signedBy: c.valid, pastVersion: p.version };
  }
  return undefined;
}

/**
 * Verifies an envelope under the rule in the module comment and returns its payload. On failure the
 * error says whether the signer is revoked, left the role in a rotation, or is unknown, and `fix`
 * (the command that re-signs such objects) is the suggestion for the first two.
 */
export function verifyInForce<T>(
  envelope: unknown,
  payloadType: string,
  r: RoleInForce,
  what: string,
  opts: { allowPast: boolean; allowRevoked?: boolean; fix: string },
): { payload: T } & InForceCheck {
  const env = verifyEnvelopeShape(envelope, payloadType, what);
  const ok = checkInForce(env, r, opts);
  if (ok) return { payload: parsePayload<T>(env, what), ...ok };
  throw outdatedSignerError(env, r, what, opts) ?? unreachable(env, r, what);
}

function verifyEnvelopeShape(envelope: unknown, payloadType: string, what: string): Envelope {
  const env = parseEnvelope(envelope, what);
  if (env.payloadType !== payloadType) {
    throw new VerificationError(
      `${what}: wrong payload type: expected ${payloadType}, got ${env.payloadType}`,
      { code: 'E_PAYLOAD_TYPE', details: { object: what, expected: payloadType, actual: env.payloadType } },
    );
  }
  return env;
}

function parsePayload<T>(env: Envelope, what: string): T {
  try {
    return JSON.parse(envelopePayloadBytes(env).toString('utf8')) as T;
  } catch {
    throw new VerificationError(`${what}: malformed envelope: payload is not JSON`, {
      code: 'E_ENVELOPE_MALFORMED',
      details: { object: what },
    });
  }
}

function unreachable(env: Envelope, r: RoleInForce, what: string): never {
  // Throws the precise signature error (unknown key, bad signature, below threshold).
  verifyEnvelope(env, env.payloadType, r.current.role, r.current.keys, what);
  throw new VerificationError(`${what}: signature check failed`, { code: 'E_SIGNATURE' });
}

/** A clearer error when the signers are revoked or rotated-out keys of the role; else undefined. */
function outdatedSignerError(
  env: Envelope,
  r: RoleInForce,
  what: string,
  opts: { allowPast: boolean; fix: string },
): VerificationError | undefined {
  const signers = env.signatures.map((s) => s.keyid);
  const revoked = signers.filter((k) => r.revoked.has(k));
  const current = new Set(r.current.role.keyids);
  if (revoked.length > 0) {
    return new VerificationError(
      `${what}: signed by revoked ${r.name} key ${revoked.join(', ')}; revoked keys' signatures are not accepted`,
      {
        code: 'E_KEY_REVOKED',
        suggestion: `re-sign it with a current ${r.name} key after checking it: ${opts.fix} --accept-revoked`,
        details: { object: what, revoked, role: r.name },
      },
    );
  }
  const retired = r.pastWithRevoked.find((p) =>
    signers.some((k) => p.role.keyids.includes(k) && !current.has(k)),
  );
  if (!retired) return undefined;
  const why = opts.allowPast
    ? `without enough valid signatures of any version's ${r.name} role`
    : `a key that left the ${r.name} role after trust root version ${retired.version}; ` +
      `a ${what.includes('head') ? 'fleet head' : 'new object'} needs a key of the current version ${r.version}`;
  return new VerificationError(`${what}: signed by ${why}`, {
    code: 'E_SIGNER_ROTATED',
    suggestion: `re-sign it with the current ${r.name} key: ${opts.fix}`,
    details: { object: what, role: r.name, version: r.version, signers },
  });
}
