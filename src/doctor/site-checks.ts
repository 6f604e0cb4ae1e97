/**
 * The checks of `edgectl doctor` on this machine's sites and daemons: each site data directory
 * (site key mode, state readable, synced, current generation present and unchanged on disk, not
 * frozen or offline) and each daemon run file (the pid still names the process that wrote it).
 * Site data directories and run files are described in docs/running-sites.md.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { ProjectConfig } from '../config/project.js';
import { isSameProcess } from '../supervisor/process-identity.js';
import { readPidIdentity, readState, runFiles } from '../supervisor/run-files.js';
import { defaultSiteDataDir } from '../fleet/site-add.js';
import { checkSiteFiles, siteFilesIn } from '../fleet/site-files.js';
import { checkSecretKeyMode } from '../registry/keys.js';
import { siteDataPaths } from '../site/data-dir.js';
import { siteStatus } from '../site/status.js';
import { message, suggestionOf, type DoctorCheck } from './check.js';

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

export async function checkSites(cfg: ProjectConfig, now: Date): Promise<DoctorCheck[]> {
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

export function checkRunFiles(runDir: string, prefix = ''): DoctorCheck[] {
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
