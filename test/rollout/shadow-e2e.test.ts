/**
 * Shadow steps end to end with real processes: a verifier, three site daemons started with
 * `--shadow-sample 1`, traffic on every site, and `edgectl rollout canary --wait` with a spec whose
 * first step is `shadow`. The bad adapter (`adapter/support@1.2.0`) is rolled back in shadow
 * (exit 5): the shadow site materialized it under `shadow/support` and reported shadow runs, no
 * site ever served it, and the shadow slot is gone afterwards. The good one (1.1.0) passes its
 * shadow step, goes to the first wave and is promoted (exit 0). The log's event sequence is
 * asserted for both.
 */
import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
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

const SPEC = `# Acceptance only, small samples: a shadow step judges nothing else.
steps: [shadow, 1, all]
analysis:
  interval: 1s
  metrics:
    - metric: acceptance
      margin: 0.2
      minSamples: 150
      alpha: 0.05
stepTimeout: 150s
`;

const PROMPTS = [
  'Customer: Hi, my package was supposed to arrive last week and it still has not shown up. Can you check the status of my order please?',
  'Customer: I was charged twice for the same order and would like a refund for the duplicate payment as soon as possible.',
  'Customer: The blender I bought stopped working after two days. How do I return it and get a replacement?',
];

describe('rollout shadow step end to end (verifier, 3 site daemons, traffic)', () => {
  const dir = tempDir('edgectl-shadow-e2e-');
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
        '--shadow-sample',
        '1',
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
    (await currentGeneration(dataDir(s)))?.info.artifacts.find((a) => a.slot === 'adapter')?.ref;
  const shadowOn = async (s: string) =>
    (await currentGeneration(dataDir(s)))?.info.artifacts.find((a) => a.slot === 'shadow')?.ref;

  it('rolls a bad adapter back in shadow (exit 5, nobody served it), then promotes a good one through its shadow step', async () => {
    const lint = await cli('lint', 'rollouts');
    expect(lint.code, lint.stderr).toBe(0);

    // Watch what every site serves while the bad rollout runs: never the candidate.
    const served = new Set<string | undefined>();
    const shadows = new Set<string | undefined>();
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        for (const s of SITES) {
          served.add(await adapterOn(s));
          shadows.add(await shadowOn(s));
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    const bad = await cli(
      'rollout',
      'canary',
      'adapter/support@1.2.0',
      '--spec',
      'rollouts/e2e.yaml',
      '--sites',
      'tier=branch',
      '--wait',
      '--timeout',
      '170s',
      '--json',
    );
    watching = false;
    await watcher;
    const b = bad.json<RolloutReport>();
    expect(bad.code, `${b.reason}\n${bad.stderr.slice(-2000)}`).toBe(5);
    expect(b.outcome).toBe('rolled-back');
    expect(b.reason).toMatch(/^rolled back in shadow: no user saw it — .*acceptance/);
    const badOps = b.events.map((e) => e.op.replace('rollout.', ''));
    expect(badOps.slice(0, 2)).toEqual(['start', 'step']);
    expect(badOps.slice(-2)).toEqual(['judgement', 'abort']);
    // Only the shadow step: no wave ever started.
    expect(badOps.filter((o) => o === 'step')).toHaveLength(1);
    expect(badOps).not.toContain('promote');
    expect(b.events[1]?.summary).toMatch(/^shadow step: /);
    expect(b.judgements.at(-1)?.shadow).toBe(true);
    const acc = b.judgements.at(-1)?.judgements.find((j) => j.metric === 'acceptance');
    expect(acc?.verdict).toBe('fail');
    expect(b.rollout.shadow?.state).toBe('failed');
    // The shadow site ran the candidate in shadow; no site ever served it.
    expect(shadows).toContain('adapter/support@1.2.0');
    expect(served).not.toContain('adapter/support@1.2.0');
    // The shadow is unassigned: every site drops it at its next sync.
    const end = Date.now() + 3 * SYNC_MS + 5000;
    while (Date.now() < end && (await Promise.all(SITES.map(shadowOn))).some((x) => x !== undefined)) {
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(await Promise.all(SITES.map(shadowOn))).toEqual(SITES.map(() => undefined));
    expect(await Promise.all(SITES.map(adapterOn))).toEqual(SITES.map(() => 'adapter/support@1.0.0'));

    const good = await cli(
      'rollout',
      'canary',
      'adapter/support@1.1.0',
      '--spec',
      'rollouts/e2e.yaml',
      '--wait',
      '--timeout',
      '170s',
      '--json',
    );
    const g = good.json<RolloutReport>();
    expect(good.code, `${g.reason}\n${good.stderr.slice(-2000)}`).toBe(0);
    expect(g.outcome).toBe('promoted');
    const ops = g.events.map((e) => e.op.replace('rollout.', ''));
    expect(ops.slice(0, 2)).toEqual(['start', 'step']);
    // The shadow step passed on acceptance alone, and the first wave followed in the next entry.
    const wave1 = ops.indexOf('step', 2);
    expect(ops[wave1 - 1]).toBe('judgement');
    expect(g.events[wave1]?.summary).toMatch(/^step 1: /);
    const shadowJudgements = g.judgements.filter((j) => j.shadow);
    expect(shadowJudgements.at(-1)?.decision).toBe('promote');
    expect(shadowJudgements.at(-1)?.judgements.map((j) => j.metric)).toEqual(['acceptance']);
    expect(ops.at(-1)).toBe('promote');
    expect(g.rollout.shadow?.state).toBe('done');
  }, 400_000);
});
