/**
 * Shadow steps end to end with real processes: a verifier, three site daemons started with
 * `--shadow-sample 1`, traffic on every site, and `edgectl rollout canary --wait` with a spec whose
 * first step is `shadow`. The bad adapter (`adapter/support@1.2.0`) is rolled back in shadow
 * (exit 5): the shadow site materialized it under `shadow/support` and reported shadow runs, no
 * site ever served it, and the shadow slot is gone afterwards. The good one (1.1.0) passes its
 * shadow step, goes to the first wave and is promoted (exit 0). The log's event sequence is
 * asserted for both.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RolloutReport } from '../../src/rollout/service.js';
import { currentGeneration } from '../../src/site/agent.js';
import {
  ROLLOUT_TIMEOUT,
  SITES,
  STEP_TIMEOUT,
  TWO_ROLLOUTS_MS,
  startLiveFleet,
  waitFor,
  type LiveFleet,
} from './live-fleet.js';

/**
 * Acceptance only, small samples: a shadow step judges nothing else. The margin is 35%, not 20%:
 * shadow runs measure acceptance about 20% under the served drafts of the same adapter bytes (the
 * good candidate in shadow: 0.262 against 0.326 with adaptive k, 0.284 against 0.365 with k pinned at
 * 4; 2026-12-06, load 17-20 on 2 cores), right on a 20% margin, where the sequential test decides
 * neither way and the step stayed inconclusive until its timeout (the CI failure of issue #16). The
 * bad adapter measures -60% to -72%, far past either margin.
 */
const SPEC = `# Acceptance only, small samples: a shadow step judges nothing else.
steps: [shadow, 1, all]
analysis:
  interval: 1s
  metrics:
    - metric: acceptance
      margin: 0.35
      minSamples: 150
      alpha: 0.05
stepTimeout: ${STEP_TIMEOUT}
`;

/** A backstop only (issue #16): the test ends on state, however slow the machine. */
const BACKSTOP = { timeout: TWO_ROLLOUTS_MS };

describe('rollout shadow step end to end (verifier, 3 site daemons, traffic)', BACKSTOP, () => {
  let fleet: LiveFleet;
  const dataDir = (s: string) => fleet.dataDir(s);
  const cli = (...args: string[]) => fleet.cli(...args);

  beforeAll(async () => {
    fleet = await startLiveFleet({
      tempPrefix: 'edgectl-shadow-e2e-',
      spec: SPEC,
      siteUpArgs: ['--shadow-sample', '1'],
    });
  }, 600_000);

  afterAll(async () => {
    await fleet?.stop();
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
      ROLLOUT_TIMEOUT,
      '--json',
    );
    watching = false;
    await watcher;
    const b = bad.json<RolloutReport>();
    expect(
      bad.code,
      `${b.reason}\n${bad.stderr.slice(-2000)}\ntraffic: ${fleet.traffic.batches} batches, ${fleet.traffic.lastError ?? 'no error'}`,
    ).toBe(5);
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
    await waitFor(async () => (await Promise.all(SITES.map(shadowOn))).every((x) => x === undefined));
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
      ROLLOUT_TIMEOUT,
      '--json',
    );
    const g = good.json<RolloutReport>();
    expect(
      good.code,
      `${g.reason}\n${good.stderr.slice(-2000)}\ntraffic: ${fleet.traffic.batches} batches, ${fleet.traffic.lastError ?? 'no error'}`,
    ).toBe(0);
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
  });
});
