/**
 * `edgectl site add`: provisions a site's identity. Generates the site's Ed25519 key into its local
 * data directory (docs/running-sites.md; the secret key never leaves it and is never in git) and writes
 * `sites/<name>.yaml` declaring the public key, labels, runtime settings and assignments. Refuses an
 * existing site; `rekey` instead replaces the key of an existing declaration (a lost or rotated site
 * key), editing only `publicKey` so comments and the rest of the file are kept.
 *
 * Inputs are validated with the same schema as the files before anything is written, and errors
 * name the flag rather than a line of a file the user has not seen yet.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseDocument, stringify } from 'yaml';
import { UserError } from '../foundation/errors.js';
import { generateKeyPair, publicKeyFile, writeKeyPair, type KeyPair } from '../registry/keys.js';
import { SITE_NAME_RE, siteFileSchema } from './site-schema.js';

/** The site's secret key file inside its data directory (public half at `site.key.pub`). */
export const SITE_KEY_FILE = 'site.key';

export function siteKeyPath(dataDir: string): string {
  return join(dataDir, SITE_KEY_FILE);
}

/** Default data directory of a site, relative to the project root. */
export function defaultSiteDataDir(projectRoot: string, name: string): string {
  return join(projectRoot, '.edgectl', 'sites', name);
}

export interface AddSiteOptions {
  sitesDir: string;
  name: string;
  dataDir: string;
  labels?: Record<string, string>;
  runtime?: { listen?: string; verifier?: string; interval?: string };
  assignments?: { model?: string; adapters?: string[]; policy?: string; indexes?: string[] };
  /** Replace the key of an existing site instead of creating one. */
  rekey?: boolean;
  display?: (path: string) => string;
}

export interface AddSiteResult {
  name: string;
  file: string;
  keyid: string;
  publicKey: string;
  secretKeyPath: string;
  publicKeyPath: string;
  rekeyed: boolean;
}

/** Parses `k=v,k2=v2` (the --labels flag). */
export function parseLabels(text: string | undefined): Record<string, string> {
  const labels: Record<string, string> = {};
  if (!text) return labels;
  for (const part of text.split(',')) {
    const item = part.trim();
    if (item === '') continue;
    const eq = item.indexOf('=');
    if (eq <= 0) {
      throw new UserError(`--labels: "${item}" is not key=value`, {
        code: 'E_LABELS',
        suggestion: 'write labels as --labels region=eu-west,tier=branch',
      });
    }
    labels[item.slice(0, eq).trim()] = item.slice(eq + 1).trim();
  }
  return labels;
}

const FLAG_OF: Record<string, string> = {
  name: '<name>',
  labels: '--labels',
  'runtime.listen': '--listen',
  'runtime.verifier': '--verifier',
  'runtime.interval': '--interval',
  'assignments.model': '--model',
  'assignments.adapters': '--adapter',
  'assignments.policy': '--policy',
  'assignments.indexes': '--index',
};

/** What a good value of each ref flag looks like, for the error's suggestion. */
const REF_EXAMPLE: Record<string, string> = {
  '--model': 'model/draft@1.0.0',
  '--adapter': 'adapter/support@1.0.0',
  '--policy': 'policy/default@1.0.0',
  '--index': 'index/kb@1.0.0',
};

function flagFor(path: PropertyKey[]): string {
  const joined = path.map(String).join('.');
  const match = Object.keys(FLAG_OF)
    .filter((k) => joined === k || joined.startsWith(`${k}.`))
    .sort((a, b) => b.length - a.length)[0];
  return match ? (FLAG_OF[match] as string) : joined;
}

function siteDocument(opts: AddSiteOptions, kp: KeyPair): Record<string, unknown> {
  const doc: Record<string, unknown> = {
    name: opts.name,
    labels: opts.labels ?? {},
    publicKey: { keyid: kp.keyid, key: Buffer.from(kp.publicKey).toString('base64') },
  };
  const rt = Object.fromEntries(Object.entries(opts.runtime ?? {}).filter(([, v]) => v !== undefined));
  if (Object.keys(rt).length > 0) doc.runtime = rt;
  const a = opts.assignments ?? {};
  const assignments: Record<string, unknown> = {};
  if (a.model) assignments.model = a.model;
  if (a.adapters?.length) assignments.adapters = a.adapters;
  if (a.policy) assignments.policy = a.policy;
  if (a.indexes?.length) assignments.indexes = a.indexes;
  if (Object.keys(assignments).length > 0) doc.assignments = assignments;
  return doc;
}

function validate(doc: Record<string, unknown>): void {
  const result = siteFileSchema.safeParse(doc);
  if (result.success) return;
  const issue = result.error.issues[0];
  const path = (issue?.path ?? []) as PropertyKey[];
  const flag = flagFor(path);
  const example = REF_EXAMPLE[flag];
  const message = issue?.message ?? 'invalid';
  // A repeated name is the schema's one-version-per-name rule, not a malformed ref.
  const suggestion = !example
    ? undefined
    : message.includes('listed twice')
      ? `pass ${flag} once per name, with the version the site should run`
      : `pass a published ref of that kind, e.g. ${flag} ${example}`;
  throw new UserError(`${flag}: ${message}`, {
    code: 'E_SITE_INPUT',
    details: { field: path.map(String).join('.') },
    ...(suggestion ? { suggestion } : {}),
  });
}

function writeAtomically(path: string, text: string, exclusive: boolean): void {
  if (exclusive) {
    writeFileSync(path, text, { flag: 'wx' });
    return;
  }
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, text, { flag: 'w' });
  renameSync(tmp, path);
}

export function addSite(opts: AddSiteOptions): AddSiteResult {
  const show = opts.display ?? ((p: string) => p);
  if (!SITE_NAME_RE.test(opts.name)) {
    throw new UserError(`invalid site name "${opts.name}"`, {
      code: 'E_SITE_NAME',
      suggestion: 'use lower-case letters, digits and dashes (1-63 characters), e.g. store-001',
    });
  }
  const file = join(opts.sitesDir, `${opts.name}.yaml`);
  const keyPath = siteKeyPath(opts.dataDir);
  const exists = existsSync(file) || existsSync(join(opts.sitesDir, `${opts.name}.yml`));
  if (exists && !opts.rekey) {
    throw new UserError(`site ${opts.name} already exists (${show(file)})`, {
      code: 'E_SITE_EXISTS',
      suggestion: `edit ${show(file)} to change it, or pass --rekey to give it a new key`,
    });
  }
  if (!exists && opts.rekey) {
    throw new UserError(`--rekey: site ${opts.name} does not exist (${show(file)})`, {
      code: 'E_SITE_MISSING',
      suggestion: `run \`edgectl site add ${opts.name}\` without --rekey`,
    });
  }
  const kp = generateKeyPair();
  const publicKey = Buffer.from(kp.publicKey).toString('base64');

  if (opts.rekey) {
    const text = readFileSync(file, 'utf8');
    const doc = parseDocument(text);
    doc.set('publicKey', doc.createNode({ keyid: kp.keyid, key: publicKey }));
    validate(doc.toJS() as Record<string, unknown>);
    const keys = writeKeyPair(keyPath, kp, { force: true });
    writeAtomically(file, doc.toString(), false);
    return { name: opts.name, file, keyid: kp.keyid, publicKey, ...keyPaths(keys), rekeyed: true };
  }

  const doc = siteDocument(opts, kp);
  validate(doc);
  if (existsSync(keyPath) || existsSync(publicKeyFile(keyPath))) {
    throw new UserError(`a site key already exists at ${show(keyPath)}; refusing to overwrite it`, {
      code: 'E_KEY_EXISTS',
      suggestion: 'pass another --data-dir, or remove the old data directory if that site is gone',
    });
  }
  const keys = writeKeyPair(keyPath, kp);
  const header =
    `# Site ${opts.name}, declared with \`edgectl site add\`. Its secret key lives in the site's data\n` +
    `# directory (${show(keyPath)}), never in git; \`edgectl site add ${opts.name} --rekey\` replaces it.\n`;
  try {
    mkdirSync(opts.sitesDir, { recursive: true });
    writeAtomically(file, `${header}${stringify(doc)}`, true);
  } catch (err) {
    // Leave nothing behind: a key without a declaration would block the next attempt.
    rmSync(keys.secretPath, { force: true });
    rmSync(keys.publicPath, { force: true });
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new UserError(`site ${opts.name} already exists (${show(file)})`, { code: 'E_SITE_EXISTS' });
    }
    throw err;
  }
  return { name: opts.name, file, keyid: kp.keyid, publicKey, ...keyPaths(keys), rekeyed: false };
}

function keyPaths(k: { secretPath: string; publicPath: string }) {
  return { secretKeyPath: k.secretPath, publicKeyPath: k.publicPath };
}
