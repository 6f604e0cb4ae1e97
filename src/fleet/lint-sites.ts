/**
 * The `sites` linter for `edgectl lint`: validates site declarations (schema, name = file name,
 * duplicate names, ref syntax and slot kinds) without contacting the registry. Whether each ref
 * exists in the registry is checked by `site plan`, which needs the registry anyway.
 */
import { existsSync, statSync } from 'node:fs';
import { resolve, sep } from 'node:path';
import type { Linter } from '../lint/lint.js';
import { checkSiteFiles, siteFilesIn } from './site-files.js';

function inside(path: string, dir: string): boolean {
  const d = resolve(dir);
  return path === d || path.startsWith(`${d}${sep}`);
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
    const { problems } = checkSiteFiles(files, (p) => ctx.display(p));
    return Promise.resolve({ files: files.length, problems });
  },
};
