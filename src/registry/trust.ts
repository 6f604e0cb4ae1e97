/**
 * The trust root (docs/operations.md, Key rotation; docs/formats.md, Signatures across key rotations): which keys may sign what, and how a client moves
 * from the root it was provisioned with to the newest one. A root is a DSSE envelope (payload type
 * `root`) signed by its own root role; version N+1 must also be signed by a threshold of version N's
 * root keys, versions go up by exactly one, a lower or conflicting version is refused (rollback),
 * and the final root must not be expired. The walk follows TUF's client workflow (spec 5.3), kept in
 * this one small module because clients that reimplemented it got it wrong (reference study 1.9).
 *
 * Malformed or mis-signed roots are VerificationErrors (exit 4). Creating and rotating roots is in
 * trust-rotate.ts (re-exported here).
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { NotFoundError, UserError, VerificationError } from '../foundation/errors.js';
import {
  PayloadType,
  decodeEnvelope,
  encodeEnvelope,
  peekPayload,
  verifyEnvelope,
  type Envelope,
} from './envelope.js';
import { decodeBase64, keyIdOf } from './keys.js';
import { TRUST_ROOT_PREFIX, parseTrustRootKey, trustRootKey } from './layout.js';
import type { Store } from './store.js';

export const ROLE_NAMES = ['root', 'artifacts', 'fleet'] as const;
export type RoleName = (typeof ROLE_NAMES)[number];

export interface Role {
  keyids: string[];
  threshold: number;
}

export interface TrustKey {
  type: 'ed25519';
  /** base64 of the 32-byte public key. */
  public: string;
}

export interface TrustRoot {
  version: number;
  /** ISO 8601 UTC time after which the root is no longer valid for installing anything. */
  expires: string;
  keys: Record<string, TrustKey>;
  roles: { root: Role; artifacts: Role; fleet: Role };
  /**
   * Key ids revoked (compromised): they hold no role, and no signature of theirs counts anywhere,
   * not even on objects covered by the chain of earlier roots (trust-history.ts). Carried forward by
   * every later version. Optional: absent in roots that never revoked a key.
   */
  revoked?: string[];
}

/** Largest root accepted from a file or registry: roots are a few KB; this bounds a hostile download. */
export const MAX_ROOT_BYTES = 512 * 1024;

const roleSchema = z.object({
  keyids: z.array(z.string()).min(1),
  threshold: z.number().int().min(1),
});

const rootSchema = z.object({
  version: z.number().int().min(1),
  expires: z.string().refine((s) => /^\d{4}-\d\d-\d\dT/.test(s) && !Number.isNaN(Date.parse(s)), {
    message: 'expected an ISO 8601 time',
  }),
  keys: z.record(z.string(), z.object({ type: z.literal('ed25519'), public: z.string() })),
  roles: z.object({ root: roleSchema, artifacts: roleSchema, fleet: roleSchema }),
  revoked: z.array(z.string().regex(/^sha256:[0-9a-f]{32}$/, 'expected a key id')).optional(),
});

export function invalidRoot(what: string, why: string): VerificationError {
  return new VerificationError(`${what}: invalid trust root: ${why}`, {
    code: 'E_TRUST_ROOT',
    details: { object: what },
  });
}

/** Validates a (signature-checked or about-to-be-checked) root payload, including key ids and roles. */
export function parseTrustRoot(value: unknown, what = 'trust root'): TrustRoot {
  const parsed = rootSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw invalidRoot(
      what,
      `${issue?.path.map(String).join('.') || '(root)'}: ${issue?.message ?? 'invalid'}`,
    );
  }
  const root = parsed.data as TrustRoot;
  for (const [keyid, key] of Object.entries(root.keys)) {
    const bytes = decodeBase64(key.public);
    if (!bytes || bytes.length !== 32)
      throw invalidRoot(what, `keys.${keyid}: public must be 32 bytes of base64`);
    if (keyIdOf(bytes) !== keyid)
      throw invalidRoot(what, `keys.${keyid}: key id does not match its public key`);
  }
  for (const name of ROLE_NAMES) {
    const role = root.roles[name];
    if (new Set(role.keyids).size !== role.keyids.length)
      throw invalidRoot(what, `roles.${name}: duplicate key ids`);
    const unknown = role.keyids.find((k) => !(k in root.keys));
    if (unknown) throw invalidRoot(what, `roles.${name}: key ${unknown} is not in keys`);
    if (role.threshold > role.keyids.length) {
      throw invalidRoot(
        what,
        `roles.${name}: threshold ${role.threshold} exceeds its ${role.keyids.length} keys`,
      );
    }
    const revoked = role.keyids.find((k) => root.revoked?.includes(k));
    if (revoked) throw invalidRoot(what, `roles.${name}: key ${revoked} is revoked`);
  }
  return root;
}

/** What verifyEnvelope needs for one role of a root. */
export function roleKeys(root: TrustRoot, role: RoleName): { role: Role; keys: Record<string, Uint8Array> } {
  const r = root.roles[role];
  const keys: Record<string, Uint8Array> = {};
  for (const keyid of r.keyids) {
    const k = root.keys[keyid];
    const bytes = k ? decodeBase64(k.public) : undefined;
    if (bytes) keys[keyid] = bytes;
  }
  return { role: { keyids: [...r.keyids], threshold: r.threshold }, keys };
}

/** Verifies an envelope signed by one role of a trusted root and returns its payload. */
export function verifyWithRole<T>(
  root: TrustRoot,
  role: RoleName,
  envelope: unknown,
  payloadType: string,
  what: string,
): T {
  const { role: spec, keys } = roleKeys(root, role);
  return verifyEnvelope<T>(envelope, payloadType, spec, keys, what);
}

export function isExpired(root: TrustRoot, now: Date): boolean {
  return Date.parse(root.expires) <= now.getTime();
}

export function checkNotExpired(root: TrustRoot, now: Date, what = 'trust root'): void {
  if (isExpired(root, now)) {
    throw new VerificationError(`${what} version ${root.version} expired at ${root.expires}`, {
      code: 'E_EXPIRED',
      suggestion: 'rotate the trust root with `edgectl trust rotate --expires <duration>` and publish it',
      details: { version: root.version, expires: root.expires },
    });
  }
}

/** A root verified only against itself: how a locally pinned root (trust/root.json) is loaded. */
export function verifySelfSignedRoot(envelope: Envelope, what = 'trust root'): TrustRoot {
  const claimed = parseTrustRoot(peekPayload(envelope, what), what);
  const payload = verifyWithRole<unknown>(claimed, 'root', envelope, PayloadType.root, what);
  return parseTrustRoot(payload, what);
}

/** Version N+1 of a root: signed by a threshold of N's root keys and of its own. */
export function verifyRootSuccessor(trusted: TrustRoot, candidate: Envelope, what = 'trust root'): TrustRoot {
  verifyWithRole<unknown>(
    trusted,
    'root',
    candidate,
    PayloadType.root,
    `${what} (signatures of version ${trusted.version}'s root keys)`,
  );
  const next = verifySelfSignedRoot(candidate, `${what} (signatures of its own root keys)`);
  if (next.version !== trusted.version + 1) {
    throw new VerificationError(
      `${what}: version ${next.version} cannot follow version ${trusted.version} (versions go up by exactly 1)`,
      { code: 'E_ROLLBACK', details: { trusted: trusted.version, candidate: next.version } },
    );
  }
  return next;
}

function claimedVersion(env: Envelope, what: string): number {
  const v = (peekPayload(env, what) as { version?: unknown } | null)?.version;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1)
    throw invalidRoot(what, 'version: expected a positive integer');
  return v;
}

export interface TrustChainResult {
  root: TrustRoot;
  envelope: Envelope;
  /** Versions walked past the pinned one, in order. */
  walked: number[];
}

/**
 * Walks from a pinned root through newer candidates. Refuses a candidate older than the pinned
 * root (rollback), two different roots for one version (fork), a gap, and an expired final root.
 * The pinned root's own expiry is not checked before walking (TUF 5.2): an expired pinned root must
 * still be able to reach its unexpired successor.
 */
export function walkTrustChain(pinned: Envelope, candidates: Envelope[], now: Date): TrustChainResult {
  let root = verifySelfSignedRoot(pinned, 'pinned trust root');
  let envelope = pinned;
  const byVersion = new Map<number, Envelope>();
  for (const [i, c] of candidates.entries()) {
    const what = `trust root candidate ${i + 1}`;
    const v = claimedVersion(c, what);
    if (v < root.version) {
      throw new VerificationError(
        `${what} has version ${v}, older than the trusted version ${root.version}: rollback refused`,
        { code: 'E_ROLLBACK', details: { trusted: root.version, candidate: v } },
      );
    }
    const other = v === root.version ? pinned : byVersion.get(v);
    if (other && !encodeEnvelope(other).equals(encodeEnvelope(c))) {
      throw new VerificationError(`two different trust roots claim version ${v}`, {
        code: 'E_TRUST_FORK',
        suggestion: 'the registry and the pinned root disagree; check that they belong to the same project',
        details: { version: v },
      });
    }
    // The pinned root itself among the candidates (same bytes, checked above) is simply skipped.
    if (v > root.version) byVersion.set(v, c);
  }
  const walked: number[] = [];
  for (;;) {
    const next = byVersion.get(root.version + 1);
    if (!next) break;
    byVersion.delete(root.version + 1);
    root = verifyRootSuccessor(root, next, `trust root version ${root.version + 1}`);
    envelope = next;
    walked.push(root.version);
  }
  if (byVersion.size > 0) {
    const orphans = [...byVersion.keys()].sort((a, b) => a - b);
    throw new VerificationError(
      `trust root version ${root.version + 1} is missing, so versions ${orphans.join(', ')} cannot be verified`,
      { code: 'E_TRUST_GAP', details: { trusted: root.version, orphans } },
    );
  }
  checkNotExpired(root, now);
  return { root, envelope, walked };
}

/** The newest trusted root reachable from `pinned` through `candidates` (see walkTrustChain). */
export function verifyTrustChain(pinned: Envelope, candidates: Envelope[], now: Date): TrustRoot {
  return walkTrustChain(pinned, candidates, now).root;
}

/** Reads the trust root envelope at `path` (no signature check). */
export function readTrustRootEnvelope(path: string): Envelope {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new NotFoundError(`no trust root at ${path}`, {
        code: 'E_NO_TRUST_ROOT',
        suggestion: 'create one with `edgectl trust init --key <root key>`, or pass --trust <path>',
        details: { path },
      });
    }
    throw new UserError(`cannot read the trust root ${path} (${code ?? String(err)})`, { details: { path } });
  }
  if (bytes.length > MAX_ROOT_BYTES) throw invalidRoot(path, `larger than ${MAX_ROOT_BYTES} bytes`);
  return decodeEnvelope(bytes, path);
}

/** The local, self-signed trust root file (trust/root.json); refuses it when expired at `now`. */
export function loadTrustRootFile(path: string, now: Date): TrustRoot {
  const root = verifySelfSignedRoot(readTrustRootEnvelope(path), path);
  checkNotExpired(root, now, `trust root ${path}`);
  return root;
}

/**
 * Starts from the pinned root (an envelope, or the path of trust/root.json) and walks
 * `trust/root/<version>.json` in the registry to the newest root. A registry file whose payload
 * version differs from its name is refused (a replayed old root), as is anything walkTrustChain refuses.
 */
export async function walkRegistryTrust(
  store: Store,
  pinned: Envelope | string,
  now: Date,
): Promise<TrustChainResult> {
  const pinnedEnv = typeof pinned === 'string' ? readTrustRootEnvelope(pinned) : pinned;
  const start = verifySelfSignedRoot(pinnedEnv, typeof pinned === 'string' ? pinned : 'pinned trust root');
  const versions = (await store.list(TRUST_ROOT_PREFIX))
    .map((o) => parseTrustRootKey(o.key))
    .filter((v): v is number => v !== undefined && v > start.version)
    .sort((a, b) => a - b);
  const candidates: Envelope[] = [];
  for (const v of versions) {
    const key = trustRootKey(v);
    const obj = await store.get(key);
    if (!obj) continue;
    // The store refused a root over its cap (EDGECTL_MAX_TRUST_ROOT_BYTES) before reading it.
    const env = decodeEnvelope(obj.body, key);
    const claimed = claimedVersion(env, key);
    if (claimed !== v) {
      throw new VerificationError(`${key} holds trust root version ${claimed}, not ${v}: rollback refused`, {
        code: 'E_ROLLBACK',
        details: { key, claimed },
      });
    }
    candidates.push(env);
  }
  return walkTrustChain(pinnedEnv, candidates, now);
}

/** The newest trusted root of a registry, starting from the pinned root file. */
export async function loadRegistryTrust(store: Store, pinnedPath: string, now: Date): Promise<TrustRoot> {
  return (await walkRegistryTrust(store, pinnedPath, now)).root;
}

export * from './trust-rotate.js';
