/**
 * Resolving assignment refs to manifest digests through the registry, for the planner: a ref is
 * assignable only if its manifest is published, verifies under the trust root's artifacts role and
 * is the manifest the ref names (src/artifact/manifest-store.ts does those checks). The digest is
 * the one the artifact module defines: SHA-256 of the manifest's DSSE payload bytes.
 *
 * A manifest the current fleet state already pins (by digest, for any site) may be signed by an
 * earlier trust root version's artifacts key (registry/trust-history.ts): the fleet key vouched for
 * that exact manifest when it was assigned, so a rotation does not block re-applying it. A ref
 * assigned for the first time needs the current artifacts role (or `edgectl artifact resign`).
 * A model's role comes along, so the planner can refuse an embedder in the model slot.
 */
import { NotFoundError } from '../foundation/errors.js';
import { resolveRef } from '../artifact/manifest-store.js';
import { modelRole } from '../artifact/model-role.js';
import { parseRef } from '../artifact/ref.js';
import type { Store } from '../registry/store.js';
import type { TrustRoot } from '../registry/trust.js';
import type { FleetState } from './state.js';

/** Every manifest digest the fleet state assigns to some site (shadow slots included). */
export function pinnedDigests(state: FleetState): Set<string> {
  const out = new Set<string>();
  for (const { assignments: a } of Object.values(state.sites)) {
    for (const r of [a.model, a.policy, ...a.adapters, ...(a.shadow ?? [])]) if (r) out.add(r.manifestDigest);
  }
  return out;
}

/** What the planner needs of a published ref. */
export interface ResolvedManifestRef {
  /** The manifest digest the fleet state pins. */
  digest: string;
  /** A model's `meta.role` (draft, verifier, embedder); absent for other kinds. */
  role?: string;
}

/** A published ref's digest (and model role), or undefined when the registry does not have it. */
export type RefResolver = (ref: string) => Promise<ResolvedManifestRef | undefined>;

/** A resolver reading the registry; each ref is looked up once for the resolver's lifetime. */
export function registryRefResolver(
  store: Store,
  trust: TrustRoot,
  pinned: ReadonlySet<string> = new Set(),
): RefResolver {
  const cache = new Map<string, Promise<ResolvedManifestRef | undefined>>();
  const lookup = async (text: string): Promise<ResolvedManifestRef | undefined> => {
    try {
      const loaded = await resolveRef(store, parseRef(text), trust, { pinned });
      const role = loaded.manifest.kind === 'model' ? modelRole(loaded.manifest) : undefined;
      return { digest: loaded.digest, ...(role !== undefined ? { role } : {}) };
    } catch (err) {
      if (err instanceof NotFoundError) return undefined;
      throw err;
    }
  };
  return (text) => {
    let p = cache.get(text);
    if (!p) {
      p = lookup(text);
      cache.set(text, p);
    }
    return p;
  };
}
