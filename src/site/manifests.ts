/**
 * The artifact manifests a site installs: which ones its assignments name (in the bandwidth-aware
 * order policies, adapters, models; docs/running-sites.md), fetching each one verified, and a local store
 * of verified manifests so drift repair and later syncs need no registry request for them.
 *
 * A manifest is accepted only if it verifies under the trust root's `artifacts` role AND its digest
 * equals the `manifestDigest` the signed fleet state pinned for the ref. The second check is the
 * mix-and-match protection: a validly signed manifest of another version copied over the assigned
 * one is refused (reference study 1.4). Locally stored manifests are named by that digest and
 * re-hashed on every read, so a damaged or swapped local copy is never used.
 */
import { mkdir, readFile, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { NotFoundError, UserError, VerificationError } from '../foundation/errors.js';
import { resolveRef } from '../artifact/manifest-store.js';
import { envelopeManifestDigest, parseManifest, type Manifest } from '../artifact/manifest.js';
import { parseRef } from '../artifact/ref.js';
import type { SiteAssignments } from '../fleet/state.js';
import { decodeEnvelope, encodeEnvelope, peekPayload } from '../registry/envelope.js';
import { digestHex } from '../foundation/digest.js';
import type { Store } from '../registry/store.js';
import type { TrustRoot } from '../registry/trust.js';
import { writeFileAtomic } from '../foundation/atomic-file.js';

/** `index`: an assigned retrieval index; `embedder`: the model an index pins (derived, never assigned). */
export type ArtifactSlot = 'policy' | 'adapter' | 'index' | 'model' | 'shadow' | 'embedder';

/** One assigned artifact and where it goes inside a generation directory. */
export interface AssignedArtifact {
  slot: ArtifactSlot;
  ref: string;
  manifestDigest: string;
  /**
   * Directory inside the generation: `policy`, `adapters/<name>`, `indexes/<name>`, `model`,
   * `shadow/<name>` or `embedders/<name>`.
   */
  dir: string;
}

export function nameOf(ref: string): string {
  const slash = ref.indexOf('/');
  const at = ref.indexOf('@');
  return ref.slice(slash + 1, at < 0 ? undefined : at);
}

/**
 * The assigned artifacts in fetch priority order: policy, adapters (by ref), indexes (small, like
 * adapters), model, then shadow adapters (a rollout's shadow step: lowest priority, never needed to
 * serve). The embedders the indexes pin are added by installGeneration (src/site/index-embedders.ts).
 */
export function assignedArtifacts(a: SiteAssignments | null): AssignedArtifact[] {
  if (!a) return [];
  const out: AssignedArtifact[] = [];
  if (a.policy) out.push({ slot: 'policy', ...a.policy, dir: 'policy' });
  for (const ad of a.adapters) out.push({ slot: 'adapter', ...ad, dir: `adapters/${nameOf(ad.ref)}` });
  for (const ix of a.indexes ?? []) out.push({ slot: 'index', ...ix, dir: `indexes/${nameOf(ix.ref)}` });
  if (a.model) out.push({ slot: 'model', ...a.model, dir: 'model' });
  for (const ad of a.shadow ?? []) out.push({ slot: 'shadow', ...ad, dir: `shadow/${nameOf(ad.ref)}` });
  return out;
}

/** Verified manifest envelopes kept in the data directory, by manifest digest. */
export class LocalManifests {
  constructor(readonly dir: string) {}

  private pathOf(digest: string): string {
    return join(this.dir, `${digestHex(digest)}.json`);
  }

  /** The manifest with this digest, or undefined when absent or not matching its name. */
  async get(digest: string): Promise<Manifest | undefined> {
    let body: Buffer;
    try {
      body = await readFile(this.pathOf(digest));
    } catch {
      return undefined;
    }
    try {
      const env = decodeEnvelope(body, this.pathOf(digest));
      if (envelopeManifestDigest(env) !== digest) return undefined;
      return parseManifest(peekPayload(env), this.pathOf(digest));
    } catch {
      return undefined;
    }
  }

  async put(digest: string, envelopeBytes: Buffer): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    await writeFileAtomic(this.pathOf(digest), envelopeBytes);
  }

  /** Removes every manifest whose digest is not in `keep`. */
  async prune(keep: Set<string>): Promise<void> {
    const names = await readdir(this.dir).catch(() => [] as string[]);
    for (const name of names) {
      const m = /^([0-9a-f]{64})\.json$/.exec(name);
      if (m && !keep.has(`sha256:${m[1]}`)) await rm(join(this.dir, name), { force: true });
    }
  }
}

function asVerificationError(err: unknown, art: AssignedArtifact): unknown {
  if (err instanceof NotFoundError) {
    return new VerificationError(
      `${art.ref} is assigned to this site by the signed fleet state but is not in the registry`,
      {
        code: 'E_MANIFEST_MISSING',
        suggestion: 'the registry is incomplete; republish the artifact or restore the registry',
        details: { ref: art.ref, manifestDigest: art.manifestDigest },
        cause: err,
      },
    );
  }
  // A signed manifest that fails the schema is a bad object from the registry, not bad user input.
  if (err instanceof UserError && err.code === 'E_MANIFEST_INVALID') {
    return new VerificationError(err.message, { code: err.code, details: err.details ?? {}, cause: err });
  }
  return err;
}

/**
 * The manifest of an assigned artifact: from the local store when present, else fetched from the
 * registry, verified (artifacts role, identity, pinned digest) and stored locally.
 */
export async function loadAssignedManifest(
  store: Store,
  trust: TrustRoot,
  art: AssignedArtifact,
  local: LocalManifests,
): Promise<{ manifest: Manifest; fetched: boolean }> {
  const cached = await local.get(art.manifestDigest);
  if (cached) return { manifest: cached, fetched: false };
  let loaded;
  try {
    // The signed fleet state pins this digest: an earlier artifacts key's signature counts.
    loaded = await resolveRef(store, parseRef(art.ref), trust, { pinned: new Set([art.manifestDigest]) });
  } catch (err) {
    throw asVerificationError(err, art);
  }
  if (loaded.digest !== art.manifestDigest) {
    throw new VerificationError(
      `${loaded.key}: manifest digest ${loaded.digest} is not the ${art.manifestDigest} the fleet state pinned for ${art.ref} ` +
        '(mix-and-match refused)',
      {
        code: 'E_MANIFEST_PINNED',
        suggestion:
          'the registry serves a different manifest than the one that was assigned; it has been tampered with',
        details: { ref: art.ref, expected: art.manifestDigest, actual: loaded.digest, key: loaded.key },
      },
    );
  }
  const bytes = encodeEnvelope(loaded.envelope);
  if (bytes.length <= store.limits.manifest) await local.put(art.manifestDigest, bytes);
  return { manifest: loaded.manifest, fetched: true };
}
