/**
 * Artifact references (docs/formats.md "Artifacts"): `<kind>/<name>@<semver>` or `<kind>/<name>@sha256:<hex>`
 * (a manifest digest). Owns parsing, validation (known kind, name charset, strict semver, digest
 * form) and formatting, so every command and the fleet state read refs the same way. Invalid refs
 * are UserErrors (exit 2) that say which part is wrong and what a valid ref looks like.
 */
import semver from 'semver';
import { UserError } from '../foundation/errors.js';

export const ARTIFACT_KINDS = ['model', 'adapter', 'policy', 'index'] as const;
export type ArtifactKind = (typeof ARTIFACT_KINDS)[number];

/** Lower-case names: they become path segments of the registry, so no dots, slashes or spaces. */
const NAME_RE = /^[a-z0-9]([a-z0-9_-]{0,62}[a-z0-9])?$/;
const DIGEST_RE = /^sha256:[0-9a-f]{64}$/;

export type ArtifactRef =
  | { kind: ArtifactKind; name: string; version: string; digest?: undefined }
  | { kind: ArtifactKind; name: string; digest: string; version?: undefined };

const EXAMPLE = 'model/draft@1.2.0 or model/draft@sha256:<64 hex>';

export function isArtifactKind(value: string): value is ArtifactKind {
  return (ARTIFACT_KINDS as readonly string[]).includes(value);
}

export function checkKind(kind: string, where = 'kind'): ArtifactKind {
  if (!isArtifactKind(kind)) {
    throw new UserError(`${where}: unknown artifact kind "${kind}"`, {
      code: 'E_KIND',
      suggestion: `use one of: ${ARTIFACT_KINDS.join(', ')}`,
      details: { kind },
    });
  }
  return kind;
}

export function checkName(name: string, where = 'name'): string {
  if (!NAME_RE.test(name)) {
    throw new UserError(`${where}: invalid artifact name "${name}"`, {
      code: 'E_NAME',
      suggestion:
        'names are 1-64 characters of a-z, 0-9, "-" and "_", starting and ending with a letter or digit',
      details: { name },
    });
  }
  return name;
}

/** A strict semver version (no leading "v", no build-metadata loophole); returns it normalized. */
export function checkVersion(version: string, where = 'version'): string {
  const parsed = semver.parse(version);
  if (parsed?.build.length) {
    throw new UserError(`${where}: "${version}" has build metadata (+...)`, {
      code: 'E_SEMVER',
      suggestion: 'build metadata does not order versions; drop the "+..." part',
      details: { version },
    });
  }
  if (parsed === null || parsed.version !== version) {
    throw new UserError(`${where}: "${version}" is not a semantic version`, {
      code: 'E_SEMVER',
      suggestion: 'use MAJOR.MINOR.PATCH, e.g. 1.0.0 or 1.1.0-rc.1 (see semver.org)',
      details: { version },
    });
  }
  return version;
}

export function parseRef(text: string): ArtifactRef {
  const bad = (why: string) =>
    new UserError(`invalid artifact ref "${text}": ${why}`, {
      code: 'E_REF',
      suggestion: `write refs as ${EXAMPLE}`,
      details: { ref: text },
    });
  const at = text.indexOf('@');
  if (at < 0) throw bad('missing "@<version>"');
  const path = text.slice(0, at);
  const selector = text.slice(at + 1);
  const slash = path.indexOf('/');
  if (slash < 0) throw bad('missing "<kind>/" prefix');
  const kind = checkKind(path.slice(0, slash), `artifact ref "${text}"`);
  const name = checkName(path.slice(slash + 1), `artifact ref "${text}"`);
  if (selector.startsWith('sha256:')) {
    if (!DIGEST_RE.test(selector)) throw bad('a digest is sha256: followed by 64 lower-case hex digits');
    return { kind, name, digest: selector };
  }
  if (selector === '') throw bad('empty version');
  return { kind, name, version: checkVersion(selector, `artifact ref "${text}"`) };
}

/** `<kind>/<name>` or `<kind>` selector used by `artifact list`. */
export function parseListSelector(text: string): { kind: ArtifactKind; name?: string } {
  const [kind = '', name, extra] = text.split('/');
  if (extra !== undefined) {
    throw new UserError(`invalid selector "${text}"`, {
      code: 'E_REF',
      suggestion: 'use <kind> or <kind>/<name>',
    });
  }
  checkKind(kind);
  return name === undefined
    ? { kind: kind as ArtifactKind }
    : { kind: kind as ArtifactKind, name: checkName(name) };
}

export function formatRef(ref: ArtifactRef): string {
  return `${ref.kind}/${ref.name}@${ref.version ?? ref.digest}`;
}

/** Orders versions newest first (semver precedence). */
export function compareVersionsDesc(a: string, b: string): number {
  return semver.rcompare(a, b);
}
