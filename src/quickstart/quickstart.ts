/**
 * `edgectl quickstart`: the whole loop on one machine, in a workspace directory, by running
 * edgectl's own commands as child processes (what a user would type, with `--json`):
 *
 *   init -> keys generate x3 -> trust init -> registry init -> publish the bundled policy, draft
 *   model and adapters (support@1.0.0 and @1.1.0 = the good bytes, @1.2.0 = the bad bytes) ->
 *   verifier up -> site add x3 -> site apply -> site up x3 -> traffic to every site -> rollout
 *   canary @1.1.0 --wait (promoted, exit 0) -> rollout canary @1.2.0 --wait (rolled back, exit 5)
 *   -> verifier CPU against cloud-only -> site down x3, verifier down
 *
 * Everything it starts is stopped at the end, on an error and on Ctrl-C (unless `keep`). Rerunning
 * is safe: a workspace from an earlier run (marked with MARKER) has its daemons stopped and is
 * replaced; any other non-empty directory is refused. The summary says what happened and why.
 */
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { EdgectlError, ExitCode, OperationalError, UserError } from '../cli/errors.js';
import type { Io } from '../cli/output.js';
import type { Progress } from '../artifact/progress.js';
import { isAlive, signal as sendSignal } from '../daemon/process-identity.js';
import { edgectlPackage } from '../init/package-root.js';
import { CliRunner, commandFailed, parseJson, type CliRun } from './cli-runner.js';
import {
  emptyTrafficStats,
  readPrompts,
  sendCompletion,
  startTraffic,
  type TrafficStats,
} from './traffic.js';

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

export interface QuickstartOptions {
  dir: string;
  keep: boolean;
  /** Registry URL (default: the workspace's file: registry). Use a fresh prefix each run. */
  registry?: string | undefined;
  io: Io;
  progress: Progress;
  signal: AbortSignal;
  env?: NodeJS.ProcessEnv;
  /** Max tokens per traffic request (default 24). */
  maxTokens?: number;
  /** How long `rollout canary --wait` waits for each rollout (default 15 min, a backstop). */
  rolloutTimeout?: string;
}

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

export interface QuickstartSummary {
  ok: boolean;
  workspace: string;
  registry: string;
  conditionalWrites: boolean;
  verifier: { url: string; pid: number };
  sites: { name: string; url: string; pid: number }[];
  traffic: TrafficStats & { acceptance: number | null; tokensPerRound: number | null };
  verifierCpu: {
    /** Verifier CPU seconds while serving the traffic above. */
    seconds: number;
    /** The same tokens served cloud-only, at the CPU per token measured with cloud-only requests. */
    cloudOnlyEstimateSeconds: number | null;
    perKTokensCloud: number | null;
    perKTokensServed: number | null;
    /** 1 - seconds / cloudOnlyEstimateSeconds. */
    saved: number | null;
  };
  rollouts: RolloutOutcome[];
  /** Every process the quickstart started: CLI children and the daemons. */
  pids: number[];
  /** False with --keep: the verifier and sites are still running. */
  stopped: boolean;
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

interface VerifierStatsJson {
  cpuSeconds: number;
  completionTokens: number;
}

function interrupted(): EdgectlError {
  return new EdgectlError('quickstart interrupted; stopped what it had started', ExitCode.Interrupted, {
    code: 'E_INTERRUPTED',
  });
}

/** Refuses a directory it did not create; stops and removes a previous quickstart workspace. */
async function prepareWorkspace(dir: string, runner: CliRunner, io: Io): Promise<void> {
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

async function verifierStats(url: string): Promise<VerifierStatsJson> {
  const res = await fetch(`${url}/v1/stats`, { signal: AbortSignal.timeout(5000) });
  if (!res.ok) throw new OperationalError(`verifier ${url}/v1/stats answered ${res.status}`);
  return (await res.json()) as VerifierStatsJson;
}

export async function runQuickstart(opts: QuickstartOptions): Promise<QuickstartSummary> {
  const t0 = performance.now();
  const dir = resolve(opts.dir);
  const pkg = edgectlPackage().root;
  const art = (p: string) => join(pkg, 'artifacts', p);
  const env: NodeJS.ProcessEnv = { ...(opts.env ?? process.env), CI: '1' };
  delete env.EDGECTL_RUN_DIR;
  if (opts.registry) env.EDGECTL_REGISTRY = opts.registry;
  else delete env.EDGECTL_REGISTRY;
  mkdirSync(dir, { recursive: true });
  const runner = new CliRunner({
    cwd: dir,
    env,
    signal: opts.signal,
    onRun: (r: CliRun) => opts.io.log('debug', `edgectl ${r.args.join(' ')} -> exit ${r.code} (${r.ms} ms)`),
  });
  const check = () => {
    if (opts.signal.aborted) throw interrupted();
  };
  const step = async <T>(title: string, fn: (report: (s: string) => void) => Promise<T>): Promise<T> => {
    check();
    const r = await opts.progress.step(title, fn);
    check();
    return r;
  };
  const cli = async <T>(args: string[], timeoutMs?: number): Promise<T> => {
    check();
    const r = await runner.json<T>(args, timeoutMs ? { timeoutMs } : {});
    return r;
  };

  const started = { verifier: false, sites: [] as string[] };
  const daemonPids: number[] = [];
  let traffic: ReturnType<typeof startTraffic> | undefined;
  let stopped = false;

  const stopAll = async (): Promise<void> => {
    await traffic?.stop();
    traffic = undefined;
    const downs = started.sites.map((s) => runner.run(['site', 'down', s, '--timeout', '10s', '--json']));
    await Promise.all(downs);
    if (started.verifier) await runner.run(['verifier', 'down', '--json']);
    started.sites = [];
    started.verifier = false;
    // If a `down` could not run (say, the CLI itself broke), end the daemons by pid.
    await killSurvivors(daemonPids, opts.io);
    stopped = true;
  };

  try {
    await step(`Workspace ${dir}`, async () => {
      await prepareWorkspace(dir, runner, opts.io);
      await cli(['init', '.']);
      writeFileSync(
        join(dir, MARKER),
        'created by `edgectl quickstart`; rerunning it replaces this directory\n',
      );
      // The example site of `init` is replaced by the quickstart's three.
      rmSync(join(dir, 'sites', 'example-001.yaml'), { force: true });
      rmSync(join(dir, '.edgectl', 'sites', 'example-001'), { recursive: true, force: true });
      mkdirSync(join(dir, 'rollouts'), { recursive: true });
      writeFileSync(join(dir, 'rollouts', 'quickstart.yaml'), ROLLOUT_SPEC);
    });

    const registry = await step('Keys, trust root and registry', async () => {
      for (const k of ['root', 'artifacts', 'fleet'])
        await cli(['keys', 'generate', '--out', `keys/${k}.key`]);
      await cli(['trust', 'init']);
      return cli<{ url: string; conditionalWrites: boolean }>(['registry', 'init']);
    });

    await step('Publish the draft model, adapters and policy', async (report) => {
      const publishes: [string, string[]][] = [
        ['policy/default@1.0.0', [art('policies/default')]],
        ['model/draft@1.0.0', [art('models/draft')]],
        ['adapter/support@1.0.0', [art('adapters/support'), '--version', '1.0.0']],
        [GOOD, [art('adapters/support'), '--version', '1.1.0']],
        [BAD, [art('adapters/support-bad'), '--name', 'support', '--version', '1.2.0']],
      ];
      for (const [ref, args] of publishes) {
        report(ref);
        await cli(['publish', 'artifact', ...args]);
      }
    });

    const verifier = await step('Start the cloud verifier', async () => {
      const v = await cli<UpResult>(
        ['verifier', 'up', '--model', art('models/verifier'), '--port', '0', '--threads', '1'],
        120_000,
      );
      started.verifier = true;
      daemonPids.push(v.pid);
      if (!v.url) throw new OperationalError('verifier up reported no address');
      return { url: v.url, pid: v.pid };
    });

    await step('Declare and apply a fleet of 3 sites', async () => {
      for (const site of SITES) {
        await cli([
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
          verifier.url,
          '--interval',
          '2s',
        ]);
      }
      await cli(['lint']);
      await cli(['site', 'apply']);
    });

    const sites = await step('Start the sites', async (report) => {
      const out: { name: string; url: string; pid: number }[] = [];
      for (const site of SITES) {
        report(site);
        started.sites.push(site);
        const s = await cli<UpResult>(
          ['site', 'up', site, '--listen', '127.0.0.1:0', '--sync-interval', '2s', '--feedback-window', '2s'],
          120_000,
        );
        daemonPids.push(s.pid);
        if (!s.url) throw new OperationalError(`site up ${site} reported no address`);
        out.push({ name: site, url: s.url, pid: s.pid });
      }
      return out;
    });

    const prompts = readPrompts(art('prompts/support.jsonl'));
    const maxTokens = opts.maxTokens ?? 24;
    const cpuBefore = await verifierStats(verifier.url);
    traffic = startTraffic({
      sites: sites.map((s) => ({ name: s.name, url: s.url })),
      prompts,
      model: 'draft:support',
      maxTokens,
      temperature: 0,
      concurrency: 1,
    });
    const live = traffic.stats;
    opts.io.log('info', `Sending support chats to ${sites.length} sites (model draft:support)`);

    const rollouts: RolloutOutcome[] = [];
    for (const [candidate, expected] of [
      [GOOD, 'promoted'],
      [BAD, 'rolled-back'],
    ] as const) {
      rollouts.push(
        await step(`Canary ${candidate} (expect ${expected})`, async (report) => {
          const t = performance.now();
          const ticker = setInterval(() => {
            const acc = live.draftTokens > 0 ? (live.acceptedTokens / live.draftTokens).toFixed(2) : '-';
            report(`${live.requests} requests sent, acceptance ${acc}`);
          }, 2000);
          let r: CliRun;
          try {
            check();
            r = await runner.run([
              'rollout',
              'canary',
              candidate,
              '--spec',
              'rollouts/quickstart.yaml',
              '--wait',
              '--timeout',
              opts.rolloutTimeout ?? '15m',
              '--json',
            ]);
          } finally {
            clearInterval(ticker);
          }
          check();
          if (![0, 5, 6, 7].includes(r.code)) throw commandFailed(r);
          const j = parseJson<RolloutJson>(r);
          const outcome: RolloutOutcome = {
            candidate,
            expected,
            outcome: j.outcome,
            exitCode: r.code,
            ok: j.outcome === expected,
            reason: j.reason,
            judgements: (j.judgements ?? []).map((x) => ({
              step: x.step,
              decision: x.decision,
              reason: x.reason,
            })),
            seconds: Math.round((performance.now() - t) / 100) / 10,
          };
          opts.io.log('info', `  ${candidate}: ${j.outcome} (exit ${r.code}): ${j.reason}`);
          if (j.outcome !== 'promoted' && j.outcome !== 'rolled-back' && j.rollout?.id) {
            // A paused or timed-out rollout still holds its sites: release them for the next one.
            await runner.run([
              'rollout',
              'abort',
              j.rollout.id,
              '--reason',
              'quickstart: not decided in time',
              '--json',
            ]);
          }
          return outcome;
        }),
      );
    }

    const stats = await traffic.stop();
    traffic = undefined;
    const cpuAfterTraffic = await verifierStats(verifier.url);

    const cpu = await step('Measure verifier CPU against cloud-only', async () => {
      // The same prompts, answered by the verifier alone: its CPU per generated token.
      const cloud = emptyTrafficStats();
      const first = sites[0];
      const before = await verifierStats(verifier.url);
      for (let i = 0; i < 12 && first; i++) {
        check();
        const prompt = prompts[i % prompts.length] ?? '';
        await sendCompletion(
          first.url,
          { model: 'draft:support', prompt, maxTokens, temperature: 0, route: 'cloud' },
          cloud,
        );
      }
      const after = await verifierStats(verifier.url);
      const servedSeconds = cpuAfterTraffic.cpuSeconds - cpuBefore.cpuSeconds;
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
    });

    if (!opts.keep) await step('Stop the sites and the verifier', () => stopAll());

    return {
      ok: rollouts.every((r) => r.ok),
      workspace: dir,
      registry: registry.url,
      conditionalWrites: registry.conditionalWrites,
      verifier,
      sites,
      traffic: {
        ...stats,
        acceptance: stats.draftTokens > 0 ? round(stats.acceptedTokens / stats.draftTokens, 3) : null,
        tokensPerRound:
          stats.verifyRounds > 0 ? round(stats.speculativeTokens / stats.verifyRounds, 2) : null,
      },
      verifierCpu: cpu,
      rollouts,
      pids: [...runner.pids, ...daemonPids],
      stopped,
      seconds: Math.round((performance.now() - t0) / 100) / 10,
    };
  } catch (err) {
    // Never leave processes behind on a failure or Ctrl-C, even with --keep.
    runner.killAll();
    await stopAll().catch((e: unknown) =>
      opts.io.log('warn', `cleanup: ${e instanceof Error ? e.message : String(e)}`),
    );
    if (opts.signal.aborted) throw interrupted();
    throw err;
  }
}

/** SIGTERM, then SIGKILL after 10 s, for each pid still alive. */
async function killSurvivors(pids: number[], io: Io): Promise<void> {
  const alive = pids.filter((p) => isAlive(p));
  if (alive.length === 0) return;
  io.log('warn', `stopping leftover daemon process(es) ${alive.join(', ')} by signal`);
  for (const p of alive) sendSignal(p, 'SIGTERM');
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline && alive.some((p) => isAlive(p))) await new Promise((r) => setTimeout(r, 100));
  for (const p of alive) if (isAlive(p)) sendSignal(p, 'SIGKILL');
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
