/**
 * Per-kind validation at publish (docs/formats.md "Artifacts"): dispatches to the model, adapter, policy and
 * index validators and returns the kind-specific `meta` recorded in the manifest. Anything refused here is
 * a UserError (exit 2) naming the file and field.
 */
import type { LoadedManifest } from '../manifest-store.js';
import type { ArtifactKind } from '../ref.js';
import { validateAdapter } from './adapter.js';
import type { Meta, ValidateContext } from './common.js';
import { validateIndex } from './index-artifact.js';
import { validateModel } from './model.js';
import { validatePolicy } from './policy.js';

export type { Meta, ValidateContext } from './common.js';

export interface Validated {
  meta: Meta;
  /** The base model of an adapter (its chunks seed deduplication). */
  base?: LoadedManifest;
}

export async function validateArtifact(kind: ArtifactKind, ctx: ValidateContext): Promise<Validated> {
  switch (kind) {
    case 'model':
      return { meta: await validateModel(ctx) };
    case 'adapter':
      return validateAdapter(ctx);
    case 'policy':
      return { meta: validatePolicy(ctx) };
    case 'index':
      return { meta: await validateIndex(ctx) };
  }
}
