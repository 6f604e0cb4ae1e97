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
 * It reuses the modules the real commands use (config, trust, store, site status), so a doctor
 * "ok" means the same code path works. A check that cannot run because an earlier one failed says
 * so (skipped as warn) instead of failing twice for one cause. Nothing is written except the S3
 * conditional-write probe object, which `registry init` also writes and removes.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { isEdgectlError } from '../cli/errors.js';
import { loadProjectConfig, type ProjectConfig } from '../config/project.js';
import { isSameProcess } from '../daemon/process-identity.js';
import { readPidIdentity, readState, runFiles } from '../daemon/run-files.js';
import { defaultSiteDataDir } from '../fleet/site-add.js';
import { checkSiteFiles, siteFilesIn } from '../fleet/site-schema.js';
import { checkSecretKeyMode, parseKeyText, SIGNING_KEY_ENV } from '../registry/keys.js';
import {
  conditionalWritesEnforced,
  describeConditionalWrites,
  probeConditionalWrites,
  type ConditionalWriteProbeResult,
} from '../registry/conditional-writes.js';
import { openStore } from '../registry/open-store.js';
import type { Store } from '../registry/store.js';
import { decodeEnvelope } from '../registry/envelope.js';
import { trustRootKey } from '../registry/layout.js';
import {
  readTrustRootEnvelope,
  verifySelfSignedRoot,
  walkRegistryTrust,
  type TrustRoot,
} from '../registry/trust.js';
import { attachPastRoots } from '../registry/trust-history.js';
import { siteDataPaths } from '../site/data-dir.js';
import { checkKeyRotation } from './key-rotation.js';
import { siteStatus } from '../site/status.js';
import { checkFleetChain } from './fleet-chain.js';

export type CheckStatus = 'ok' | 'warn' | 'fail';

export interface DoctorCheck {
  /** Stable id, e.g. `node`, `keys.fleet`, `site.store-001`. */
  id: string;
  title: string;
  status: CheckStatus;
  detail: string;
  /** What to do about a warn or fail. */
  fix?: string;
}

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

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function suggestionOf(err: unknown): string | undefined {
  return isEdgectlError(err) ? err.suggestion : undefined;
}

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

async function checkRegistry(
  cfg: ProjectConfig,
  trustOk: boolean,
  now: Date,
  env: NodeJS.ProcessEnv,
): Promise<DoctorCheck[]> {
  const base = { id: 'registry', title: 'Registry' };
  if (cfg.registry.startsWith('file:')) {
    const dir = cfg.registry.slice('file:'.length);
    if (!existsSync(dir)) {
      return [
        {
          ...base,
          status: 'fail',
          detail: `${cfg.registry}: the directory does not exist`,
          fix: 'edgectl registry init',
        },
      ];
    }
  }
  let store: Store;
  try {
    store = await openStore(cfg.registry, { s3: { env } });
  } catch (err) {
    return [
      { ...base, status: 'fail', detail: message(err), fix: suggestionOf(err) ?? 'check the registry URL' },
    ];
  }
  try {
    const checks: DoctorCheck[] = [];
    if (!trustOk) {
      try {
        await store.list('trust/root/');
        checks.push({
          ...base,
          status: 'warn',
          detail: `${cfg.registry} is reachable; its trust chain was not checked (no valid local trust root)`,
          fix: 'fix the trust root first',
        });
      } catch (err) {
        checks.push({ ...base, status: 'fail', detail: message(err), fix: registryFix(cfg) });
      }
    } else {
      try {
        const local = readTrustRootEnvelope(cfg.trustPath);
        const version = verifySelfSignedRoot(local, cfg.trustPath).version;
        // The registry must hold this very root: walking only looks at newer versions.
        const key = trustRootKey(version);
        const obj = await store.get(key);
        if (!obj) {
          checks.push({
            ...base,
            status: 'fail',
            detail: `${cfg.registry} is reachable but not initialised with this trust root (${key} is missing)`,
            fix: 'edgectl registry init',
          });
          return checks;
        }
        if (decodeEnvelope(obj.body, key).payload !== local.payload) {
          checks.push({
            ...base,
            status: 'fail',
            detail: `${cfg.registry} holds a different trust root version ${version}: it belongs to another project`,
            fix: 'use the registry this trust root was published to, or another registry (then edgectl registry init)',
          });
          return checks;
        }
        const walked = await walkRegistryTrust(store, local, now);
        const newer =
          walked.root.version > version
            ? ` (the registry has newer version ${walked.root.version}; commit it to ${cfg.trustPath})`
            : '';
        checks.push({
          ...base,
          status: 'ok',
          detail: `${cfg.registry} is reachable; trust root version ${walked.root.version} verified from the local root${newer}`,
        });
        // With the earlier roots: entries signed before a fleet-key rotation still chain.
        checks.push(await checkFleetChain(store, await attachPastRoots(store, walked), now));
      } catch (err) {
        checks.push({
          ...base,
          status: 'fail',
          detail: message(err),
          fix: suggestionOf(err) ?? registryFix(cfg),
        });
        return checks;
      }
    }
    checks.push(await checkConditionalWrites(store, cfg));
    return checks;
  } finally {
    await store.close().catch(() => undefined);
  }
}

function registryFix(cfg: ProjectConfig): string {
  return cfg.registry.startsWith('s3://')
    ? 'check AWS_REGION, AWS_ENDPOINT_URL_S3 (MinIO, R2), credentials and the bucket name; then edgectl registry init'
    : 'edgectl registry init';
}

async function checkConditionalWrites(store: Store, cfg: ProjectConfig): Promise<DoctorCheck> {
  const base = { id: 'registry.conditional-writes', title: 'Conditional writes' };
  let probe: ConditionalWriteProbeResult;
  try {
    probe = await probeConditionalWrites(store);
  } catch (err) {
    return {
      ...base,
      status: 'warn',
      detail: `could not probe (${message(err)}); read-only credentials cannot publish or apply either`,
      fix: registryFix(cfg),
    };
  }
  const detail = describeConditionalWrites(probe);
  if (conditionalWritesEnforced(probe)) return { ...base, status: 'ok', detail };
  const broken = probe.createOnly === 'broken' || probe.compareAndSwap === 'broken';
  return broken
    ? {
        ...base,
        status: 'fail',
        detail: `${detail}: the server refuses writes whose precondition holds, so publish or site apply fail`,
        fix: 'report the answers above to the S3 server vendor, or use a store that enforces If-None-Match/If-Match (AWS S3, Ceph RGW, recent MinIO, R2)',
      }
    : {
        ...base,
        status: 'warn',
        detail: `${detail}: concurrent publish or site apply runs can overwrite each other`,
        fix: 'fleet writes are refused here: use --single-writer (or singleWriter: true in edgectl.yaml) with one writer at a time, or a store that enforces If-None-Match/If-Match (AWS S3, Ceph RGW, recent MinIO, R2)',
      };
}

/** Sites to look at: declared ones and any data directory under .edgectl/sites. */
function siteNames(cfg: ProjectConfig): string[] {
  const names = new Set<string>();
  const { sites } = checkSiteFiles(siteFilesIn(cfg.sitesDir));
  for (const s of sites) names.add(s.declaration.name);
  const local = join(cfg.root, '.edgectl', 'sites');
  if (existsSync(local)) {
    for (const n of readdirSync(local)) if (statSync(join(local, n)).isDirectory()) names.add(n);
  }
  return [...names].sort();
}

async function checkSites(cfg: ProjectConfig, now: Date): Promise<DoctorCheck[]> {
  const checks: DoctorCheck[] = [];
  for (const name of siteNames(cfg)) {
    const dataDir = defaultSiteDataDir(cfg.root, name);
    if (!existsSync(dataDir)) continue; // declared, but not provisioned on this machine
    const base = { id: `site.${name}`, title: `Site ${name}` };
    const paths = siteDataPaths(dataDir);
    checks.push(...checkRunFiles(join(dataDir, 'run'), `${name}/`));
    if (existsSync(paths.siteKey)) {
      try {
        checkSecretKeyMode(paths.siteKey);
      } catch (err) {
        checks.push({ ...base, status: 'fail', detail: message(err), fix: suggestionOf(err) ?? '' });
        continue;
      }
    }
    try {
      const s = await siteStatus({ site: name, dataDir, now });
      if (!s.synced) {
        checks.push({
          ...base,
          status: 'warn',
          detail: `${dataDir}: not synced yet`,
          fix: `edgectl site sync ${name} --once`,
        });
        continue;
      }
      const drift = s.drift;
      const damaged = drift ? drift.changed.length + drift.missing.length : 0;
      if (!s.generation) {
        checks.push({
          ...base,
          status: s.assignedGeneration ? 'fail' : 'ok',
          detail: s.assignedGeneration
            ? `seq ${s.seq}: no current generation installed`
            : `seq ${s.seq}: nothing assigned`,
          ...(s.assignedGeneration ? { fix: `edgectl site sync ${name} --once` } : {}),
        });
      } else if (damaged > 0 && drift) {
        const files = [...drift.changed, ...drift.missing].slice(0, 3).join(', ');
        checks.push({
          ...base,
          status: 'fail',
          detail: `generation ${s.generation.slice(0, 12)}: ${damaged} file(s) changed or missing on disk (${files})`,
          fix: `edgectl site sync ${name} --once (repairs drift from the chunk cache)`,
        });
      } else if (s.frozen) {
        checks.push({
          ...base,
          status: 'warn',
          detail: `seq ${s.seq}: frozen (the fleet head expired); serving generation ${s.generation.slice(0, 12)}, installing nothing new`,
          fix: 'edgectl site apply (re-signs the head), then edgectl site sync',
        });
      } else if (s.offline) {
        checks.push({
          ...base,
          status: 'warn',
          detail: `seq ${s.seq}: the last sync could not reach the registry; serving generation ${s.generation.slice(0, 12)}`,
          fix: 'check the registry settings, then edgectl site sync --once',
        });
      } else {
        checks.push({
          ...base,
          status: 'ok',
          detail: `seq ${s.seq}, generation ${s.generation.slice(0, 12)} (${drift?.checked ?? 0} files unchanged)${s.upToDate ? '' : ', behind the assignment'}`,
        });
      }
    } catch (err) {
      checks.push({
        ...base,
        status: 'fail',
        detail: message(err),
        fix: suggestionOf(err) ?? `edgectl site sync ${name} --once rebuilds the state from the registry`,
      });
    }
  }
  return checks;
}

function checkRunFiles(runDir: string, prefix = ''): DoctorCheck[] {
  if (!existsSync(runDir)) return [];
  const checks: DoctorCheck[] = [];
  for (const file of readdirSync(runDir)
    .filter((n) => n.endsWith('.pid'))
    .sort()) {
    const name = file.slice(0, -'.pid'.length);
    const files = runFiles(runDir, name);
    const holder = readPidIdentity(files);
    const pid = holder?.pid;
    const state = readState(files);
    const label = `${prefix}${name}`;
    const base = { id: `daemon.${label}`, title: `Daemon ${label}` };
    if (pid !== undefined && isSameProcess(pid, holder?.startTime, holder?.command)) {
      checks.push({
        ...base,
        status: 'ok',
        detail: `running (pid ${pid}${state?.url ? `, ${state.url}` : ''})`,
      });
    } else {
      checks.push({
        ...base,
        status: 'warn',
        detail: `stale pid file ${files.pidFile} (pid ${pid ?? '?'} is not ${name})`,
        fix: `the next start replaces it; or remove ${files.pidFile}`,
      });
    }
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
