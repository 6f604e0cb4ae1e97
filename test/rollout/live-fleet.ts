/**
 * A live fleet for the rollout end-to-end tests: a project with an fs registry holding the
 * policy, the draft model and `adapter/support@1.0.0` (assigned), `@1.1.0` (the good adapter's
 * bytes) and `@1.2.0` (the bad adapter's bytes); a verifier daemon; three `site up` daemons
 * (labels tier=branch, sync every second, feedback every second); a rollout spec in
 * `rollouts/e2e.yaml`; and support chats sent to every selected site by the OpenAI client while a
 * rollout's step is undecided, in fixed batches paced by the rollout's evidence, not the clock
 * (paced-traffic.ts), until `stop`. The policy is the default one without the running-acceptance
 * abstain (see `fleetPolicy`).
 */
import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { silentProgress } from '../../src/artifact/progress.js';
import { publishArtifact } from '../../src/artifact/publish.js';
import { memoryIo } from '../../src/foundation/output.js';
import { isAlive } from '../../src/supervisor/process-identity.js';
import { applyFleet } from '../../src/fleet/apply.js';
import { encodeEnvelope } from '../../src/registry/envelope.js';
import { FsStore } from '../../src/registry/fs-store.js';
import { generateKeyPair, writeKeyPair } from '../../src/registry/keys.js';
import { trustRootKey } from '../../src/registry/layout.js';
import { REPO_ROOT, runCli, startVerifierDaemon, type CliResult } from '../helpers/cli.js';
import { makeTrust, siteYaml, writeProject, writeSite } from '../fleet/registry-fixture.js';
import { POLICY_DIR, tempDir } from '../site/fixtures.js';
import { startPacedTraffic, type PacedTraffic } from './paced-traffic.js';

const DRAFT_DIR = join(REPO_ROOT, 'artifacts/models/draft');
const SUPPORT_DIR = join(REPO_ROOT, 'artifacts/adapters/support');
const SUPPORT_BAD_DIR = join(REPO_ROOT, 'artifacts/adapters/support-bad');
export const SITES = ['store-001', 'store-002', 'store-003'];
export const SYNC_MS = 1000;
/**
 * Backstops only (issue #16): the traffic is paced by the rollout, so a step ends on its evidence
 * however slow the machine; these limits only end a test that is truly stuck. The specs' stepTimeout
 * (STEP_TIMEOUT) is below each `rollout canary --timeout` (ROLLOUT_TIMEOUT), which is below the CLI
 * child's limit (CLI_TIMEOUT_MS), so a stuck step shows up as the rollout's own verdict.
 */
export const STEP_TIMEOUT = '10m';
export const ROLLOUT_TIMEOUT = '12m';
const CLI_TIMEOUT_MS = 13 * 60_000;
/** vitest timeout of a test that runs two rollouts (beyond their backstops: setup and syncs). */
export const TWO_ROLLOUTS_MS = 2 * CLI_TIMEOUT_MS + 120_000;

const PROMPTS = [
  'Customer: Hi, my package was supposed to arrive last week and it still has not shown up. Can you check the status of my order please?',
  'Customer: I was charged twice for the same order and would like a refund for the duplicate payment as soon as possible.',
  'Customer: The blender I bought stopped working after two days. How do I return it and get a replacement?',
];
/**
 * Requests to every selected site per batch of the paced traffic: each prompt twice, so every site
 * gets the same mix (acceptance differs about threefold between the prompts).
 */
const BATCH = 2 * PROMPTS.length;
/** The fleet policy's draft length (see fleetPolicy). */
const DRAFT_TOKENS = 4;

/**
 * Polls `cond` every 100 ms until it holds or `backstopMs` passes (the caller asserts after): waits
 * on what the sites show, so a slow machine waits longer instead of failing.
 */
export async function waitFor(cond: () => Promise<boolean>, backstopMs = 60_000): Promise<void> {
  const end = Date.now() + backstopMs;
  while (!(await cond()) && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
}

/** A temporary copy of the artifact directory `src`, named `name`, with one file's text edited. */
function editedCopy(src: string, name: string, file: string, edit: (text: string) => string): string {
  const dir = join(tempDir('edgectl-e2e-src-'), name);
  cpSync(src, dir, { recursive: true });
  const path = join(dir, file);
  writeFileSync(path, edit(readFileSync(path, 'utf8')));
  return dir;
}

function adapterVersion(src: string, version: string): string {
  return editedCopy(src, `support-${version}`, 'artifact.yaml', (yaml) =>
    yaml.replace(/^name: .*$/m, 'name: support').replace(/^version: .*$/m, `version: ${version}`),
  );
}

/**
 * The default policy without its running-acceptance abstain. The traffic below is chats rendered as
 * "User: Customer: ...\nAssistant:", a transcript unlike the fixture models' corpus: greedy
 * acceptance on these three prompts was only 0.15, 0.20 and 0.55 with the first on-policy draft
 * (2026-11-22 10:43; 0.21, 0.31, 0.60 before it), so a site's running acceptance sat at 0.25-0.29, on the
 * default `abstain.minAcceptance` of 0.25. Whichever site dipped under it sent everything to the
 * cloud for a minute, and a canary site that did so was rolled back for serving no speculative
 * requests (a correct decision about a site that is not the subject of these tests). The router's
 * abstain and its 60 s lapse have their own tests (test/policy, test/runtime/serve/units.test.ts).
 *
 * Its draft length is pinned (minDraftTokens = maxDraftTokens = DRAFT_TOKENS) instead of adaptive:
 * adaptive k picks longer drafts when verify round trips cost more, and a longer draft accepts a
 * smaller share of its tokens, so on a loaded machine acceptance followed each site's load, not its
 * adapter (the same adapter measured 0.26 on one site and 0.39 on another, and shadow runs 20% under
 * the served drafts: 2026-12-06, load 20 on 2 cores), and a step judged on it took minutes or never
 * decided. With k pinned, acceptance is the adapters' alone. Adaptive k has its own tests.
 */
function fleetPolicy(): string {
  return editedCopy(POLICY_DIR, 'default', 'policy.yaml', (yaml) => {
    const without = yaml.replace(/^ {2}minAcceptance: .*\n/m, '');
    if (without === yaml) throw new Error(`${POLICY_DIR}/policy.yaml: no abstain.minAcceptance line to drop`);
    const pinned = without
      .replace(/^( {4}minDraftTokens:) .*$/m, `$1 ${DRAFT_TOKENS}`)
      .replace(/^( {4}maxDraftTokens:) .*$/m, `$1 ${DRAFT_TOKENS}`);
    if (pinned.match(new RegExp(`DraftTokens: ${DRAFT_TOKENS}$`, 'gm'))?.length !== 2)
      throw new Error(`${POLICY_DIR}/policy.yaml: no routing.speculative min/maxDraftTokens to pin`);
    return pinned;
  });
}

export interface LiveFleet {
  dir: string;
  dataDir(site: string): string;
  cli(...args: string[]): Promise<CliResult>;
  /** The paced traffic (how many batches it sent). */
  traffic: PacedTraffic;
  /** Stops the traffic, the site daemons and the verifier (and kills any that linger). */
  stop(): Promise<void>;
}

export async function startLiveFleet(opts: {
  tempPrefix: string;
  spec: string;
  /** Extra `site up` flags. */
  siteUpArgs?: string[];
}): Promise<LiveFleet> {
  const dir = tempDir(opts.tempPrefix);
  const vRunDir = tempDir('edgectl-e2e-verifier-');
  const pids: number[] = [];
  const urls = new Map<string, string>();
  const dataDir = (s: string) => join(dir, 'data', s);
  const cli = (...args: string[]) => runCli(args, { cwd: dir, timeoutMs: CLI_TIMEOUT_MS });

  const store = new FsStore(join(dir, 'registry'));
  const t = makeTrust();
  writeProject(dir, t);
  await store.putIfAbsent(trustRootKey(1), encodeEnvelope(t.envelope));
  const killAll = () => {
    for (const pid of pids) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
  };
  // The verifier starts (loading its model in its own process) while the artifacts are published.
  const verifier = startVerifierDaemon(dir, vRunDir).then((v) => {
    pids.push(v.pid);
    return v;
  });
  verifier.catch(() => undefined); // a failure is thrown where it is awaited, not as unhandled
  try {
    for (const src of [
      fleetPolicy(),
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
    const vr = await verifier;
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
    mkdirSync(join(dir, 'rollouts'), { recursive: true });
    writeFileSync(join(dir, 'rollouts/e2e.yaml'), opts.spec);
    // The three daemons start together: each `site up` mostly waits for its daemon to load.
    const ups = await Promise.all(
      SITES.map((s) =>
        cli(
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
          ...(opts.siteUpArgs ?? []),
          '--json',
        ),
      ),
    );
    // Every started daemon's pid first, so a failed start still leaves none behind (killAll).
    for (const up of ups) if (up.code === 0) pids.push(up.json<{ pid: number }>().pid);
    for (const [i, up] of ups.entries()) {
      expect(up.code, up.stderr).toBe(0);
      urls.set(SITES[i] as string, up.json<{ url: string }>().url);
    }
  } catch (err) {
    await verifier.catch(() => undefined); // its pid is known (or it never started)
    killAll(); // a failed setup leaves no daemon behind
    await store.close();
    throw err;
  }
  const traffic = startPacedTraffic({ store, trust: t.trust, urls, prompts: PROMPTS, batch: BATCH });
  return {
    dir,
    dataDir,
    cli,
    traffic,
    async stop() {
      await traffic.stop();
      await store.close();
      for (const s of SITES) await runCli(['site', 'down', s, '--data-dir', dataDir(s)], { cwd: dir });
      await runCli(['verifier', 'down', '--run-dir', vRunDir], { cwd: dir });
      killAll();
    },
  };
}
