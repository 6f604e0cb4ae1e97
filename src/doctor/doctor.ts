/**
 * `edgectl doctor`: checks that this machine and project can do their job, each check with a status
 * (ok, warn, fail), what it found, and the command that fixes it. Checks: the Node version, the
 * project configuration, the trust root (signature, expiry: warn under 30 days), the signing keys
 * (present, mode 0600, holding the role the trust root gives them), the registry (reachable,
 * initialised with this trust root, conditional writes enforced), the fleet log (fleet-chain.ts:
 * a head, gap or entry off the valid chain fails with its seq), the site data directories on this
 * machine (state readable, current generation present and unchanged, not frozen) and daemon run
 * files (stale pid files).
 *
 * The registry checks are in registry-checks.ts, the site and daemon checks in site-checks.ts.
 *
 * It reuses the modules the real commands use (config, trust, store, site status), so a doctor
 * "ok" means the same code path works. A check that cannot run because an earlier one failed says
 * so (skipped as warn) instead of failing twice for one cause. Nothing is written except the S3
 * conditional-write probe object, which `registry init` also writes and removes.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadProjectConfig, type ProjectConfig } from '../config/project.js';
import { checkSecretKeyMode, parseKeyText, SIGNING_KEY_ENV } from '../registry/keys.js';
import { readTrustRootEnvelope, verifySelfSignedRoot, type TrustRoot } from '../registry/trust.js';
import { checkKeyRotation } from './key-rotation.js';
import { message, suggestionOf, type CheckStatus, type DoctorCheck } from './check.js';
import { checkRegistry } from './registry-checks.js';
import { checkRunFiles, checkSites } from './site-checks.js';

export type { CheckStatus, DoctorCheck } from './check.js';

export interface DoctorReport {
  ok: boolean;
  counts: Record<CheckStatus, number>;
  root: string;
  registry: string;
  checks: DoctorCheck[];
}

export interface DoctorOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  registryFlag?: string;
  trustFlag?: string;
  now?: Date;
  /** Node version to judge (default: this process's). */
  nodeVersion?: string;
  /** Run directory of daemons (default .edgectl/run under the project root). */
  runDir?: string;
  /** Trust roots expiring sooner than this warn (default 30 days). */
  expiryWarnDays?: number;
}

const MIN_NODE_MAJOR = 22;
const DAY_MS = 86_400_000;

export function checkNode(version: string): DoctorCheck {
  const major = Number.parseInt(version.replace(/^v/, '').split('.')[0] ?? '', 10);
  if (Number.isInteger(major) && major >= MIN_NODE_MAJOR) {
    return { id: 'node', title: 'Node.js', status: 'ok', detail: `Node ${version} (>= ${MIN_NODE_MAJOR})` };
  }
  return {
    id: 'node',
    title: 'Node.js',
    status: 'fail',
    detail: `Node ${version}; edgectl needs Node ${MIN_NODE_MAJOR} or newer`,
    fix: 'run edgectl through `npx edgectl` or `npm run` in its package (they use the pinned Node 22), or install Node 22',
  };
}

function checkTrust(
  cfg: ProjectConfig,
  now: Date,
  warnDays: number,
): { check: DoctorCheck; root?: TrustRoot } {
  const base = { id: 'trust', title: 'Trust root' };
  if (!existsSync(cfg.trustPath)) {
    return {
      check: {
        ...base,
        status: 'fail',
        detail: `no trust root at ${cfg.trustPath}`,
        fix: 'edgectl trust init (with the root key of edgectl.yaml, or --key <root key>)',
      },
    };
  }
  let root: TrustRoot;
  try {
    root = verifySelfSignedRoot(readTrustRootEnvelope(cfg.trustPath), cfg.trustPath);
  } catch (err) {
    return {
      check: {
        ...base,
        status: 'fail',
        detail: message(err),
        fix: suggestionOf(err) ?? `restore ${cfg.trustPath} from git`,
      },
    };
  }
  const left = Date.parse(root.expires) - now.getTime();
  const days = Math.floor(left / DAY_MS);
  const where = `version ${root.version} at ${cfg.trustPath}`;
  if (left <= 0) {
    return {
      root,
      check: {
        ...base,
        status: 'fail',
        detail: `${where} expired at ${root.expires}: nothing new installs anywhere`,
        fix: renewFix(cfg),
      },
    };
  }
  if (days < warnDays) {
    return {
      root,
      check: {
        ...base,
        status: 'warn',
        detail: `${where} expires in ${days} day(s) (${root.expires})`,
        fix: renewFix(cfg),
      },
    };
  }
  return {
    root,
    check: { ...base, status: 'ok', detail: `${where}, expires in ${days} days (${root.expires})` },
  };
}

function renewFix(cfg: ProjectConfig): string {
  return `edgectl trust rotate --key ${cfg.keys.root ?? '<root key>'} --expires 365d, then edgectl registry init`;
}

const ROLE_OF_KEY = { root: 'root', artifacts: 'artifacts', fleet: 'fleet' } as const;

function checkKeys(cfg: ProjectConfig, env: NodeJS.ProcessEnv, root: TrustRoot | undefined): DoctorCheck[] {
  const checks: DoctorCheck[] = [];
  for (const slot of ['root', 'artifacts', 'fleet'] as const) {
    const base = { id: `keys.${slot}`, title: `Key: ${slot}` };
    const path = cfg.keys[slot];
    const purpose = { root: 'signs trust roots', artifacts: 'signs artifacts', fleet: 'signs the fleet log' }[
      slot
    ];
    if (!path) {
      checks.push({
        ...base,
        status: env[SIGNING_KEY_ENV] ? 'ok' : 'warn',
        detail: env[SIGNING_KEY_ENV]
          ? `not configured; ${SIGNING_KEY_ENV} is set`
          : `keys.${slot} is not set in edgectl.yaml (${purpose})`,
        ...(env[SIGNING_KEY_ENV]
          ? {}
          : { fix: `set keys.${slot} in edgectl.yaml, or pass --key / ${SIGNING_KEY_ENV}` }),
      });
      continue;
    }
    if (!existsSync(path)) {
      // The root key is meant to be kept offline, and CI machines hold only the keys they use.
      checks.push({
        ...base,
        status: 'warn',
        detail: `${path} is not on this machine (${purpose}; fine where that is not done)`,
        fix: `edgectl keys generate --out ${path} (a new key must then enter the trust root: edgectl trust rotate)`,
      });
      continue;
    }
    let keyid: string;
    try {
      checkSecretKeyMode(path);
      const parsed = parseKeyText(readFileSync(path, 'utf8'), path);
      if (!parsed.secretKey) throw new Error(`${path} holds only a public key`);
      keyid = parsed.keyid;
    } catch (err) {
      checks.push({
        ...base,
        status: 'fail',
        detail: message(err),
        fix: suggestionOf(err) ?? `edgectl keys generate --out ${path}`,
      });
      continue;
    }
    const role = root?.roles[ROLE_OF_KEY[slot]];
    if (role && !role.keyids.includes(keyid)) {
      checks.push({
        ...base,
        status: 'fail',
        detail: `${path} (${keyid}) is not a ${slot} key of the trust root; what it signs is refused`,
        fix: `edgectl trust rotate to add it to the ${slot} role, or point keys.${slot} at the right key`,
      });
      continue;
    }
    checks.push({
      ...base,
      status: 'ok',
      detail: `${path} (${keyid}, mode 0600${role ? `, in role ${slot}` : ''})`,
    });
  }
  return checks;
}

export async function runDoctor(opts: DoctorOptions = {}): Promise<DoctorReport> {
  const now = opts.now ?? new Date();
  const env = opts.env ?? process.env;
  const checks: DoctorCheck[] = [checkNode(opts.nodeVersion ?? process.version)];

  let cfg: ProjectConfig;
  try {
    cfg = loadProjectConfig({
      cwd: opts.cwd,
      env,
      registryFlag: opts.registryFlag,
      trustFlag: opts.trustFlag,
    });
  } catch (err) {
    checks.push({
      id: 'config',
      title: 'edgectl.yaml',
      status: 'fail',
      detail: message(err),
      fix: suggestionOf(err) ?? 'fix edgectl.yaml (fields: registry, trust, sites, keys, singleWriter)',
    });
    return report(checks, opts.cwd ?? process.cwd(), '');
  }
  checks.push(
    cfg.file
      ? {
          id: 'config',
          title: 'edgectl.yaml',
          status: 'ok',
          detail: `${cfg.file} (registry from ${cfg.registrySource})`,
        }
      : {
          id: 'config',
          title: 'edgectl.yaml',
          status: 'warn',
          detail: `no edgectl.yaml in ${cfg.root} or above; using defaults`,
          fix: 'edgectl init (or write edgectl.yaml: registry, trust, keys)',
        },
  );

  const trust = checkTrust(cfg, now, opts.expiryWarnDays ?? 30);
  checks.push(trust.check);
  checks.push(...checkKeys(cfg, env, trust.root));
  const trustOk = trust.root !== undefined && trust.check.status !== 'fail';
  const registry = await checkRegistry(cfg, trustOk, now, env);
  checks.push(...registry);
  // Signatures across key rotations (key-rotation.ts): only against a registry that checked out
  // (a broken fleet log chain is its own finding, and says nothing about the store).
  if (trustOk && registry.every((c) => c.status !== 'fail' || c.id === 'fleet.chain')) {
    checks.push(...(await checkKeyRotation(cfg, env, now)));
  }
  checks.push(...(await checkSites(cfg, now)));
  checks.push(...checkRunFiles(opts.runDir ?? join(cfg.root, '.edgectl', 'run')));
  return report(checks, cfg.root, cfg.registry);
}

function report(checks: DoctorCheck[], root: string, registry: string): DoctorReport {
  const counts: Record<CheckStatus, number> = { ok: 0, warn: 0, fail: 0 };
  for (const c of checks) counts[c.status]++;
  return { ok: counts.fail === 0, counts, root, registry, checks };
}
