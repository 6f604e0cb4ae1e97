/**
 * A real site for daemon tests and the site benchmark: a registry (any Store) with a trust root,
 * the committed fixture artifacts published through the real publish path (the ONNX draft model
 * `artifacts/models/draft`, the LoRA adapter `artifacts/adapters/support` as `adapter/support@1.0.0`
 * and, same bytes, `@1.1.0`, the bad adapter as `@1.2.0`, and `policy/default@1.0.0`), the site
 * declared with runtime settings (verifier URL) and applied, and a project directory (edgectl.yaml,
 * pinned trust root) for running the CLI. The site's data directory holds its real key; the site
 * is not synced (the daemon's first start syncs it).
 */
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { applyFleet, type ApplyFleetResult } from '../../../src/fleet/apply.js';
import type { Store } from '../../../src/registry/store.js';
import { REPO_ROOT } from '../../helpers/cli.js';
import { siteYaml, writeSite } from '../../fleet/registry-fixture.js';
import { POLICY_DIR, siteWorld, tempDir, type SiteWorld } from '../../site/fixtures.js';

export const DRAFT_DIR = join(REPO_ROOT, 'artifacts/models/draft');
export const VERIFIER_DIR = join(REPO_ROOT, 'artifacts/models/verifier');
export const SUPPORT_DIR = join(REPO_ROOT, 'artifacts/adapters/support');
export const SUPPORT_BAD_DIR = join(REPO_ROOT, 'artifacts/adapters/support-bad');

export const REFS = {
  model: 'model/draft@1.0.0',
  policy: 'policy/default@1.0.0',
  support100: 'adapter/support@1.0.0',
  support110: 'adapter/support@1.1.0',
  support120: 'adapter/support@1.2.0',
} as const;

/** A copy of an adapter directory published under another name/version. */
function adapterVersion(src: string, name: string, version: string): string {
  const dir = join(tempDir('edgectl-daemon-src-'), `${name}-${version}`);
  cpSync(src, dir, { recursive: true });
  const yaml = readFileSync(join(dir, 'artifact.yaml'), 'utf8')
    .replace(/^name: .*$/m, `name: ${name}`)
    .replace(/^version: .*$/m, `version: ${version}`);
  writeFileSync(join(dir, 'artifact.yaml'), yaml);
  return dir;
}

export interface DaemonWorld extends SiteWorld {
  /** Project directory: edgectl.yaml (registry, trust) and sites/. */
  project: string;
  /** Declares the site with these adapters (and runtime settings) and applies it. */
  declare(a: {
    adapters: string[];
    verifier?: string;
    /** `runtime.cloud` lines (YAML under `cloud:`, indented four spaces). */
    cloud?: string;
    policy?: boolean;
    /** Another published policy than REFS.policy. */
    policyRef?: string;
    /** `assignments.indexes`. */
    indexes?: string[];
    labels?: Record<string, string>;
  }): Promise<ApplyFleetResult>;
  /** The registry's directory (fs backend only). */
  registryDir: string | undefined;
}

export async function daemonWorld(store: Store, opts: { publishExtra?: boolean } = {}): Promise<DaemonWorld> {
  const w = await siteWorld(store);
  await w.publish(POLICY_DIR);
  await w.publish(DRAFT_DIR);
  await w.publish(SUPPORT_DIR);
  if (opts.publishExtra !== false) {
    await w.publish(adapterVersion(SUPPORT_DIR, 'support', '1.1.0'));
    await w.publish(adapterVersion(SUPPORT_BAD_DIR, 'support', '1.2.0'));
  }
  // siteWorld keeps the sites and the pinned trust root in its directory: make it the project.
  writeFileSync(join(w.dir, 'edgectl.yaml'), `registry: ${store.url}\ntrust: trust-root.json\n`);
  const registryDir = store.url.startsWith('file:') ? store.url.slice('file:'.length) : undefined;
  return {
    ...w,
    project: w.dir,
    registryDir,
    async declare(a) {
      const yaml = siteYaml(w.site, {
        key: Buffer.from(w.siteKey.publicKey).toString('base64'),
        model: REFS.model,
        adapters: a.adapters,
        policy: a.policyRef ?? REFS.policy,
        ...(a.labels ? { labels: a.labels } : {}),
        // `extra` follows the assignments block: indexes first (still in it), then runtime.
        extra: [
          ...(a.indexes?.length ? ['  indexes:', ...a.indexes.map((r) => `    - ${r}`)] : []),
          ...(a.verifier || a.cloud ? ['runtime:'] : []),
          ...(a.verifier ? [`  verifier: ${a.verifier}`] : []),
          ...(a.cloud ? ['  cloud:', a.cloud.replace(/\n$/, '')] : []),
        ].join('\n'),
      });
      const lines =
        a.policy === false ? yaml.split('\n').filter((l) => !l.startsWith('  policy:')) : yaml.split('\n');
      writeSite(w.sitesDir, w.site, lines.join('\n'));
      return applyFleet({
        store,
        trust: w.t.trust,
        signer: w.t.fleet,
        sitesDir: w.sitesDir,
        clock: () => new Date(),
      });
    },
  };
}
