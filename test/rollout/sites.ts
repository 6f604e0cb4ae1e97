/**
 * A fleet of real site data directories for rollout tests and the rollout benchmark: real
 * artifacts published through the publish path (the committed default policy, a tiny real ONNX
 * draft model, PEFT adapters `support` 1.0.0 / 1.1.0 / 1.2.0 with different bytes), N sites
 * declared with their own keys, and one real `SyncAgent` per site syncing its data directory in a
 * loop. Each agent records when `current` switched and to which adapter.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { memoryIo } from '../../src/foundation/output.js';
import { silentProgress } from '../../src/artifact/progress.js';
import { publishArtifact } from '../../src/artifact/publish.js';
import { applyFleet } from '../../src/fleet/apply.js';
import { encodeEnvelope } from '../../src/registry/envelope.js';
import { generateKeyPair, writeKeyPair, type KeyPair } from '../../src/registry/keys.js';
import { trustRootKey } from '../../src/registry/layout.js';
import type { Store } from '../../src/registry/store.js';
import { SyncAgent, currentGeneration } from '../../src/site/agent.js';
import type { FeedbackRefs } from '../../src/feedback/report.js';
import { seededBytes } from '../artifact/fixtures.js';
import { makeTrust, siteYaml, writeSite, type TestTrust } from '../fleet/registry-fixture.js';
import { POLICY_DIR, adapterDir, modelDir, tempDir } from '../site/fixtures.js';

export interface Switch {
  site: string;
  at: number;
  adapter: string | undefined;
  /** Duration of the sync that switched, ms. */
  syncMs: number;
}

export interface SiteFleet {
  store: Store;
  t: TestTrust;
  dir: string;
  trustPath: string;
  sites: string[];
  keys: Map<string, KeyPair>;
  digests: Record<string, string>;
  switches: Switch[];
  /** Syncs that changed `current`: site, time and registry bytes received. */
  changes: { site: string; at: number; bytes: number }[];
  /** Starts a sync loop per site (every `intervalMs`); returns a stop function. */
  startAgents(intervalMs: number): () => Promise<void>;
  /** The adapter ref of the generation `current` points to. */
  currentAdapter(site: string): Promise<string | undefined>;
  /** What the site serves now (its current generation): the feedback context of its requests. */
  context(site: string): Promise<{ fleetSeq: number; refs: FeedbackRefs; generation: string } | undefined>;
}

export async function siteFleet(store: Store, n: number): Promise<SiteFleet> {
  const dir = tempDir('edgectl-rollout-sites-');
  const t = makeTrust();
  const trustPath = join(dir, 'trust-root.json');
  writeFileSync(trustPath, encodeEnvelope(t.envelope));
  await store.putIfAbsent(trustRootKey(1), encodeEnvelope(t.envelope));
  const src = join(dir, 'src');
  mkdirSync(src);
  const digests: Record<string, string> = {};
  const publish = async (d: string) => {
    const r = await publishArtifact({
      dir: d,
      store,
      signer: t.artifacts,
      trust: t.trust,
      io: memoryIo(),
      progress: silentProgress,
    });
    digests[r.ref] = r.manifestDigest;
  };
  await publish(POLICY_DIR);
  await publish(modelDir(src, '1.0.0', seededBytes(64 * 1024, 11)));
  for (const [version, seed] of [
    ['1.0.0', 3],
    ['1.1.0', 4],
    ['1.2.0', 5],
  ] as const) {
    await publish(adapterDir(src, { version, base: 'model/draft@1.0.0', bytes: 256 * 1024, seed }));
  }
  const sitesDir = join(dir, 'sites');
  const sites: string[] = [];
  const keys = new Map<string, KeyPair>();
  for (let i = 1; i <= n; i++) {
    const name = `store-${String(i).padStart(3, '0')}`;
    const kp = generateKeyPair();
    keys.set(name, kp);
    sites.push(name);
    writeKeyPair(join(dir, 'data', name, 'site.key'), kp);
    writeSite(
      sitesDir,
      name,
      siteYaml(name, {
        key: Buffer.from(kp.publicKey).toString('base64'),
        labels: { tier: 'branch' },
        model: 'model/draft@1.0.0',
        adapters: ['adapter/support@1.0.0'],
        policy: 'policy/default@1.0.0',
      }),
    );
  }
  await applyFleet({ store, trust: t.trust, signer: t.fleet, sitesDir, clock: () => new Date() });
  const switches: Switch[] = [];
  const changes: SiteFleet['changes'] = [];
  const adapterOf = async (site: string) =>
    (await currentGeneration(join(dir, 'data', site)))?.info.artifacts.find((a) =>
      a.ref.startsWith('adapter/'),
    )?.ref;
  const fleet: SiteFleet = {
    store,
    t,
    dir,
    trustPath,
    sites,
    keys,
    digests,
    switches,
    changes,
    currentAdapter: adapterOf,
    async context(site) {
      const g = await currentGeneration(join(dir, 'data', site));
      if (!g) return undefined;
      const pick = (slot: string) =>
        g.info.artifacts
          .filter((a) => a.slot === slot)
          .map((a) => ({ ref: a.ref, manifestDigest: a.manifestDigest }));
      const model = pick('model')[0];
      const policy = pick('policy')[0];
      return {
        fleetSeq: g.info.seq,
        generation: g.id,
        refs: { ...(model ? { model } : {}), adapters: pick('adapter'), ...(policy ? { policy } : {}) },
      };
    },
    startAgents(intervalMs) {
      const controller = new AbortController();
      const loops = sites.map((site) => {
        const agent = new SyncAgent({
          site,
          dataDir: join(dir, 'data', site),
          store,
          projectTrustPath: trustPath,
        });
        let started = 0;
        const sync = agent.syncOnce.bind(agent);
        agent.syncOnce = () => {
          started = performance.now();
          return sync();
        };
        agent.on('sync', (r) => {
          if (r.changed) changes.push({ site, at: performance.now(), bytes: r.bytesFetched });
        });
        agent.on('switched', () => {
          const at = performance.now();
          void adapterOf(site).then((adapter) => switches.push({ site, at, adapter, syncMs: at - started }));
        });
        return agent.runSyncLoop({ interval: intervalMs, signal: controller.signal });
      });
      return async () => {
        controller.abort();
        await Promise.all(loops);
      };
    },
  };
  return fleet;
}
