/**
 * The embedder models of a site's indexes. An index is useless without the exact model that
 * embedded its passages (dense retrieval embeds the query with it), so a generation that holds an
 * index also holds that model, in `embedders/<index name>`. Which model it is comes from the index
 * manifest's `meta` (`embedder`: the model ref, `embedderDigest`: its manifest digest), written by
 * the publisher after it checked that model in the registry (src/artifact/validate/index-artifact.ts)
 * and covered by the index manifest's signature; the embedder's own manifest is then verified
 * against that pinned digest exactly like an assigned artifact. Embedders are derived from the
 * assigned index manifests, so they do not change the generation id.
 */
import { VerificationError } from '../foundation/errors.js';
import type { Manifest } from '../artifact/manifest.js';
import { modelRole } from '../artifact/model-role.js';
import { isDigest } from '../foundation/digest.js';
import type { Store } from '../registry/store.js';
import type { TrustRoot } from '../registry/trust.js';
import { loadAssignedManifest, nameOf, type AssignedArtifact, type LocalManifests } from './manifests.js';

export interface LoadedArtifact {
  art: AssignedArtifact;
  manifest: Manifest;
}

/** The embedder an index manifest pins, as an artifact of the generation. */
export function embedderOf(index: LoadedArtifact): AssignedArtifact {
  const { embedder, embedderDigest } = index.manifest.meta;
  if (
    typeof embedder !== 'string' ||
    !embedder.startsWith('model/') ||
    typeof embedderDigest !== 'string' ||
    !isDigest(embedderDigest)
  ) {
    throw new VerificationError(
      `${index.art.ref}: the index manifest pins no embedder model (meta.embedder, meta.embedderDigest)`,
      {
        code: 'E_INDEX_EMBEDDER',
        suggestion: 'republish the index with this edgectl (publish records the embedder it checked)',
        details: { ref: index.art.ref },
      },
    );
  }
  // One embedder directory per index, named after it, so the runtime pairs them without a lookup.
  return {
    slot: 'embedder',
    ref: embedder,
    manifestDigest: embedderDigest,
    dir: `embedders/${nameOf(index.art.ref)}`,
  };
}

/** An index pinning a draft or verifier LM (publish refuses that; a hand-built registry may not). */
function refuseNonEmbedder(index: LoadedArtifact, art: AssignedArtifact, manifest: Manifest): void {
  const role = modelRole(manifest);
  if (role === undefined || role === 'embedder') return;
  throw new VerificationError(
    `${index.art.ref}: the index pins ${art.ref} as its embedder, but that is a model of role ${role}`,
    {
      code: 'E_INDEX_EMBEDDER',
      suggestion: 'rebuild the index with its sentence encoder (role: embedder) and republish it',
      details: { ref: index.art.ref, embedder: art.ref, role },
    },
  );
}

/** `loaded` plus the embedder of every index in it, verified. */
export async function withEmbedders(
  store: Store,
  trust: TrustRoot,
  loaded: readonly LoadedArtifact[],
  local: LocalManifests,
): Promise<LoadedArtifact[]> {
  const out = [...loaded];
  for (const l of loaded) {
    if (l.art.slot !== 'index') continue;
    // Two indexes with one embedder get a copy each (small; the chunks are fetched once).
    const art = embedderOf(l);
    const { manifest } = await loadAssignedManifest(store, trust, art, local);
    refuseNonEmbedder(l, art, manifest);
    out.push({ art, manifest });
  }
  return out;
}
