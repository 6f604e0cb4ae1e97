/**
 * `artifact list` and `artifact show`: what is published, and one manifest in detail. Show verifies
 * the signature when a trust root is given and says so in `verified`; it never reads blobs.
 */
import type { Store } from '../registry/store.js';
import type { TrustRoot } from '../registry/trust.js';
import { listArtifacts, resolveRef } from './manifest-store.js';
import { parseListSelector, parseRef, type ArtifactKind } from './ref.js';

export interface ListResult {
  artifacts: { ref: string; kind: ArtifactKind; name: string; version: string }[];
}

export async function listPublished(store: Store, selector?: string): Promise<ListResult> {
  const sel = selector ? parseListSelector(selector) : {};
  const entries = await listArtifacts(store, sel);
  return {
    artifacts: entries.map((e) => ({
      ref: `${e.kind}/${e.name}@${e.version}`,
      kind: e.kind,
      name: e.name,
      version: e.version,
    })),
  };
}

export interface ShowResult {
  ref: string;
  manifestDigest: string;
  /** True when the signature was checked against the trust root. */
  verified: boolean;
  signedBy: string[];
  kind: ArtifactKind;
  name: string;
  version: string;
  created: string;
  description?: string;
  size: number;
  meta: Record<string, unknown>;
  chunks: number;
  blobs: number;
  files: { path: string; size: number; sha256: string; chunks: number; mode?: number }[];
}

export async function showArtifact(
  store: Store,
  refText: string,
  trust: TrustRoot | undefined,
): Promise<ShowResult> {
  const loaded = await resolveRef(store, parseRef(refText), trust);
  const m = loaded.manifest;
  return {
    ref: loaded.ref,
    manifestDigest: loaded.digest,
    verified: trust !== undefined,
    signedBy: loaded.signedBy,
    kind: m.kind,
    name: m.name,
    version: m.version,
    created: m.created,
    ...(m.description !== undefined ? { description: m.description } : {}),
    size: m.size,
    meta: m.meta,
    chunks: m.files.reduce((n, f) => n + f.chunks.length, 0),
    blobs: m.blobs.length,
    files: m.files.map((f) => ({
      path: f.path,
      size: f.size,
      sha256: f.sha256,
      chunks: f.chunks.length,
      ...(f.mode !== undefined ? { mode: f.mode } : {}),
    })),
  };
}
