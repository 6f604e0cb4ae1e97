/**
 * Loading a whole sites directory (docs/formats.md "Fleet log"): the `*.yaml` files of `sites/`,
 * each parsed against the declaration schema in site-schema.ts, with errors that name file:line
 * and field, and the name of each file checked against its `name`.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import jsyaml from 'js-yaml';
import { z } from 'zod';
import { UserError } from '../foundation/errors.js';
import { parseYamlWithSchema, yamlError, type ParsedYaml, type YamlProblem } from '../config/yaml-file.js';
import { siteFileSchema, toDeclaration, type DeclaredSite, type SiteFile } from './site-schema.js';

export interface SiteDirResult {
  sites: DeclaredSite[];
  problems: YamlProblem[];
}

/** The `*.yaml` files of a sites directory (sorted); a missing directory is an empty fleet. */
export function siteFilesIn(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new UserError(`${dir}: cannot read the sites directory (${(err as NodeJS.ErrnoException).code})`);
  }
  return names
    .filter((n) => n.endsWith('.yaml') || n.endsWith('.yml'))
    .sort()
    .map((n) => join(dir, n));
}

const NOT_PARSED = Symbol('not parsed');

/**
 * Reads and validates one site file. Fleets have thousands of these, and the `yaml` package that
 * gives every error its line (config/yaml-file.ts) parses about 8x slower than js-yaml, so valid
 * files take a fast path: js-yaml with the YAML 1.2 core schema (the same types `yaml` resolves),
 * then the schema. Only a file that fails, or a later `lineOf` call, is parsed with `yaml` for the
 * line numbers, so errors read exactly as for every other YAML file of the tool.
 */
export function readSiteFile(path: string, file: string): ParsedYaml<SiteFile> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new UserError(`${file}: cannot read file (${(err as NodeJS.ErrnoException).code ?? String(err)})`, {
      code: 'E_READ',
    });
  }
  let raw: unknown = NOT_PARSED;
  try {
    raw = jsyaml.load(text, { schema: jsyaml.CORE_SCHEMA, filename: file });
  } catch {
    // Reported with its line by the slow path below.
  }
  const fast = raw === NOT_PARSED ? undefined : siteFileSchema.safeParse(raw ?? {});
  if (fast?.success) {
    let lines: ParsedYaml<unknown> | undefined;
    return {
      value: fast.data,
      lineOf: (p) => (lines ??= parseYamlWithSchema(text, file, z.unknown())).lineOf(p),
    };
  }
  return parseYamlWithSchema(text, file, siteFileSchema);
}

/**
 * Validates site files and collects every problem instead of stopping at the first file: what
 * `edgectl lint` reports. `display` turns a path into the name shown in messages.
 */
export function checkSiteFiles(files: string[], display: (path: string) => string = (p) => p): SiteDirResult {
  const sites: DeclaredSite[] = [];
  const problems: YamlProblem[] = [];
  const byName = new Map<string, DeclaredSite>();
  for (const path of files) {
    const file = display(path);
    let parsed;
    try {
      parsed = readSiteFile(path, file);
    } catch (err) {
      const list = (err as UserError).details?.problems as YamlProblem[] | undefined;
      if (err instanceof UserError && list) problems.push(...list);
      else if (err instanceof UserError) problems.push({ file, line: 1, field: '', message: err.message });
      else throw err;
      continue;
    }
    const base = path.replace(/^.*[\\/]/, '').replace(/\.ya?ml$/, '');
    const { declaration, assignments } = toDeclaration(parsed.value);
    const other = byName.get(declaration.name);
    // Only computed for a problem: it costs a second, slower parse of the file.
    const line = () => parsed.lineOf(['name']);
    if (other) {
      // Usually a copied file whose name was not changed.
      const rename = declaration.name !== base ? `; the name must equal the file name "${base}"` : '';
      const where = `${other.file}:${other.lineOf(['name'])}`;
      const message = `duplicate site name "${declaration.name}" (also declared in ${where})${rename}`;
      problems.push({ file, line: line(), field: 'name', message });
      continue;
    }
    if (declaration.name !== base) {
      const message = `"${declaration.name}" must equal the file name "${base}" (rename the file or the site)`;
      problems.push({ file, line: line(), field: 'name', message });
      continue;
    }
    const site: DeclaredSite = { file, declaration, assignments, lineOf: parsed.lineOf };
    byName.set(declaration.name, site);
    sites.push(site);
  }
  return { sites, problems };
}

/**
 * Loads every declaration of a sites directory. Throws one UserError (exit 2) listing every problem
 * as `file:line: field: message` (details.problems holds them for --json).
 */
export function loadSiteDeclarations(dir: string, display?: (path: string) => string): DeclaredSite[] {
  const { sites, problems } = checkSiteFiles(siteFilesIn(dir), display);
  if (problems.length > 0) {
    const first = problems[0] as YamlProblem;
    const err = yamlError(first.file, problems);
    throw new UserError(err.message, {
      code: 'E_INVALID_SITE',
      suggestion: `fix the site declarations in ${display ? display(dir) : dir} (\`edgectl lint\` lists every problem)`,
      details: { problems },
    });
  }
  return sites;
}
