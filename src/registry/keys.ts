/**
 * Ed25519 signing keys (docs/formats.md "Signatures across key rotations", docs/operations.md "Key rotation"): generation, key ids, and the key files.
 *
 * File format (JSON, one object, chosen so a key file is self-describing and easy to inspect):
 *   secret key file (mode 0600):  {"type":"edgectl-ed25519-secret-key","keyid":"sha256:…",
 *                                  "publicKey":"<base64, 32 bytes>","secretKey":"<base64, 64 bytes>"}
 *   public key file (`<path>.pub`): {"type":"edgectl-ed25519-public-key","keyid":"sha256:…",
 *                                  "publicKey":"<base64, 32 bytes>"}
 * `secretKey` is tweetnacl's 64-byte form (32-byte seed followed by the public key). The env var
 * EDGECTL_SIGNING_KEY holds either the whole secret key file text or the base64 secret key (64
 * bytes) or seed (32 bytes), for CI secrets. Secret key bytes never appear in errors or logs: JSON
 * parse errors of secret files are reported without the parser's message, which quotes the input.
 */
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  statSync,
  writeSync,
} from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname } from 'node:path';
import nacl from 'tweetnacl';
import { UserError } from '../foundation/errors.js';
import { sha256Hex } from '../foundation/digest.js';

export const SECRET_KEY_TYPE = 'edgectl-ed25519-secret-key';
export const PUBLIC_KEY_TYPE = 'edgectl-ed25519-public-key';
export const SIGNING_KEY_ENV = 'EDGECTL_SIGNING_KEY';

export interface KeyPair {
  keyid: string;
  publicKey: Uint8Array;
  /** tweetnacl's 64-byte secret key (seed || public key). */
  secretKey: Uint8Array;
}

export interface PublicKey {
  keyid: string;
  publicKey: Uint8Array;
}

/** `sha256:` + hex of the first 16 bytes of SHA-256(public key). */
export function keyIdOf(publicKey: Uint8Array): string {
  return `sha256:${sha256Hex(publicKey).slice(0, 32)}`;
}

export function generateKeyPair(): KeyPair {
  const kp = nacl.sign.keyPair();
  return { keyid: keyIdOf(kp.publicKey), publicKey: kp.publicKey, secretKey: kp.secretKey };
}

/** Rebuilds a key pair from a 64-byte secret key or a 32-byte seed. */
export function keyPairFromSecret(secret: Uint8Array): KeyPair {
  let kp: nacl.SignKeyPair;
  if (secret.length === nacl.sign.secretKeyLength) kp = nacl.sign.keyPair.fromSecretKey(secret);
  else if (secret.length === nacl.sign.seedLength) kp = nacl.sign.keyPair.fromSeed(secret);
  else throw new TypeError(`an Ed25519 secret key has 64 bytes (or a 32-byte seed), not ${secret.length}`);
  // fromSecretKey trusts the embedded public half; recompute it from the seed so a spliced file fails.
  const fromSeed = nacl.sign.keyPair.fromSeed(kp.secretKey.subarray(0, nacl.sign.seedLength));
  if (!Buffer.from(fromSeed.publicKey).equals(Buffer.from(kp.publicKey))) {
    throw new TypeError('the public half of the secret key does not match its seed');
  }
  return { keyid: keyIdOf(kp.publicKey), publicKey: kp.publicKey, secretKey: kp.secretKey };
}

export function publicKeyFile(path: string): string {
  return `${path}.pub`;
}

const B64_RE = /^[A-Za-z0-9+/_-]*={0,2}$/;

/** Strict base64 (standard or URL-safe): Buffer.from silently skips invalid characters. */
export function decodeBase64(value: string): Buffer | undefined {
  if (!B64_RE.test(value)) return undefined;
  // Node's base64 decoder accepts both the standard and the URL-safe alphabet (DSSE requires both).
  return Buffer.from(value, 'base64');
}

function toBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64');
}

export function encodeSecretKeyFile(kp: KeyPair): string {
  const doc = {
    type: SECRET_KEY_TYPE,
    keyid: kp.keyid,
    publicKey: toBase64(kp.publicKey),
    secretKey: toBase64(kp.secretKey),
  };
  return `${JSON.stringify(doc, null, 2)}\n`;
}

export function encodePublicKeyFile(key: PublicKey): string {
  const doc = { type: PUBLIC_KEY_TYPE, keyid: key.keyid, publicKey: toBase64(key.publicKey) };
  return `${JSON.stringify(doc, null, 2)}\n`;
}

export interface WriteKeyOptions {
  /** Replace existing files (atomically) instead of refusing. */
  force?: boolean;
}

function writeExclusive(path: string, text: string, mode: number): void {
  const fd = openSync(path, 'wx', mode);
  try {
    writeSync(fd, text);
  } finally {
    closeSync(fd);
  }
}

function writeReplacing(path: string, text: string, mode: number): void {
  const tmp = `${path}.tmp-${randomBytes(6).toString('hex')}`;
  writeExclusive(tmp, text, mode);
  renameSync(tmp, path);
}

/**
 * Writes the secret key (mode 0600, created exclusively) and `<path>.pub`. Refuses to overwrite
 * either file unless `force`, so a typo never destroys a key.
 */
export function writeKeyPair(
  path: string,
  kp: KeyPair,
  opts: WriteKeyOptions = {},
): { secretPath: string; publicPath: string } {
  const secretPath = path;
  const publicPath = publicKeyFile(path);
  if (!opts.force) {
    for (const p of [secretPath, publicPath]) {
      if (existsSync(p)) {
        throw new UserError(`refusing to overwrite the existing key file ${p}`, {
          code: 'E_KEY_EXISTS',
          suggestion: 'choose another --out path, or pass --force to replace the key (the old key is lost)',
          details: { path: p },
        });
      }
    }
  }
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const write = opts.force ? writeReplacing : writeExclusive;
  try {
    write(secretPath, encodeSecretKeyFile(kp), 0o600);
    write(publicPath, encodePublicKeyFile(kp), 0o644);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new UserError(
        `refusing to overwrite the existing key file ${(err as NodeJS.ErrnoException).path}`,
        {
          code: 'E_KEY_EXISTS',
          suggestion: 'pass --force to replace it',
        },
      );
    }
    throw err;
  }
  return { secretPath, publicPath };
}

interface ParsedKeyFile {
  type: typeof SECRET_KEY_TYPE | typeof PUBLIC_KEY_TYPE;
  keyid: string;
  publicKey: Uint8Array;
  secretKey?: Uint8Array;
}

function badKey(source: string, why: string): UserError {
  return new UserError(`${source}: not a valid edgectl key: ${why}`, {
    code: 'E_KEY_FORMAT',
    suggestion: 'create keys with `edgectl keys generate --out <path>`',
    details: { source },
  });
}

/** Parses key file text; `source` names the file (or env var) in errors. */
export function parseKeyText(text: string, source: string): ParsedKeyFile {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw badKey(source, 'expected a JSON object');
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
    throw badKey(source, 'expected a JSON object');
  const d = doc as Record<string, unknown>;
  if (d.type !== SECRET_KEY_TYPE && d.type !== PUBLIC_KEY_TYPE) {
    throw badKey(source, `field type must be "${SECRET_KEY_TYPE}" or "${PUBLIC_KEY_TYPE}"`);
  }
  const publicKey = typeof d.publicKey === 'string' ? decodeBase64(d.publicKey) : undefined;
  if (!publicKey || publicKey.length !== nacl.sign.publicKeyLength) {
    throw badKey(source, 'field publicKey must be 32 bytes of base64');
  }
  const keyid = keyIdOf(publicKey);
  if (d.keyid !== keyid)
    throw badKey(source, `field keyid does not match the public key (expected ${keyid})`);
  if (d.type === PUBLIC_KEY_TYPE) return { type: PUBLIC_KEY_TYPE, keyid, publicKey };

  const secret = typeof d.secretKey === 'string' ? decodeBase64(d.secretKey) : undefined;
  if (!secret || secret.length !== nacl.sign.secretKeyLength) {
    throw badKey(source, 'field secretKey must be 64 bytes of base64');
  }
  let kp: KeyPair;
  try {
    kp = keyPairFromSecret(secret);
  } catch {
    throw badKey(source, 'the secret key does not belong to the public key');
  }
  if (kp.keyid !== keyid) throw badKey(source, 'the secret key does not belong to the public key');
  return { type: SECRET_KEY_TYPE, keyid, publicKey, secretKey: kp.secretKey };
}

function readKeyText(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new UserError(`${what} ${path} does not exist`, {
        code: 'E_KEY_MISSING',
        suggestion: 'check the path, or create a key with `edgectl keys generate --out <path>`',
        details: { path },
      });
    }
    if (code === 'EISDIR') throw new UserError(`${what} ${path} is a directory, not a key file`);
    throw err;
  }
}

/** Public key of a `.pub` file or of a secret key file. */
export function readPublicKeyFile(path: string): PublicKey {
  const parsed = parseKeyText(readKeyText(path, 'key file'), path);
  return { keyid: parsed.keyid, publicKey: parsed.publicKey };
}

/** Refuses a secret key file that group or others may read (ssh does the same). */
export function checkSecretKeyMode(path: string): void {
  if (process.platform === 'win32') return;
  const mode = statSync(path).mode & 0o777;
  if ((mode & 0o077) !== 0) {
    throw new UserError(
      `secret key file ${path} is readable by group or others (mode ${mode.toString(8).padStart(4, '0')})`,
      { code: 'E_KEY_MODE', suggestion: `chmod 600 ${path}`, details: { path, mode: mode.toString(8) } },
    );
  }
}

/** Reads a secret key file after checking its mode. */
export function readSecretKeyFile(path: string): KeyPair {
  const text = readKeyText(path, 'secret key file');
  checkSecretKeyMode(path);
  const parsed = parseKeyText(text, path);
  if (!parsed.secretKey) {
    throw new UserError(`${path} holds only a public key; signing needs the secret key file`, {
      code: 'E_KEY_PUBLIC_ONLY',
      suggestion: `pass the secret key file (${path.replace(/\.pub$/, '')}) instead of the .pub file`,
      details: { path },
    });
  }
  return { keyid: parsed.keyid, publicKey: parsed.publicKey, secretKey: parsed.secretKey };
}

/** Parses EDGECTL_SIGNING_KEY: key file JSON, or base64 of the 64-byte secret key or 32-byte seed. */
export function parseSigningKeyEnv(value: string): KeyPair {
  const trimmed = value.trim();
  if (trimmed.startsWith('{')) {
    const parsed = parseKeyText(trimmed, SIGNING_KEY_ENV);
    if (!parsed.secretKey) throw badKey(SIGNING_KEY_ENV, 'it holds a public key; it must hold a secret key');
    return { keyid: parsed.keyid, publicKey: parsed.publicKey, secretKey: parsed.secretKey };
  }
  const bytes = decodeBase64(trimmed);
  if (!bytes) throw badKey(SIGNING_KEY_ENV, 'expected a key file JSON object or base64 secret key');
  try {
    return keyPairFromSecret(bytes);
  } catch {
    throw badKey(SIGNING_KEY_ENV, 'base64 must decode to a 64-byte secret key or a 32-byte seed');
  }
}

export interface SigningKeySource {
  /** How the user passes a key path, for the error when none is given (e.g. `--key`). */
  flag?: string;
  /** The edgectl.yaml field that may hold the path (e.g. `keys.artifacts`). */
  configKey?: string;
}

/**
 * The signing key from a file (mode-checked), or from EDGECTL_SIGNING_KEY when no path is given.
 * The error for neither names the flag, the config key and the env var.
 */
export function loadSigningKey(
  path: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
  source: SigningKeySource = {},
): KeyPair {
  if (path) return readSecretKeyFile(path);
  const fromEnv = env[SIGNING_KEY_ENV];
  if (fromEnv) return parseSigningKeyEnv(fromEnv);
  const flag = source.flag ?? '--key';
  const ways = [`pass ${flag} <secret key file>`];
  if (source.configKey) ways.push(`set ${source.configKey} in edgectl.yaml`);
  ways.push(`set ${SIGNING_KEY_ENV}`);
  throw new UserError('no signing key given', {
    code: 'E_KEY_REQUIRED',
    suggestion: `${ways.join(', or ')} (create one with \`edgectl keys generate --out keys/<name>.key\`)`,
  });
}
