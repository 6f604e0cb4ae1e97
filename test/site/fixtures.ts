/**
 * A real fleet for site sync tests and the sync benchmark: a registry (any Store) with a trust root
 * that separates root, artifacts and fleet keys (trust/root/1.json in the store, the pinned copy on
 * disk), artifacts published through the real publish path (a tiny real ONNX draft model with
 * seeded weight bytes, a PEFT adapter of any size, the committed `artifacts/policies/default`
 * policy or a variant of it), site declarations in a sites directory, and `site apply` through
 * applyFleet. The site's data directory holds its real site key.
 */
import { cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { memoryIo } from '../../src/foundation/output.js';
import { silentProgress } from '../../src/artifact/progress.js';
import { publishArtifact, type PublishResult } from '../../src/artifact/publish.js';
import { applyFleet, type ApplyFleetResult } from '../../src/fleet/apply.js';
import { encodeEnvelope } from '../../src/registry/envelope.js';
import { generateKeyPair, writeKeyPair, type KeyPair } from '../../src/registry/keys.js';
import { trustRootKey } from '../../src/registry/layout.js';
import type { Store } from '../../src/registry/store.js';
import { syncOnce, type SyncOptions, type SyncResult } from '../../src/site/sync.js';
import { makeModelDir, seededBytes } from '../artifact/fixtures.js';
import { REPO_ROOT } from '../helpers/cli.js';
import { makeTrust, siteYaml, writeSite, type TestTrust } from '../fleet/registry-fixture.js';

export const POLICY_DIR = join(REPO_ROOT, 'artifacts/policies/default');

export function tempDir(prefix = 'edgectl-site-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** A copy of the committed default policy under another version (a changed description). */
export function policyVariant(parent: string, version: string): string {
  const dir = join(parent, `policy-${version}`);
  cpSync(POLICY_DIR, dir, { recursive: true });
  writeFileSync(join(dir, 'artifact.yaml'), `kind: policy\nname: default\nversion: ${version}\n`);
  const yaml = readFileSync(join(dir, 'policy.yaml'), 'utf8').replace(
    /^description: .*$/m,
    `description: variant ${version}`,
  );
  writeFileSync(join(dir, 'policy.yaml'), yaml);
  return dir;
}

/** A draft model that accepts LoRA on q_proj, with `weightBytes` seeded bytes in weights.bin. */
export function modelDir(parent: string, version: string, weights: Buffer): string {
  return makeModelDir(parent, {
    version,
    weights,
    loraModules: ['q_proj'],
    lora: { target_modules: ['q_proj'], max_rank: 8 },
  });
}

/** A PEFT adapter (rank 4, q_proj, 2 layers) of about `bytes` bytes for `base`. */
export function adapterDir(
  parent: string,
  opts: { name?: string; version: string; base: string; bytes?: number; seed?: number },
): string {
  const name = opts.name ?? 'support';
  const dir = join(parent, `adapter-${name}-${opts.version}-${opts.seed ?? 1}`);
  mkdirSync(dir, { recursive: true });
  const r = 4;
  // Each of the 4 matrices is [r, h] or [h, r] of F32: 16 * r * h bytes in all.
  const h = Math.max(4, Math.ceil((opts.bytes ?? 4096) / (16 * r)));
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let offset = 0;
  for (let layer = 0; layer < 2; layer++) {
    for (const [ab, shape] of [
      ['A', [r, h]],
      ['B', [h, r]],
    ] as const) {
      const size = shape[0] * shape[1] * 4;
      header[`base_model.model.model.layers.${layer}.self_attn.q_proj.lora_${ab}.weight`] = {
        dtype: 'F32',
        shape,
        data_offsets: [offset, offset + size],
      };
      offset += size;
    }
  }
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  writeFileSync(
    join(dir, 'adapter_model.safetensors'),
    Buffer.concat([len, json, seededBytes(offset, opts.seed ?? 1)]),
  );
  writeFileSync(
    join(dir, 'adapter_config.json'),
    JSON.stringify({
      peft_type: 'LORA',
      r,
      lora_alpha: 8,
      target_modules: ['q_proj'],
      base_model_name_or_path: 'hf/x',
    }),
  );
  writeFileSync(
    join(dir, 'artifact.yaml'),
    `kind: adapter\nname: ${name}\nversion: ${opts.version}\nbase: ${opts.base}\n`,
  );
  return dir;
}

export interface Assignment {
  model?: string;
  adapters?: string[];
  policy?: string;
  indexes?: string[];
}

export interface SiteWorld {
  store: Store;
  t: TestTrust;
  /** Temp root holding the pinned trust root, sites/, sources and data directories. */
  dir: string;
  trustPath: string;
  sitesDir: string;
  site: string;
  dataDir: string;
  siteKey: KeyPair;
  publish(dir: string): Promise<PublishResult>;
  /** Writes sites/<site>.yaml with these assignments and runs `site apply`. */
  assign(
    a: Assignment,
    opts?: { now?: Date; headTtlMs?: number; snapshotEvery?: number },
  ): Promise<ApplyFleetResult>;
  sync(extra?: Partial<SyncOptions>): Promise<SyncResult>;
}

/** Sets up trust, a site key and an empty sites directory on `store`. */
export async function siteWorld(store: Store, site = 'store-001'): Promise<SiteWorld> {
  const dir = tempDir();
  const t = makeTrust();
  const trustPath = join(dir, 'trust-root.json');
  writeFileSync(trustPath, encodeEnvelope(t.envelope));
  await store.putIfAbsent(trustRootKey(1), encodeEnvelope(t.envelope));
  const sitesDir = join(dir, 'sites');
  const dataDir = join(dir, 'data', site);
  const siteKey = generateKeyPair();
  writeKeyPair(join(dataDir, 'site.key'), siteKey);
  const world: SiteWorld = {
    store,
    t,
    dir,
    trustPath,
    sitesDir,
    site,
    dataDir,
    siteKey,
    publish: (src) =>
      publishArtifact({
        dir: src,
        store,
        signer: t.artifacts,
        trust: t.trust,
        io: memoryIo(),
        progress: silentProgress,
      }),
    async assign(a, opts = {}) {
      const yaml = siteYaml(site, {
        key: Buffer.from(siteKey.publicKey).toString('base64'),
        ...(a.model ? { model: a.model } : {}),
        adapters: a.adapters ?? [],
        ...(a.policy ? { policy: a.policy } : {}),
        ...(a.indexes?.length
          ? { extra: `  indexes:\n${a.indexes.map((r) => `    - ${r}`).join('\n')}` }
          : {}),
      });
      // siteYaml always writes model and policy lines; drop the ones not assigned.
      const lines = yaml
        .split('\n')
        .filter((l) => (a.model || !l.startsWith('  model:')) && (a.policy || !l.startsWith('  policy:')));
      writeSite(sitesDir, site, lines.join('\n'));
      return applyFleet({
        store,
        trust: t.trust,
        signer: t.fleet,
        sitesDir,
        clock: () => opts.now ?? new Date(),
        ...(opts.headTtlMs !== undefined ? { headTtlMs: opts.headTtlMs } : {}),
        ...(opts.snapshotEvery !== undefined ? { snapshotEvery: opts.snapshotEvery } : {}),
      });
    },
    sync: (extra = {}) => syncOnce({ site, dataDir, store, projectTrustPath: trustPath, ...extra }),
  };
  return world;
}

/** Publishes policy 1.0.0 (the committed one), model 1.0.0 and adapter support 1.0.0; returns refs. */
export async function publishBasics(
  w: SiteWorld,
  weightBytes = 256 * 1024,
): Promise<Required<Omit<Assignment, 'indexes'>>> {
  const src = tempDir('edgectl-site-src-');
  await w.publish(POLICY_DIR);
  await w.publish(modelDir(src, '1.0.0', seededBytes(weightBytes, 11)));
  await w.publish(
    adapterDir(src, { version: '1.0.0', base: 'model/draft@1.0.0', bytes: 64 * 1024, seed: 3 }),
  );
  return { model: 'model/draft@1.0.0', adapters: ['adapter/support@1.0.0'], policy: 'policy/default@1.0.0' };
}
