/**
 * Content digests for the registry: every blob, manifest and state is named by `sha256:<hex>`.
 * Hashing uses node:crypto (native, about 1 GB/s) rather than tweetnacl's pure-JS SHA-512, which is
 * why signatures cover small manifests that list these digests instead of the bulk bytes.
 */
import { createHash } from 'node:crypto';

const DIGEST_RE = /^sha256:[0-9a-f]{64}$/;

/** Lower-case hex SHA-256 of some bytes. */
export function sha256Hex(bytes: Uint8Array | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** `sha256:<hex>` of some bytes: the registry's content address. */
export function digestOf(bytes: Uint8Array | string): string {
  return `sha256:${sha256Hex(bytes)}`;
}

export function isDigest(value: unknown): value is string {
  return typeof value === 'string' && DIGEST_RE.test(value);
}

/** The hex part of a `sha256:<hex>` digest; throws on anything else so a bad digest never names a path. */
export function digestHex(digest: string): string {
  if (!isDigest(digest)) throw new TypeError(`not a sha256 digest: ${JSON.stringify(digest)}`);
  return digest.slice('sha256:'.length);
}
