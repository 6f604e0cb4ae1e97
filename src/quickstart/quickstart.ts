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
 *
 * This module runs the steps in order and assembles the summary; the steps are in stages.ts and
 * the bookkeeping of what was started (and its cleanup) in session.ts.
 */
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Io } from '../foundation/output.js';
import type { Progress } from '../artifact/progress.js';
import { QuickstartSession } from './session.js';
import {
  BAD,
  bundled,
  createWorkspace,
  declareFleet,
  GOOD,
  initKeysAndRegistry,
  measureVerifierCpu,
  publishBundled,
  round,
  runCanary,
  startSites,
  startVerifier,
  verifierStats,
  type RolloutOutcome,
  type VerifierCpu,
} from './stages.js';
import { readPrompts, type TrafficStats } from './traffic.js';

export { BAD, GOOD, MARKER, ROLLOUT_SPEC, SITES, type RolloutOutcome, type VerifierCpu } from './stages.js';

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

export interface QuickstartSummary {
  ok: boolean;
  workspace: string;
  registry: string;
  conditionalWrites: boolean;
  verifier: { url: string; pid: number };
  sites: { name: string; url: string; pid: number }[];
  traffic: TrafficStats & { acceptance: number | null; tokensPerRound: number | null };
  verifierCpu: VerifierCpu;
  rollouts: RolloutOutcome[];
  /** Every process the quickstart started: CLI children and the daemons. */
  pids: number[];
  /** False with --keep: the verifier and sites are still running. */
  stopped: boolean;
  seconds: number;
}

export async function runQuickstart(opts: QuickstartOptions): Promise<QuickstartSummary> {
  const t0 = performance.now();
  const dir = resolve(opts.dir);
  const env: NodeJS.ProcessEnv = { ...(opts.env ?? process.env), CI: '1' };
  delete env.EDGECTL_RUN_DIR;
  if (opts.registry) env.EDGECTL_REGISTRY = opts.registry;
  else delete env.EDGECTL_REGISTRY;
  mkdirSync(dir, { recursive: true });
  const s = new QuickstartSession({ dir, env, io: opts.io, progress: opts.progress, signal: opts.signal });
  try {
    await s.step(`Workspace ${dir}`, () => createWorkspace(s));
    const registry = await s.step('Keys, trust root and registry', () => initKeysAndRegistry(s));
    await s.step('Publish the draft model, adapters and policy', (report) => publishBundled(s, report));
    const verifier = await s.step('Start the cloud verifier', () => startVerifier(s));
    await s.step('Declare and apply a fleet of 3 sites', () => declareFleet(s, verifier.url));
    const sites = await s.step('Start the sites', (report) => startSites(s, report));

    const prompts = readPrompts(bundled('prompts/support.jsonl'));
    const maxTokens = opts.maxTokens ?? 24;
    const cpuBefore = await verifierStats(verifier.url);
    const live = s.startTraffic({
      sites: sites.map((x) => ({ name: x.name, url: x.url })),
      prompts,
      model: 'draft:support',
      maxTokens,
      temperature: 0,
      concurrency: 1,
    });
    opts.io.log('info', `Sending support chats to ${sites.length} sites (model draft:support)`);

    const rollouts: RolloutOutcome[] = [];
    for (const [candidate, expected] of [
      [GOOD, 'promoted'],
      [BAD, 'rolled-back'],
    ] as const) {
      const timeout = opts.rolloutTimeout ?? '15m';
      rollouts.push(
        await s.step(`Canary ${candidate} (expect ${expected})`, (report) =>
          runCanary(s, { candidate, expected, timeout, live }, report),
        ),
      );
    }

    const stats = await s.stopTraffic();
    const cpuAfterTraffic = await verifierStats(verifier.url);
    const cpu = await s.step('Measure verifier CPU against cloud-only', () =>
      measureVerifierCpu(s, {
        verifierUrl: verifier.url,
        siteUrl: sites[0]?.url,
        prompts,
        maxTokens,
        served: stats,
        cpuBefore,
        cpuAfterTraffic,
      }),
    );

    if (!opts.keep) await s.step('Stop the sites and the verifier', () => s.stopAll());

    return {
      ok: rollouts.every((r) => r.ok),
      workspace: dir,
      registry: registry.url,
      conditionalWrites: registry.conditionalWrites,
      verifier,
      sites,
      traffic: trafficSummary(stats),
      verifierCpu: cpu,
      rollouts,
      pids: [...s.runner.pids, ...s.daemonPids],
      stopped: s.stopped,
      seconds: Math.round((performance.now() - t0) / 100) / 10,
    };
  } catch (err) {
    return s.abandon(err);
  }
}

function trafficSummary(stats: TrafficStats): QuickstartSummary['traffic'] {
  return {
    ...stats,
    acceptance: stats.draftTokens > 0 ? round(stats.acceptedTokens / stats.draftTokens, 3) : null,
    tokensPerRound: stats.verifyRounds > 0 ? round(stats.speculativeTokens / stats.verifyRounds, 2) : null,
  };
}
