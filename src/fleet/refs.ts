/**
 * Artifact refs as the fleet uses them: which kind each assignment slot takes, and the identity of
 * an adapter within a site's list (its `<kind>/<name>`, so a new version replaces the old one).
 * Syntax is owned by src/artifact/ref.ts; this module only adds the slot rules.
 */
import { isEdgectlError } from '../foundation/errors.js';
import { parseRef, type ArtifactRef } from '../artifact/ref.js';

/** Why `ref` cannot go in a slot of `kind`, or undefined when it can. */
export function refProblem(ref: string, kind: string, slot: string): string | undefined {
  let parsed: ArtifactRef;
  try {
    parsed = parseRef(ref);
  } catch (err) {
    if (isEdgectlError(err)) return `${err.message}${err.suggestion ? ` (${err.suggestion})` : ''}`;
    throw err;
  }
  if (parsed.kind !== kind) {
    return `ref "${ref}" is a ${parsed.kind}; the ${slot} slot takes ${kind} refs (${kind}/<name>@<version>)`;
  }
  return undefined;
}

/** `<kind>/<name>` of a ref: what identifies an adapter in a site's adapter list. */
export function refIdentity(ref: string): string {
  const at = ref.indexOf('@');
  return at < 0 ? ref : ref.slice(0, at);
}

/** The kind of a syntactically valid ref (`model/draft@1.0.0` -> `model`). */
export function refKind(ref: string): string {
  const slash = ref.indexOf('/');
  return slash < 0 ? '' : ref.slice(0, slash);
}
