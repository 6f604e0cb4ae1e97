/**
 * The embedder models of a site's indexes. An index is useless without the exact model that
 * embedded its passages (dense retrieval embeds the query with it), so a generation that holds an
 * index also holds that model, in `embedders/<name>`. Which model it is comes from the index
 * manifest's `meta` (`embedder`: the model ref, `embedderDigest`: its manifest digest), written by
 * the publisher after it checked that model in the registry (src/artifact/validate/index-artifact.ts)
 * and covered by the index manifest's signature; the embedder's own manifest is then verified
 * against that pinned digest exactly like an assigned artifact. Embedders are derived from the
 * assigned index manifests, so they do not change the generation id.
 */
import { VerificationError } from '../foundation/errors.js';
import type { Manifest } from '../artifact/manifest.js';
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
  return {
    slot: 'embedder',
    ref: embedder,
    manifestDigest: embedderDigest,
    dir: `embedders/${nameOf(embedder)}`,
  };
}

/** `loaded` plus the embedder of every index in it (one per distinct embedder manifest), verified. */
export async function withEmbedders(
  store: Store,
  trust: TrustRoot,
  loaded: readonly LoadedArtifact[],
  local: LocalManifests,
): Promise<LoadedArtifact[]> {
  const out = [...loaded];
  const seen = new Set<string>();
  for (const l of loaded) {
    if (l.art.slot !== 'index') continue;
    const art = embedderOf(l);
    if (seen.has(art.manifestDigest)) continue;
    seen.add(art.manifestDigest);
    // Two embedders with the same name in different versions would collide in embedders/<name>.
    if (out.some((o) => o.art.dir === art.dir)) art.dir = `${art.dir}-${art.manifestDigest.slice(7, 19)}`;
    out.push({ art, manifest: (await loadAssignedManifest(store, trust, art, local)).manifest });
  }
  return out;
}
