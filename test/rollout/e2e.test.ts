/**
 * End to end with real processes: a verifier (`edgectl verifier up`), three site daemons
 * (`edgectl site up`, real ONNX draft model, LoRA adapters, speculative decoding against the
 * verifier, signed feedback every second), traffic sent to every site by the OpenAI client, and
 * `edgectl rollout canary --wait` as CI runs it. `adapter/support@1.1.0` (the good adapter's bytes)
 * is promoted (exit 0); then `adapter/support@1.2.0` (the bad adapter) is rolled back (exit 5) and
 * every canary site is back on its previous generation within one sync interval. The log's event
 * sequence is asserted for both.
 */
import { cpSync, lstatSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { memoryIo } from '../../src/cli/output.js';
import { silentProgress } from '../../src/artifact/progress.js';
import { publishArtifact } from '../../src/artifact/publish.js';
import { isAlive } from '../../src/daemon/process-identity.js';
import { applyFleet } from '../../src/fleet/apply.js';
import { encodeEnvelope } from '../../src/registry/envelope.js';
import { FsStore } from '../../src/registry/fs-store.js';
import { generateKeyPair, writeKeyPair } from '../../src/registry/keys.js';
import { trustRootKey } from '../../src/registry/layout.js';
import type { RolloutReport } from '../../src/rollout/service.js';
import { currentGeneration } from '../../src/site/agent.js';
import { REPO_ROOT, runCli } from '../helpers/cli.js';
import { makeTrust, siteYaml, writeProject, writeSite } from '../fleet/registry-fixture.js';
import { POLICY_DIR, tempDir } from '../site/fixtures.js';

const DRAFT_DIR = join(REPO_ROOT, 'artifacts/models/draft');
const VERIFIER_DIR = join(REPO_ROOT, 'artifacts/models/verifier');
const SUPPORT_DIR = join(REPO_ROOT, 'artifacts/adapters/support');
const SUPPORT_BAD_DIR = join(REPO_ROOT, 'artifacts/adapters/support-bad');
const SITES = ['store-001', 'store-002', 'store-003'];
const SYNC_MS = 1000;

function adapterVersion(src: string, version: string): string {
  const dir = join(tempDir('edgectl-e2e-src-'), `support-${version}`);
  cpSync(src, dir, { recursive: true });
  const yaml = readFileSync(join(dir, 'artifact.yaml'), 'utf8')
    .replace(/^name: .*$/m, 'name: support')
    .replace(/^version: .*$/m, `version: ${version}`);
  writeFileSync(join(dir, 'artifact.yaml'), yaml);
  return dir;
}

const SPEC = `# Small samples so the test finishes in about a minute on a loaded machine.
steps: [1, all]
analysis:
  interval: 1s
  metrics:
    - metric: acceptance
      margin: 0.2
      minSamples: 150
      alpha: 0.05
    - metric: errorRate
      margin: 0.5
      minSamples: 5
      alpha: 0.05
      absoluteMargin: 0.05
stepTimeout: 150s
`;

const PROMPTS = [
  'Customer: Hi, my package was supposed to arrive last week and it still has not shown up. Can you check the status of my order please?',
  'Customer: I was charged twice for the same order and would like a refund for the duplicate payment as soon as possible.',
  'Customer: The blender I bought stopped working after two days. How do I return it and get a replacement?',
];

describe('rollout end to end (verifier, 3 site daemons, traffic)', () => {
  const dir = tempDir('edgectl-rollout-e2e-');
  const vRunDir = tempDir('edgectl-e2e-verifier-');
  const pids: number[] = [];
  const urls = new Map<string, string>();
  const dataDir = (s: string) => join(dir, 'data', s);
  let stopTraffic: (() => Promise<void>) | undefined;
  const cli = (...args: string[]) => runCli(args, { cwd: dir, timeoutMs: 200_000 });

  beforeAll(async () => {
    const store = new FsStore(join(dir, 'registry'));
    const t = makeTrust();
    writeProject(dir, t);
    await store.putIfAbsent(trustRootKey(1), encodeEnvelope(t.envelope));
    for (const src of [
      POLICY_DIR,
      DRAFT_DIR,
      SUPPORT_DIR,
      adapterVersion(SUPPORT_DIR, '1.1.0'),
      adapterVersion(SUPPORT_BAD_DIR, '1.2.0'),
    ]) {
      await publishArtifact({
        dir: src,
        store,
        signer: t.artifacts,
        trust: t.trust,
        io: memoryIo(),
        progress: silentProgress,
      });
    }
    const v = await cli(
      'verifier',
      'up',
      '--model',
      VERIFIER_DIR,
      '--port',
      '0',
      '--threads',
      '1',
      '--run-dir',
      vRunDir,
      '--json',
    );
    expect(v.code, v.stderr).toBe(0);
    const vr = v.json<{ url: string; pid: number }>();
    pids.push(vr.pid);
    for (const s of SITES) {
      const kp = generateKeyPair();
      writeKeyPair(join(dataDir(s), 'site.key'), kp);
      writeSite(
        join(dir, 'sites'),
        s,
        siteYaml(s, {
          key: Buffer.from(kp.publicKey).toString('base64'),
          labels: { tier: 'branch' },
          adapters: ['adapter/support@1.0.0'],
          extra: `runtime:\n  verifier: ${vr.url}`,
        }),
      );
    }
    await applyFleet({
      store,
      trust: t.trust,
      signer: t.fleet,
      sitesDir: join(dir, 'sites'),
      clock: () => new Date(),
    });
    await store.close();
    mkdirSync(join(dir, 'rollouts'), { recursive: true });
    writeFileSync(join(dir, 'rollouts/e2e.yaml'), SPEC);
    for (const s of SITES) {
      const up = await cli(
        'site',
        'up',
        s,
        '--data-dir',
        dataDir(s),
        '--listen',
        '127.0.0.1:0',
        '--sync-interval',
        `${SYNC_MS}ms`,
        '--feedback-window',
        '1s',
        '--json',
      );
      expect(up.code, up.stderr).toBe(0);
      const r = up.json<{ pid: number; url: string }>();
      pids.push(r.pid);
      urls.set(s, r.url);
    }
    // Traffic: every site serves support chats, one at a time, until the test ends.
    let stopped = false;
    const loops = SITES.map(async (s, i) => {
      const client = new OpenAI({
        baseURL: `${urls.get(s)}/v1`,
        apiKey: 'unused',
        maxRetries: 0,
        timeout: 30_000,
      });
      for (let n = i; !stopped; n++) {
        try {
          await client.chat.completions.create({
            model: 'draft:support',
            messages: [{ role: 'user', content: PROMPTS[n % PROMPTS.length] as string }],
            max_tokens: 24,
          });
        } catch {
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    });
    stopTraffic = async () => {
      stopped = true;
      await Promise.all(loops);
    };
  }, 240_000);

  afterAll(async () => {
    await stopTraffic?.();
    for (const s of SITES) await runCli(['site', 'down', s, '--data-dir', dataDir(s)], { cwd: dir });
    await runCli(['verifier', 'down', '--run-dir', vRunDir], { cwd: dir });
    for (const pid of pids) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
  }, 60_000);

  const adapterOn = async (s: string) =>
    (await currentGeneration(dataDir(s)))?.info.artifacts.find((a) => a.ref.startsWith('adapter/'))?.ref;

  it('promotes support 1.1.0 (exit 0), then rolls back support 1.2.0 (exit 5) within one sync interval', async () => {
    const lint = await cli('lint', 'rollouts');
    expect(lint.code, lint.stderr).toBe(0);

    const good = await cli(
      'rollout',
      'canary',
      'adapter/support@1.1.0',
      '--spec',
      'rollouts/e2e.yaml',
      '--sites',
      'tier=branch',
      '--wait',
      '--timeout',
      '170s',
      '--json',
    );
    const g = good.json<RolloutReport>();
    expect(good.code, `${g.reason}\n${good.stderr.slice(-2000)}`).toBe(0);
    expect(g.outcome).toBe('promoted');
    const goodOps = g.events.map((e) => e.op.replace('rollout.', ''));
    expect(goodOps[0]).toBe('start');
    expect(goodOps.at(-1)).toBe('promote');
    expect(goodOps.at(-2)).toBe('judgement');
    expect(g.judgements.at(-1)?.judgements.find((j) => j.metric === 'acceptance')?.verdict).toBe('pass');
    // Every site picks up the promotion at its next sync.
    const end = Date.now() + 3 * SYNC_MS + 5000;
    while (
      Date.now() < end &&
      !(await Promise.all(SITES.map(adapterOn))).every((a) => a === 'adapter/support@1.1.0')
    ) {
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(await Promise.all(SITES.map(adapterOn))).toEqual(SITES.map(() => 'adapter/support@1.1.0'));
    const before = new Map(
      await Promise.all(SITES.map(async (s) => [s, (await currentGeneration(dataDir(s)))?.id] as const)),
    );

    const bad = await cli(
      'rollout',
      'canary',
      'adapter/support@1.2.0',
      '--spec',
      'rollouts/e2e.yaml',
      '--wait',
      '--timeout',
      '170s',
      '--json',
    );
    const b = bad.json<RolloutReport>();
    expect(bad.code, `${b.reason}\n${bad.stderr.slice(-2000)}`).toBe(5);
    expect(b.outcome).toBe('rolled-back');
    // The bad adapter's drafts are so uncertain that the router stops speculating with them (or,
    // if it does speculate, acceptance fails): either way the reason names what was seen.
    expect(b.reason).toMatch(/speculatively|acceptance/);
    const badOps = b.events.map((e) => e.op.replace('rollout.', ''));
    expect(badOps.slice(0, 2)).toEqual(['start', 'step']);
    expect(badOps.slice(-2)).toEqual(['judgement', 'abort']);
    expect(badOps).not.toContain('promote');
    const canary = b.rollout.waves[0]?.sites ?? [];
    expect(canary).toHaveLength(1);
    // Back on the previous generation (same id: nothing rebuilt) within one sync interval of the
    // abort entry (+ the sync itself): `current` is a symbolic link; its mtime is the switch.
    const abortTime = Date.parse(b.events.at(-1)?.time ?? '');
    const deadline = Date.now() + SYNC_MS + 5000;
    let ids: (string | undefined)[] = [];
    while (Date.now() < deadline) {
      ids = await Promise.all(canary.map(async (s) => (await currentGeneration(dataDir(s)))?.id));
      if (ids.every((id, i) => id === before.get(canary[i] as string))) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(ids).toEqual(canary.map((s) => before.get(s)));
    for (const s of canary) {
      const switchedAt = lstatSync(join(dataDir(s), 'current')).mtimeMs;
      expect(switchedAt - abortTime).toBeLessThan(SYNC_MS + 1500);
    }
    expect(await Promise.all(SITES.map(adapterOn))).toEqual(SITES.map(() => 'adapter/support@1.1.0'));
  }, 400_000);
});
