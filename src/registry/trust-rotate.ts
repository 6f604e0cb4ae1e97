/**
 * Creating and rotating trust roots (`edgectl trust init`, `edgectl trust rotate`): building a root
 * from role keys and thresholds, signing version 1 with its own root keys, and signing version N+1
 * with a threshold of both N's and N+1's root keys. Bad input (thresholds, missing signers) is a
 * UserError (exit 2) raised before anything is signed. Verifying and walking roots is trust.ts;
 * the procedure is described in docs/operations.md (Key rotation).
 */
import { UserError } from '../foundation/errors.js';
import { PayloadType, signEnvelope, type Envelope } from './envelope.js';
import { decodeBase64, type KeyPair, type PublicKey } from './keys.js';
import {
  invalidRoot,
  parseTrustRoot,
  ROLE_NAMES,
  verifyRootSuccessor,
  verifySelfSignedRoot,
  type RoleName,
  type TrustKey,
  type TrustRoot,
} from './trust.js';

export type Thresholds = number | Partial<Record<RoleName, number>>;

export interface TrustRootSpec {
  /** Public halves of the root role's keys. */
  rootKeys: PublicKey[];
  /** Defaults to the root keys (one key may hold every role). */
  artifactsKeys?: PublicKey[];
  /** Defaults to the root keys. */
  fleetKeys?: PublicKey[];
  /** A number sets the root role's threshold; the other roles default to 1. */
  threshold?: Thresholds;
  expires: Date | string;
  version?: number;
  /** Revoked key ids (see TrustRoot.revoked). */
  revoked?: string[];
}

function uniqueKeys(keys: PublicKey[]): PublicKey[] {
  const seen = new Map<string, PublicKey>();
  for (const k of keys) seen.set(k.keyid, k);
  return [...seen.values()];
}

function thresholdFor(t: Thresholds | undefined, role: RoleName): number {
  if (typeof t === 'number') return role === 'root' ? t : 1;
  return t?.[role] ?? 1;
}

/** Builds (does not sign) a root; UserError for thresholds the keys cannot meet. */
export function buildTrustRoot(spec: TrustRootSpec): TrustRoot {
  const roleKeyLists: Record<RoleName, PublicKey[]> = {
    root: uniqueKeys(spec.rootKeys),
    artifacts: uniqueKeys(spec.artifactsKeys?.length ? spec.artifactsKeys : spec.rootKeys),
    fleet: uniqueKeys(spec.fleetKeys?.length ? spec.fleetKeys : spec.rootKeys),
  };
  const keys: Record<string, TrustKey> = {};
  const roles = {} as TrustRoot['roles'];
  const revoked = [...new Set(spec.revoked ?? [])].sort();
  for (const name of ROLE_NAMES) {
    const list = roleKeyLists[name];
    if (list.length === 0) throw new UserError(`the ${name} role needs at least one key`);
    const bad = list.find((k) => revoked.includes(k.keyid));
    if (bad) {
      throw new UserError(`key ${bad.keyid} is revoked and cannot hold the ${name} role`, {
        code: 'E_KEY_REVOKED',
        suggestion: `give the ${name} role a new key (edgectl keys generate, then --${name === 'root' ? 'new-key' : `${name}-key`})`,
      });
    }
    const threshold = thresholdFor(spec.threshold, name);
    if (!Number.isInteger(threshold) || threshold < 1 || threshold > list.length) {
      throw new UserError(
        `the ${name} role's threshold ${threshold} must be between 1 and its number of keys (${list.length})`,
        { code: 'E_THRESHOLD', suggestion: `give more ${name} keys or lower the threshold` },
      );
    }
    for (const k of list)
      keys[k.keyid] = { type: 'ed25519', public: Buffer.from(k.publicKey).toString('base64') };
    roles[name] = { keyids: list.map((k) => k.keyid).sort(), threshold };
  }
  const expires = typeof spec.expires === 'string' ? new Date(spec.expires) : spec.expires;
  if (Number.isNaN(expires.getTime())) throw new UserError(`invalid expiry time ${String(spec.expires)}`);
  const sortedKeys = Object.fromEntries(Object.entries(keys).sort(([a], [b]) => (a < b ? -1 : 1)));
  return parseTrustRoot(
    {
      version: spec.version ?? 1,
      expires: expires.toISOString(),
      keys: sortedKeys,
      roles,
      ...(revoked.length ? { revoked } : {}),
    },
    'new trust root',
  );
}

/** A new version-1 root signed by its root keys (which must hold secret keys here). */
export function createTrustRoot(spec: Omit<TrustRootSpec, 'rootKeys'> & { rootKeys: KeyPair[] }): Envelope {
  const root = buildTrustRoot(spec);
  const env = signEnvelope(PayloadType.root, root, spec.rootKeys);
  verifySelfSignedRoot(env, 'new trust root');
  return env;
}

export interface RotationSpec {
  /** New root keys; default: unchanged. */
  rootKeys?: PublicKey[];
  artifactsKeys?: PublicKey[];
  fleetKeys?: PublicKey[];
  /** Thresholds of the new version; unspecified roles keep theirs. */
  threshold?: Thresholds;
  expires: Date | string;
  /**
   * Key ids to revoke: removed from every role they hold (a role left without keys needs new ones
   * given here) and listed in `revoked`, so their signatures stop counting everywhere.
   */
  revoke?: string[];
}

function currentPublicKeys(root: TrustRoot, role: RoleName, drop: string[] = []): PublicKey[] {
  return root.roles[role].keyids
    .filter((keyid) => !drop.includes(keyid))
    .map((keyid) => {
      const bytes = decodeBase64(root.keys[keyid]?.public ?? '');
      if (!bytes) throw invalidRoot('trust root', `keys.${keyid}: missing`);
      return { keyid, publicKey: bytes };
    });
}

/**
 * Version N+1 of `current`, signed by `signers`, which must include a threshold of N's root keys and
 * a threshold of N+1's root keys. Refuses (UserError) before signing anything otherwise.
 */
export function rotateTrustRoot(
  current: Envelope | TrustRoot,
  next: RotationSpec,
  signers: KeyPair[],
): Envelope {
  const cur = 'payloadType' in current ? verifySelfSignedRoot(current, 'current trust root') : current;
  const thresholds: Record<RoleName, number> = {
    root: cur.roles.root.threshold,
    artifacts: cur.roles.artifacts.threshold,
    fleet: cur.roles.fleet.threshold,
  };
  if (typeof next.threshold === 'number') thresholds.root = next.threshold;
  else for (const name of ROLE_NAMES) thresholds[name] = next.threshold?.[name] ?? thresholds[name];

  const revoke = next.revoke ?? [];
  const unknownRevoke = revoke.find((k) => !(k in cur.keys) && !cur.revoked?.includes(k));
  if (unknownRevoke) {
    throw new UserError(
      `cannot revoke ${unknownRevoke}: it is not a key of trust root version ${cur.version}`,
      {
        code: 'E_REVOKE_UNKNOWN',
        suggestion: 'pass the key id (edgectl trust show) or the key file of a key the trust root lists',
      },
    );
  }
  const keep = (role: RoleName, given: PublicKey[] | undefined): PublicKey[] => {
    if (given?.length) return given;
    const kept = currentPublicKeys(cur, role, revoke);
    if (kept.length === 0 && revoke.length) {
      throw new UserError(`revoking leaves the ${role} role without keys`, {
        code: 'E_REVOKE_EMPTY_ROLE',
        suggestion: `give the ${role} role a new key in the same rotation (${role === 'root' ? '--new-key' : `--${role}-key`})`,
      });
    }
    return kept;
  };
  const root = buildTrustRoot({
    version: cur.version + 1,
    rootKeys: keep('root', next.rootKeys),
    artifactsKeys: keep('artifacts', next.artifactsKeys),
    fleetKeys: keep('fleet', next.fleetKeys),
    threshold: thresholds,
    expires: next.expires,
    revoked: [...(cur.revoked ?? []), ...revoke],
  });

  const oldIds = new Set(cur.roles.root.keyids);
  const newIds = new Set(root.roles.root.keyids);
  const stranger = signers.find((s) => !oldIds.has(s.keyid) && !newIds.has(s.keyid));
  if (stranger) {
    throw new UserError(
      `key ${stranger.keyid} is a root key of neither version ${cur.version} nor version ${root.version}`,
      {
        code: 'E_SIGNER',
        suggestion: 'sign a rotation only with current (--key) and new (--new-key) root keys',
      },
    );
  }
  const signerIds = new Set(signers.map((s) => s.keyid));
  const have = (ids: Set<string>) => [...ids].filter((id) => signerIds.has(id)).length;
  const needs: [string, Set<string>, number][] = [
    [`version ${cur.version}'s (current) root keys`, oldIds, cur.roles.root.threshold],
    [`version ${root.version}'s (new) root keys`, newIds, root.roles.root.threshold],
  ];
  for (const [label, ids, threshold] of needs) {
    if (have(ids) < threshold) {
      throw new UserError(
        `rotation to version ${root.version} needs ${threshold} signature(s) from ${label} ` +
          `(${[...ids].join(', ')}); got ${have(ids)}`,
        {
          code: 'E_ROTATION_SIGNERS',
          suggestion:
            'pass the secret key files of the current root keys with --key and of new root keys with --new-key',
        },
      );
    }
  }
  const env = signEnvelope(PayloadType.root, root, signers);
  verifyRootSuccessor(cur, env, 'rotated trust root');
  return env;
}
