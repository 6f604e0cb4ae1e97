/**
 * The `sites` linter for `edgectl lint`: validates site declarations (schema, name = file name,
 * duplicate names, ref syntax and slot kinds) without contacting the registry. Whether each ref
 * exists in the registry is checked by `site plan`, which needs the registry anyway. One role rule
 * is checked offline too, against the project's own artifact sources: a site's `assignments.model`
 * naming a model whose artifact.yaml says `role: embedder` (the registry-side check is in plan.ts).
 */
import { existsSync, statSync } from 'node:fs';
import { join, resolve, sep } from 'node:path';
import type { YamlProblem } from '../config/yaml-file.js';
import { ARTIFACT_YAML, readArtifactYaml } from '../config/artifact-yaml.js';
import { isEdgectlError } from '../foundation/errors.js';
import { artifactDirsUnder } from '../artifact/lint-artifacts.js';
import { parseRef } from '../artifact/ref.js';
import { SITE_MODEL_ROLE_FIX, siteModelRoleProblem } from '../artifact/model-role.js';
import type { Linter, LintContext } from '../lint/lint.js';
import { checkSiteFiles, siteFilesIn } from './site-files.js';
import type { DeclaredSite } from './site-schema.js';

function inside(path: string, dir: string): boolean {
  const d = resolve(dir);
  return path === d || path.startsWith(`${d}${sep}`);
}

/** Model names the project's artifact sources declare with a role, and the artifact.yaml saying so. */
function sourceModelRoles(ctx: LintContext): Map<string, { role: string; file: string }> {
  const out = new Map<string, { role: string; file: string }>();
  const root = resolve(ctx.root, 'artifacts');
  if (!existsSync(root)) return out;
  for (const dir of artifactDirsUnder(root)) {
    try {
      const { kind, name, role } = readArtifactYaml(dir).value;
      if (kind === 'model' && name && role)
        out.set(name, { role, file: ctx.display(join(dir, ARTIFACT_YAML)) });
    } catch (err) {
      if (!isEdgectlError(err)) throw err; // the artifacts linter reports a broken artifact.yaml
    }
  }
  return out;
}

/** A site whose model the project's sources declare as an embedder (any version of that name). */
function modelRoleProblems(sites: DeclaredSite[], ctx: LintContext): YamlProblem[] {
  const roles = sourceModelRoles(ctx);
  const out: YamlProblem[] = [];
  for (const site of sites) {
    const ref = site.assignments.model;
    if (!ref) continue;
    const source = roles.get(parseRef(ref).name);
    const problem = siteModelRoleProblem(ref, source?.role);
    if (!problem || !source) continue;
    out.push({
      file: site.file,
      line: site.lineOf(['assignments', 'model']),
      field: 'assignments.model',
      message: `${problem} (${source.file} says role: ${source.role}): ${SITE_MODEL_ROLE_FIX}`,
    });
  }
  return out;
}

export const sitesLinter: Linter = {
  id: 'sites',
  defaultTargets: (ctx) => (existsSync(ctx.sitesDir) ? [ctx.sitesDir] : []),
  claims: (path, ctx) =>
    inside(path, ctx.sitesDir) &&
    (statSync(path, { throwIfNoEntry: false })?.isDirectory() || /\.ya?ml$/.test(path)),
  lint(paths, ctx) {
    const files = [
      ...new Set(
        paths.flatMap((p) => (statSync(p, { throwIfNoEntry: false })?.isDirectory() ? siteFilesIn(p) : [p])),
      ),
    ];
    const { sites, problems } = checkSiteFiles(files, (p) => ctx.display(p));
    return Promise.resolve({
      files: files.length,
      problems: [...problems, ...modelRoleProblems(sites, ctx)],
    });
  },
};
