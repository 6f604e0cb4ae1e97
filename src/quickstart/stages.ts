/**
 * The steps of `edgectl quickstart`, one function each, in the order runQuickstart calls them:
 * the workspace, keys/trust/registry, publishing the bundled artifacts, the verifier, the fleet of
 * three sites, one canary rollout per candidate, and the verifier-CPU measurement against
 * cloud-only serving. Each step runs edgectl's own commands through the session (session.ts) and
 * records what it started there. The loop and its exit codes are documented under
 * `edgectl quickstart` in docs/cli.md.
 */
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { OperationalError, UserError } from '../foundation/errors.js';
import { edgectlPackage } from '../foundation/package-root.js';
import { commandFailed, parseJson, type CliRun } from './cli-runner.js';
import type { QuickstartSession } from './session.js';
import { emptyTrafficStats, sendCompletion, type TrafficStats } from './traffic.js';

export const MARKER = '.edgectl-quickstart';
export const SITES = ['store-001', 'store-002', 'store-003'] as const;
const LABELS: Record<string, string> = {
  'store-001': 'region=eu-west,tier=branch',
  'store-002': 'region=eu-west,tier=branch',
  'store-003': 'region=us-east,tier=flagship',
};
export const GOOD = 'adapter/support@1.1.0';
export const BAD = 'adapter/support@1.2.0';

/**
 * The rollout spec the quickstart uses: two waves (one site, then all), judged every 2 s on
 * acceptance, the metric the two adapters differ on. The non-inferiority margin is wider (20%
 * instead of 5%) and the sample minimum lower (400 draft tokens instead of 2000) than the defaults
 * so a laptop decides in well under a minute; the bad adapter is 95% worse and fails either way. errorRate is left out: with no
 * errors on either arm its non-inferiority test needs thousands of requests to pass, and the
 * spec's abort limit (error rate over 50%) still stops a failing candidate at once. A step ends
 * on its evidence, which the traffic keeps bringing however slow the machine; the step timeout
 * (10 min) and the rollout's (20 min) are backstops only, so a loaded machine is slower, not paused.
 */
export const ROLLOUT_SPEC = `# Rollout spec of \`edgectl quickstart\` (see \`edgectl rollout canary --help\`).
steps: ['1 site', all]
analysis:
  interval: 2s
  metrics:
    - metric: acceptance
      margin: 0.2
      minSamples: 400
stepTimeout: 10m
timeout: 20m
onInconclusive: pause
`;

export interface RolloutOutcome {
  candidate: string;
  expected: 'promoted' | 'rolled-back';
  outcome: string;
  exitCode: number;
  ok: boolean;
  reason: string;
  /** Each judgement written to the fleet log: decision and its reason. */
  judgements: { step: number; decision: string; reason: string }[];
  seconds: number;
}

interface UpResult {
  pid: number;
  url?: string;
}

interface RolloutJson {
  rollout?: { id: string };
  outcome: string;
  exitCode: number;
  reason: string;
  judgements?: { step: number; decision: string; reason: string }[];
}

export interface VerifierStatsJson {
  cpuSeconds: number;
  completionTokens: number;
}

/** A file or directory of the artifacts bundled with edgectl. */
export function bundled(path: string): string {
  return join(edgectlPackage().root, 'artifacts', path);
}

/** Refuses a directory it did not create; stops and removes a previous quickstart workspace. */
async function prepareWorkspace(s: QuickstartSession): Promise<void> {
  const { dir, runner, io } = s;
  if (existsSync(dir) && readdirSync(dir).length > 0) {
    if (!existsSync(join(dir, MARKER))) {
      throw new UserError(`${dir} is not empty and is not a quickstart workspace`, {
        code: 'E_QUICKSTART_DIR',
        suggestion: 'pass --dir with a new or empty directory (a previous quickstart workspace is reused)',
      });
    }
    io.log('info', `  cleaning the previous quickstart workspace ${dir}`);
    // Daemons of the previous run may still be up (--keep): stop them before deleting their files.
    for (const site of SITES) {
      if (existsSync(join(dir, '.edgectl', 'sites', site)))
        await runner.run(['site', 'down', site, '--json']);
    }
    await runner.run(['verifier', 'down', '--json']);
    for (const name of readdirSync(dir)) rmSync(join(dir, name), { recursive: true, force: true });
  }
  mkdirSync(dir, { recursive: true });
}

/** `init` in a fresh (or replaced) workspace, with the quickstart's rollout spec and no example site. */
export async function createWorkspace(s: QuickstartSession): Promise<void> {
  const { dir } = s;
  await prepareWorkspace(s);
  await s.cli(['init', '.']);
  writeFileSync(join(dir, MARKER), 'created by `edgectl quickstart`; rerunning it replaces this directory\n');
  // The example site of `init` is replaced by the quickstart's three.
  rmSync(join(dir, 'sites', 'example-001.yaml'), { force: true });
  rmSync(join(dir, '.edgectl', 'sites', 'example-001'), { recursive: true, force: true });
  mkdirSync(join(dir, 'rollouts'), { recursive: true });
  writeFileSync(join(dir, 'rollouts', 'quickstart.yaml'), ROLLOUT_SPEC);
}

export async function initKeysAndRegistry(
  s: QuickstartSession,
): Promise<{ url: string; conditionalWrites: boolean }> {
  for (const k of ['root', 'artifacts', 'fleet']) await s.cli(['keys', 'generate', '--out', `keys/${k}.key`]);
  await s.cli(['trust', 'init']);
  return s.cli<{ url: string; conditionalWrites: boolean }>(['registry', 'init']);
}

export async function publishBundled(s: QuickstartSession, report: (s: string) => void): Promise<void> {
  const publishes: [string, string[]][] = [
    ['policy/default@1.0.0', [bundled('policies/default')]],
    ['model/draft@1.0.0', [bundled('models/draft')]],
    ['adapter/support@1.0.0', [bundled('adapters/support'), '--version', '1.0.0']],
    [GOOD, [bundled('adapters/support'), '--version', '1.1.0']],
    [BAD, [bundled('adapters/support-bad'), '--name', 'support', '--version', '1.2.0']],
  ];
  for (const [ref, args] of publishes) {
    report(ref);
    await s.cli(['publish', 'artifact', ...args]);
  }
}

export async function startVerifier(s: QuickstartSession): Promise<{ url: string; pid: number }> {
  const v = await s.cli<UpResult>(
    ['verifier', 'up', '--model', bundled('models/verifier'), '--port', '0', '--threads', '1'],
    120_000,
  );
  s.verifierStarted(v.pid);
  if (!v.url) throw new OperationalError('verifier up reported no address');
  return { url: v.url, pid: v.pid };
}

export async function declareFleet(s: QuickstartSession, verifierUrl: string): Promise<void> {
  for (const site of SITES) {
    await s.cli([
      'site',
      'add',
      site,
      '--labels',
      LABELS[site] ?? '',
      '--model',
      'model/draft@1.0.0',
      '--adapter',
      'adapter/support@1.0.0',
      '--policy',
      'policy/default@1.0.0',
      '--verifier',
      verifierUrl,
      '--interval',
      '2s',
    ]);
  }
  await s.cli(['lint']);
  await s.cli(['site', 'apply']);
}

export async function startSites(
  s: QuickstartSession,
  report: (s: string) => void,
): Promise<{ name: string; url: string; pid: number }[]> {
  const out: { name: string; url: string; pid: number }[] = [];
  for (const site of SITES) {
    report(site);
    s.siteStarting(site);
    const up = await s.cli<UpResult>(
      ['site', 'up', site, '--listen', '127.0.0.1:0', '--sync-interval', '2s', '--feedback-window', '2s'],
      120_000,
    );
    s.siteStarted(up.pid);
    if (!up.url) throw new OperationalError(`site up ${site} reported no address`);
    out.push({ name: site, url: up.url, pid: up.pid });
  }
  return out;
}

/**
 * `rollout canary <candidate> --wait` with the quickstart's spec, reporting the live traffic's
 * acceptance while it waits; a rollout left undecided is aborted so the next one gets the sites.
 */
export async function runCanary(
  s: QuickstartSession,
  c: { candidate: string; expected: RolloutOutcome['expected']; timeout: string; live: TrafficStats },
  report: (s: string) => void,
): Promise<RolloutOutcome> {
  const { candidate, expected, live } = c;
  const t = performance.now();
  const ticker = setInterval(() => {
    const acc = live.draftTokens > 0 ? (live.acceptedTokens / live.draftTokens).toFixed(2) : '-';
    report(`${live.requests} requests sent, acceptance ${acc}`);
  }, 2000);
  let r: CliRun;
  try {
    s.check();
    r = await s.runner.run([
      'rollout',
      'canary',
      candidate,
      '--spec',
      'rollouts/quickstart.yaml',
      '--wait',
      '--timeout',
      c.timeout,
      '--json',
    ]);
  } finally {
    clearInterval(ticker);
  }
  s.check();
  if (![0, 5, 6, 7].includes(r.code)) throw commandFailed(r);
  const j = parseJson<RolloutJson>(r);
  const outcome: RolloutOutcome = {
    candidate,
    expected,
    outcome: j.outcome,
    exitCode: r.code,
    ok: j.outcome === expected,
    reason: j.reason,
    judgements: (j.judgements ?? []).map((x) => ({ step: x.step, decision: x.decision, reason: x.reason })),
    seconds: Math.round((performance.now() - t) / 100) / 10,
  };
  s.io.log('info', `  ${candidate}: ${j.outcome} (exit ${r.code}): ${j.reason}`);
  if (j.outcome !== 'promoted' && j.outcome !== 'rolled-back' && j.rollout?.id) {
    // A paused or timed-out rollout still holds its sites: release them for the next one.
    await s.runner.run([
      'rollout',
      'abort',
      j.rollout.id,
      '--reason',
      'quickstart: not decided in time',
      '--json',
    ]);
  }
  return outcome;
}

export async function verifierStats(url: string): Promise<VerifierStatsJson> {
  const res = await fetch(`${url}/v1/stats`, { signal: AbortSignal.timeout(5000) });
  if (!res.ok) throw new OperationalError(`verifier ${url}/v1/stats answered ${res.status}`);
  return (await res.json()) as VerifierStatsJson;
}

/** The summary's `verifierCpu`: what speculative serving saved the verifier. */
export interface VerifierCpu {
  /** Verifier CPU seconds while serving the traffic above. */
  seconds: number;
  /** The same tokens served cloud-only, at the CPU per token measured with cloud-only requests. */
  cloudOnlyEstimateSeconds: number | null;
  perKTokensCloud: number | null;
  perKTokensServed: number | null;
  /** 1 - seconds / cloudOnlyEstimateSeconds. */
  saved: number | null;
}

/** What the CPU measurement needs: the traffic's totals and the verifier's CPU around it. */
export interface CpuInputs {
  verifierUrl: string;
  siteUrl: string | undefined;
  prompts: string[];
  maxTokens: number;
  served: TrafficStats;
  cpuBefore: VerifierStatsJson;
  cpuAfterTraffic: VerifierStatsJson;
}

/**
 * The verifier's CPU while serving the traffic, against an estimate of serving the same tokens
 * cloud-only (the CPU per token of a dozen cloud-routed requests through the first site).
 */
export async function measureVerifierCpu(s: QuickstartSession, m: CpuInputs): Promise<VerifierCpu> {
  // The same prompts, answered by the verifier alone: its CPU per generated token.
  const cloud = emptyTrafficStats();
  const before = await verifierStats(m.verifierUrl);
  for (let i = 0; i < 12 && m.siteUrl; i++) {
    s.check();
    const prompt = m.prompts[i % m.prompts.length] ?? '';
    await sendCompletion(
      m.siteUrl,
      { model: 'draft:support', prompt, maxTokens: m.maxTokens, temperature: 0, route: 'cloud' },
      cloud,
    );
  }
  const after = await verifierStats(m.verifierUrl);
  const stats = m.served;
  const servedSeconds = m.cpuAfterTraffic.cpuSeconds - m.cpuBefore.cpuSeconds;
  const cloudTokens = cloud.byRoute.cloud ? cloud.completionTokens : 0;
  const perTokenCloud = cloudTokens > 0 ? (after.cpuSeconds - before.cpuSeconds) / cloudTokens : null;
  const estimate = perTokenCloud !== null ? perTokenCloud * stats.completionTokens : null;
  return {
    seconds: round(servedSeconds, 3),
    cloudOnlyEstimateSeconds: estimate !== null ? round(estimate, 3) : null,
    perKTokensCloud: perTokenCloud !== null ? round(perTokenCloud * 1000, 3) : null,
    perKTokensServed:
      stats.completionTokens > 0 ? round((servedSeconds / stats.completionTokens) * 1000, 3) : null,
    saved: estimate && estimate > 0 ? round(1 - servedSeconds / estimate, 3) : null,
  };
}

export function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
