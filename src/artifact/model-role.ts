/**
 * Which model roles may fill a site's `model` slot. A model artifact's role (`meta.role`, written
 * by the publish validator: `draft`, `verifier` or `embedder`) says what its graph is: draft and
 * verifier models are causal LMs the site runtime can decode with, an embedder is a sentence
 * encoder (docs/formats.md "Index artifacts") that only indexes use, and never as an assignment:
 * each index pins its embedder and the embedder syncs with it. Every place a model ref reaches the
 * slot (`site plan`/`site apply`, `rollout canary`, the site's sync and its runtime loading a
 * generation) asks this module, so they refuse with the same words. A manifest without a role
 * (none is published so, but a hand-built registry could hold one) is left to the loaders.
 */
import { UserError, VerificationError } from '../foundation/errors.js';
import type { Manifest } from './manifest.js';

/** Roles whose graph is a causal LM the site runtime can serve as its draft model. */
const SERVABLE_ROLES: ReadonlySet<string> = new Set(['draft', 'verifier']);

/** Error code of a model of the wrong role in the model slot (all layers use it). */
export const SITE_MODEL_ROLE_CODE = 'E_SITE_MODEL_ROLE';

/** What to do instead, for the error's suggestion. */
export const SITE_MODEL_ROLE_FIX =
  'assign a model with role draft in assignments.model; embedders are not assigned: an index pins ' +
  'its embedder, which syncs with the index (assignments.indexes)';

/** The role a model manifest declares, if any. */
export function modelRole(manifest: Pick<Manifest, 'meta'>): string | undefined {
  const role = manifest.meta.role;
  return typeof role === 'string' ? role : undefined;
}

/** Why `ref` (a model of `role`) cannot be a site's model, or undefined when it can. */
export function siteModelRoleProblem(ref: string, role: string | undefined): string | undefined {
  if (role === undefined || SERVABLE_ROLES.has(role)) return undefined;
  const what = role === 'embedder' ? 'an embedder (a sentence encoder)' : `a model of role ${role}`;
  return `${ref} is ${what}, not a draft model the site can serve`;
}

/**
 * Throws the UserError (exit 2) when `manifest` is a model that cannot be a site's model; `what`
 * names where the ref was given (`rollout candidate`), as the message's prefix.
 */
export function refuseNonDraftModel(
  manifest: Pick<Manifest, 'kind' | 'meta'>,
  ref: string,
  what: string,
): void {
  if (manifest.kind !== 'model') return;
  const problem = siteModelRoleProblem(ref, modelRole(manifest));
  if (problem === undefined) return;
  throw new UserError(`${what}: ${problem}`, {
    code: SITE_MODEL_ROLE_CODE,
    suggestion: SITE_MODEL_ROLE_FIX,
    details: { ref, role: modelRole(manifest) },
  });
}

/**
 * The site side of the rule: a fleet state written before `site plan` checked roles (or by hand)
 * can still put an embedder in the model slot. The site refuses it (exit 4, like any assignment it
 * cannot install) and keeps its current generation.
 */
export function refuseSiteModel(manifest: Pick<Manifest, 'kind' | 'meta'>, ref: string): void {
  const problem = manifest.kind === 'model' ? siteModelRoleProblem(ref, modelRole(manifest)) : undefined;
  if (problem === undefined) return;
  throw new VerificationError(`the fleet state assigns this site's model: ${problem}; refused`, {
    code: SITE_MODEL_ROLE_CODE,
    suggestion: `fix the site's declaration and run \`edgectl site apply\`: ${SITE_MODEL_ROLE_FIX}`,
    details: { ref, role: modelRole(manifest) },
  });
}
