/**
 * What `edgectl keys list` reports: the key files in some directories (and explicitly named
 * paths), grouped by key id, with whether the secret half is present and safely readable only by
 * its owner, and which trust-root roles each key holds. Never reads more than the key id and the
 * public key out of a secret file.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { PUBLIC_KEY_TYPE, SECRET_KEY_TYPE, parseKeyText } from './keys.js';
import { ROLE_NAMES, type RoleName, type TrustRoot } from './trust.js';

export interface KeyListing {
  keyid: string;
  secretKeyPath: string | null;
  publicKeyPath: string | null;
  hasSecret: boolean;
  /** Secret file readable only by its owner (null without a secret file). */
  modeOk: boolean | null;
  /** Roles of the trust root that list this key (empty without a trust root). */
  roles: RoleName[];
}

export interface KeyListProblem {
  path: string;
  error: string;
}

function looksLikeKeyFile(path: string): boolean {
  try {
    if (!statSync(path).isFile() || statSync(path).size > 64 * 1024) return false;
    const text = readFileSync(path, 'utf8');
    return text.includes(SECRET_KEY_TYPE) || text.includes(PUBLIC_KEY_TYPE);
  } catch {
    return false;
  }
}

export function listKeys(
  dirs: string[],
  paths: string[] = [],
  trust?: TrustRoot,
): { keys: KeyListing[]; problems: KeyListProblem[] } {
  const files = new Set<string>();
  for (const dir of dirs) {
    if (!existsSync(dir) || !statSync(dir).isDirectory()) continue;
    for (const name of readdirSync(dir).sort()) files.add(resolve(join(dir, name)));
  }
  for (const p of paths) {
    files.add(resolve(p));
    files.add(resolve(`${p}.pub`));
  }
  const byId = new Map<string, KeyListing>();
  const problems: KeyListProblem[] = [];
  for (const path of files) {
    if (!existsSync(path) || !looksLikeKeyFile(path)) continue;
    let parsed;
    try {
      parsed = parseKeyText(readFileSync(path, 'utf8'), path);
    } catch (err) {
      problems.push({ path, error: (err as Error).message });
      continue;
    }
    const entry = byId.get(parsed.keyid) ?? {
      keyid: parsed.keyid,
      secretKeyPath: null,
      publicKeyPath: null,
      hasSecret: false,
      modeOk: null,
      roles: trust ? ROLE_NAMES.filter((r) => trust.roles[r].keyids.includes(parsed.keyid)) : [],
    };
    if (parsed.secretKey) {
      entry.secretKeyPath = path;
      entry.hasSecret = true;
      entry.modeOk = process.platform === 'win32' || (statSync(path).mode & 0o077) === 0;
    } else {
      entry.publicKeyPath = path;
    }
    byId.set(parsed.keyid, entry);
  }
  return { keys: [...byId.values()], problems };
}
