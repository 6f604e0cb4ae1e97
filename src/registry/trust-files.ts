/**
 * The trust root as files in the project (what `edgectl trust init|rotate|show` work on).
 *
 * `trust/root.json` holds the newest root (a self-signed DSSE envelope). Every version ever written
 * is also kept next to it in `trust/root/<version>.json`, mirroring the registry layout, so
 * `registry init` can publish the whole chain: a site pinned to version 1 can only reach version 3
 * if versions 2 and 3 are both in the registry. Writes are atomic (temp + rename).
 */
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import { UserError } from '../foundation/errors.js';
import { decodeEnvelope, encodeEnvelope, type Envelope } from './envelope.js';
import {
  loadSigningKey,
  readPublicKeyFile,
  readSecretKeyFile,
  type KeyPair,
  type PublicKey,
} from './keys.js';
import {
  ROLE_NAMES,
  createTrustRoot,
  isExpired,
  readTrustRootEnvelope,
  rotateTrustRoot,
  verifySelfSignedRoot,
  type RoleName,
  type TrustRoot,
} from './trust.js';

/** `trust/root.json` → `trust/root/` (any `<name>.json` → `<name>/`). */
export function trustHistoryDir(trustPath: string): string {
  return join(dirname(trustPath), basename(trustPath).replace(/\.json$/, ''));
}

function writeAtomic(path: string, bytes: Buffer): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${randomBytes(6).toString('hex')}`;
  writeFileSync(tmp, bytes, { flag: 'wx', mode: 0o644 });
  renameSync(tmp, path);
}

/** Every archived version next to the trust file, ascending (unverified; the chain walk verifies). */
export function readTrustHistory(trustPath: string): Envelope[] {
  const dir = trustHistoryDir(trustPath);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .map((name) => ({ name, v: /^([1-9][0-9]*)\.json$/.exec(name)?.[1] }))
    .filter((e): e is { name: string; v: string } => e.v !== undefined)
    .sort((a, b) => Number(a.v) - Number(b.v))
    .map((e) => decodeEnvelope(readFileSync(join(dir, e.name)), join(dir, e.name)));
}

/** Writes the newest root and archives it; `replaceHistory` drops archived versions (a new root). */
export function writeTrustRootFile(
  path: string,
  env: Envelope,
  opts: { replaceHistory?: boolean } = {},
): void {
  const root = verifySelfSignedRoot(env, 'new trust root');
  const dir = trustHistoryDir(path);
  if (opts.replaceHistory && existsSync(dir)) {
    for (const name of readdirSync(dir)) if (/^[1-9][0-9]*\.json$/.test(name)) unlinkSync(join(dir, name));
  }
  const bytes = encodeEnvelope(env);
  writeAtomic(join(dir, `${root.version}.json`), bytes);
  writeAtomic(path, bytes);
}

export interface TrustSummary {
  path: string;
  version: number;
  expires: string;
  expired: boolean;
  roles: Record<RoleName, { keyids: string[]; threshold: number }>;
  keys: string[];
  /** Revoked key ids (their signatures count nowhere). */
  revoked: string[];
}

export function summarizeTrust(root: TrustRoot, path: string, now: Date): TrustSummary {
  const roles = {} as TrustSummary['roles'];
  for (const name of ROLE_NAMES) roles[name] = { ...root.roles[name] };
  return {
    path,
    version: root.version,
    expires: root.expires,
    expired: isExpired(root, now),
    roles,
    keys: Object.keys(root.keys),
    revoked: root.revoked ?? [],
  };
}

/** Verifies the file's own signatures and describes it; an expired root is shown, not refused. */
export function showTrust(path: string, now: Date): TrustSummary {
  return summarizeTrust(verifySelfSignedRoot(readTrustRootEnvelope(path), path), path, now);
}

function publicKeys(paths: string[] | undefined): PublicKey[] | undefined {
  return paths?.length ? paths.map(readPublicKeyFile) : undefined;
}

function secretKeys(
  paths: string[] | undefined,
  env: NodeJS.ProcessEnv,
  flag: string,
  configKey?: string,
): KeyPair[] {
  if (paths?.length) return paths.map(readSecretKeyFile);
  return [loadSigningKey(undefined, env, { flag, ...(configKey ? { configKey } : {}) })];
}

export interface InitTrustOptions {
  out: string;
  /** Root key secret files; empty = EDGECTL_SIGNING_KEY. */
  rootKeyPaths: string[];
  /** Key files (public or secret) for the artifacts and fleet roles; default: the root keys. */
  artifactsKeyPaths?: string[];
  fleetKeyPaths?: string[];
  thresholds?: Partial<Record<RoleName, number>>;
  expires: Date;
  force?: boolean;
  env?: NodeJS.ProcessEnv;
  now: Date;
}

export function initTrustFile(opts: InitTrustOptions): TrustSummary {
  if (existsSync(opts.out) && !opts.force) {
    throw new UserError(`a trust root already exists at ${opts.out}`, {
      code: 'E_TRUST_EXISTS',
      suggestion:
        'use `edgectl trust rotate` to change keys; --force starts a new root, which sites pinned to the old one will refuse',
      details: { path: opts.out },
    });
  }
  const rootKeys = secretKeys(opts.rootKeyPaths, opts.env ?? process.env, '--key', 'keys.root');
  const env = createTrustRoot({
    rootKeys,
    ...(opts.artifactsKeyPaths?.length ? { artifactsKeys: publicKeys(opts.artifactsKeyPaths) } : {}),
    ...(opts.fleetKeyPaths?.length ? { fleetKeys: publicKeys(opts.fleetKeyPaths) } : {}),
    threshold: opts.thresholds ?? {},
    expires: opts.expires,
  });
  writeTrustRootFile(opts.out, env, { replaceHistory: true });
  return showTrust(opts.out, opts.now);
}

export interface RotateTrustOptions {
  path: string;
  /** Secret key files of current root keys; empty = EDGECTL_SIGNING_KEY. */
  currentKeyPaths: string[];
  /** Secret key files of the new version's root keys; empty = root keys unchanged. */
  newKeyPaths?: string[];
  artifactsKeyPaths?: string[];
  fleetKeyPaths?: string[];
  thresholds?: Partial<Record<RoleName, number>>;
  /** Keys to revoke: key ids or key files (public or secret). */
  revoke?: string[];
  expires: Date;
  env?: NodeJS.ProcessEnv;
  now: Date;
}

export interface RotateResult extends TrustSummary {
  previousVersion: number;
}

/** A key id as given, or the key id of a key file. */
function revokedKeyId(given: string): string {
  return /^sha256:[0-9a-f]{32}$/.test(given) ? given : readPublicKeyFile(given).keyid;
}

export function rotateTrustFile(opts: RotateTrustOptions): RotateResult {
  const currentEnv = readTrustRootEnvelope(opts.path);
  const current = verifySelfSignedRoot(currentEnv, opts.path);
  const signers = secretKeys(opts.currentKeyPaths, opts.env ?? process.env, '--key', 'keys.root');
  const newRootKeys = opts.newKeyPaths?.length ? opts.newKeyPaths.map(readSecretKeyFile) : [];
  const next = rotateTrustRoot(
    current,
    {
      ...(newRootKeys.length ? { rootKeys: newRootKeys } : {}),
      ...(opts.artifactsKeyPaths?.length ? { artifactsKeys: publicKeys(opts.artifactsKeyPaths) } : {}),
      ...(opts.fleetKeyPaths?.length ? { fleetKeys: publicKeys(opts.fleetKeyPaths) } : {}),
      threshold: opts.thresholds ?? {},
      expires: opts.expires,
      ...(opts.revoke?.length ? { revoke: opts.revoke.map(revokedKeyId) } : {}),
    },
    [...signers, ...newRootKeys],
  );
  // Archive the version being replaced if it predates the history directory.
  const archived = join(trustHistoryDir(opts.path), `${current.version}.json`);
  if (!existsSync(archived)) writeAtomic(archived, encodeEnvelope(currentEnv));
  writeTrustRootFile(opts.path, next);
  return { ...showTrust(opts.path, opts.now), previousVersion: current.version };
}
