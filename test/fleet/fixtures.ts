/**
 * Builders shared by the fleet tests: site declarations with real Ed25519 public keys, fake but
 * well-formed manifest digests, and entries built through the same code `site apply` uses.
 */
import { createHash } from 'node:crypto';
import { generateKeyPair } from '../../src/registry/keys.js';
import type { SiteDeclaration } from '../../src/fleet/site-schema.js';
import type { ResolvedManifestRef } from '../../src/fleet/resolve.js';

export function declaration(name: string, labels: Record<string, string> = {}): SiteDeclaration {
  const kp = generateKeyPair();
  return {
    name,
    labels,
    publicKey: { keyid: kp.keyid, key: Buffer.from(kp.publicKey).toString('base64') },
    runtime: {},
  };
}

/** A deterministic `sha256:` digest standing in for a manifest digest. */
export function fakeDigest(seed: string): string {
  return `sha256:${createHash('sha256').update(seed).digest('hex')}`;
}

/** What a RefResolver answers for `ref` when the registry holds exactly `published`. */
export function resolvedFrom(
  published: readonly { ref: string; manifestDigest: string; role?: string }[],
  ref: string,
): ResolvedManifestRef | undefined {
  const r = published.find((p) => p.ref === ref);
  return r && { digest: r.manifestDigest, ...(r.role !== undefined ? { role: r.role } : {}) };
}

export const T0 = new Date('2030-01-01T00:00:00.000Z');
export const at = (minutes: number) => new Date(T0.getTime() + minutes * 60_000);
