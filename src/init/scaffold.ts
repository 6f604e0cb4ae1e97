/**
 * `edgectl init [dir]`: scaffolds a GitOps repository for a fleet: edgectl.yaml, sites/ with one
 * example site (with a real key, so it validates), artifacts/ with what the example site runs (the
 * bundled draft model, support adapter and default policy, so that it plans and applies once they
 * are published) and a README on the layout, trust/, a .gitignore that keeps secret keys and local
 * state out of git, a package.json pinning this edgectl (or the spec given), and a GitHub Actions
 * workflow that installs it.
 *
 * It never overwrites: into an empty directory (a lone `.git` counts as empty, for `git init && edgectl
 * init`) it writes everything; a non-empty directory is refused unless `force`, and then only
 * missing files are written and existing ones kept, so re-running is idempotent and never destroys
 * an edited file or a key. The refusal is decided before anything is written.
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { OperationalError, UserError } from '../foundation/errors.js';
import { defaultSiteDataDir, siteKeyPath } from '../fleet/site-add.js';
import { toDeclaration } from '../fleet/site-schema.js';
import { readSiteFile } from '../fleet/site-files.js';
import { generateKeyPair, publicKeyFile, readPublicKeyFile, writeKeyPair } from '../registry/keys.js';
import { edgectlDependency } from './edgectl-spec.js';
import { edgectlPackage } from '../foundation/package-root.js';
import {
  ARTIFACTS_README,
  EDGECTL_YAML,
  GITIGNORE,
  SITES_README,
  TRUST_README,
  exampleSiteYaml,
  packageJson,
} from './templates.js';
import { GITHUB_WORKFLOW } from './workflow.js';

export const EXAMPLE_SITE = 'example-001';
export const WORKFLOW_PATH = '.github/workflows/edgectl.yml';

/** The bundled artifacts the example site is assigned, copied from the package (relative dirs). */
export const EXAMPLE_ARTIFACTS = ['policies/default', 'models/draft', 'adapters/support'] as const;

export interface InitOptions {
  dir: string;
  force?: boolean;
  /** What package.json pins as edgectl (see edgectl-spec.ts); default: this version. */
  edgectlSpec?: string;
}

export interface InitResult {
  dir: string;
  /** Files written by this run, relative to dir. */
  created: string[];
  /** Files that already existed and were left as they were. */
  kept: string[];
  site: { name: string; keyid: string; secretKeyPath: string };
  /** The package.json spec of edgectl the repository (and its CI) installs. */
  edgectl: string;
  /** Commands to run next, in order. */
  next: string[];
}

type Source = { text: string } | { copyFrom: string };

/** Files of the scaffold (relative path -> content), except the example site, which needs a key. */
function plannedFiles(dir: string, edgectlSpec: string): Map<string, Source> {
  const files = new Map<string, Source>([
    ['edgectl.yaml', { text: EDGECTL_YAML }],
    ['.gitignore', { text: GITIGNORE }],
    ['package.json', { text: packageJson({ name: npmName(dir), edgectlSpec }) }],
    ['sites/README.md', { text: SITES_README }],
    ['trust/README.md', { text: TRUST_README }],
    ['artifacts/README.md', { text: ARTIFACTS_README }],
    [WORKFLOW_PATH, { text: GITHUB_WORKFLOW }],
  ]);
  for (const rel of EXAMPLE_ARTIFACTS) {
    const src = join(edgectlPackage().root, 'artifacts', rel);
    if (!existsSync(src)) {
      throw new OperationalError(`the edgectl package lacks artifacts/${rel}, which the example site runs`, {
        code: 'E_INIT_PACKAGE',
        suggestion: 'reinstall edgectl (its package ships the example artifacts)',
        details: { path: src },
      });
    }
    for (const name of readdirSync(src).sort()) {
      if (statSync(join(src, name)).isFile())
        files.set(`artifacts/${rel}/${name}`, { copyFrom: join(src, name) });
    }
  }
  return files;
}

/** A valid npm package name from the directory name. */
function npmName(dir: string): string {
  const name = basename(dir)
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')
    .replace(/^[._-]+/, '');
  return name === '' ? 'edgectl-fleet' : name.slice(0, 200);
}

function isEffectivelyEmpty(dir: string): boolean {
  if (!existsSync(dir)) return true;
  if (!statSync(dir).isDirectory()) {
    throw new UserError(`${dir} is a file, not a directory`, {
      code: 'E_INIT_NOT_DIR',
      suggestion: 'pass a directory to create, or an empty one',
    });
  }
  return readdirSync(dir).every((n) => n === '.git');
}

export function initProject(opts: InitOptions): InitResult {
  const dir = resolve(opts.dir);
  if (!isEffectivelyEmpty(dir) && !opts.force) {
    throw new UserError(`${dir} is not empty; edgectl init writes only into an empty directory`, {
      code: 'E_INIT_NOT_EMPTY',
      suggestion: `pass --force to add the missing scaffold files (existing files are kept), or choose a new directory`,
      details: { dir },
    });
  }
  const edgectl = edgectlDependency(opts.edgectlSpec, edgectlPackage().version);
  const files = plannedFiles(dir, edgectl.spec);
  if (edgectl.vendored) files.set(edgectl.vendored.to, { copyFrom: edgectl.vendored.from });
  const created: string[] = [];
  const kept: string[] = [];
  mkdirSync(dir, { recursive: true });
  for (const [rel, source] of files) {
    const path = join(dir, rel);
    if (existsSync(path)) {
      kept.push(rel);
      continue;
    }
    mkdirSync(dirname(path), { recursive: true });
    if ('text' in source) writeFileSync(path, source.text, { flag: 'wx' });
    else copyFileSync(source.copyFrom, path);
    created.push(rel);
  }
  mkdirSync(join(dir, 'keys'), { recursive: true, mode: 0o700 });

  const site = exampleSite(dir, created, kept);
  return {
    dir,
    created,
    kept,
    site,
    edgectl: edgectl.spec,
    next: [
      'edgectl keys generate --out keys/root.key',
      'edgectl keys generate --out keys/artifacts.key',
      'edgectl keys generate --out keys/fleet.key',
      'edgectl trust init',
      'edgectl registry init',
      ...EXAMPLE_ARTIFACTS.map((rel) => `edgectl publish artifact artifacts/${rel}`),
      'edgectl lint && edgectl site plan',
      'edgectl site apply',
    ],
  };
}

/**
 * The example site's declaration and key. The key is reused when it already exists (a rerun after
 * the YAML was deleted), so a site that was provisioned with it keeps working.
 */
function exampleSite(dir: string, created: string[], kept: string[]): InitResult['site'] {
  const rel = `sites/${EXAMPLE_SITE}.yaml`;
  const file = join(dir, rel);
  const keyPath = siteKeyPath(defaultSiteDataDir(dir, EXAMPLE_SITE));
  if (existsSync(file)) {
    // Declared already: its key is the site's business (`site add --rekey` replaces it).
    kept.push(rel);
    const { declaration } = toDeclaration(readSiteFile(file, rel).value);
    return { name: EXAMPLE_SITE, keyid: declaration.publicKey.keyid, secretKeyPath: keyPath };
  }
  let keyid: string;
  let publicKey: Uint8Array;
  if (existsSync(keyPath) || existsSync(publicKeyFile(keyPath))) {
    ({ keyid, publicKey } = readPublicKeyFile(existsSync(keyPath) ? keyPath : publicKeyFile(keyPath)));
  } else {
    const kp = generateKeyPair();
    writeKeyPair(keyPath, kp);
    ({ keyid, publicKey } = kp);
    created.push(relative(dir, keyPath));
  }
  mkdirSync(dirname(file), { recursive: true });
  const text = exampleSiteYaml({
    name: EXAMPLE_SITE,
    keyid,
    publicKey: Buffer.from(publicKey).toString('base64'),
  });
  writeFileSync(file, text, { flag: 'wx' });
  created.push(rel);
  return { name: EXAMPLE_SITE, keyid, secretKeyPath: keyPath };
}
