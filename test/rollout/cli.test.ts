/**
 * The rollout commands as real child processes against a directory registry, with the test
 * process playing the sites: it writes signed feedback windows for every selected site while the
 * controller runs. Covers the exit codes CI gates on (0 promoted, 5 rolled back, 6 paused), the
 * `--json` result (every judgement with metric, value, boundary, evidence, samples, sites), a
 * controller killed with SIGKILL mid-rollout and `rollout resume --wait` finishing it from the
 * log, and the manual commands (pause, promote, abort, undo, history, status).
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { RolloutState } from '../../src/fleet/rollout-ops.js';
import { FsStore } from '../../src/registry/fs-store.js';
import type { RolloutReport } from '../../src/rollout/service.js';
import { NODE, RUN_JS, runCli } from '../helpers/cli.js';
import { writeProject } from '../fleet/registry-fixture.js';
import { REFS, rolloutWorld, type RolloutWorld, type Traffic } from './world.js';

const stores: FsStore[] = [];
afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close()));
});

async function project(sites = 4): Promise<{ w: RolloutWorld; dir: string }> {
  const { mkdtempSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const dir = mkdtempSync(join(tmpdir(), 'edgectl-rollout-cli-'));
  const store = new FsStore(join(dir, 'registry'));
  stores.push(store);
  const w = await rolloutWorld(store, { sites });
  writeProject(dir, w.t);
  return { w, dir };
}

/** Plays the sites: one feedback window per selected site every `everyMs` until stopped. */
function feeder(
  w: RolloutWorld,
  traffic: (site: string, r: RolloutState) => Traffic | undefined,
  everyMs = 100,
) {
  let stopped = false;
  const done = (async () => {
    while (!stopped) {
      const { state } = await w.state();
      for (const r of Object.values(state.rollouts ?? {})) {
        if (r.status !== 'running') continue;
        for (const s of r.sites) {
          const t = traffic(s, r);
          if (t) await w.feedback(s, t);
        }
      }
      await new Promise((res) => setTimeout(res, everyMs));
    }
  })();
  return async () => {
    stopped = true;
    await done;
  };
}

const acceptance = (canary: number) => (s: string, r: RolloutState) => ({
  acceptance: r.canary.includes(s) ? canary : 0.7,
});

function adapters(state: Awaited<ReturnType<RolloutWorld['state']>>['state'], sites: string[]) {
  return sites.map((s) => state.sites[s]?.assignments.adapters.map((a) => a.ref).join(','));
}

describe('rollout commands', () => {
  it('canary --wait: a good candidate is promoted (exit 0) and --json lists every judgement', async () => {
    const { w, dir } = await project();
    const stop = feeder(w, acceptance(0.71));
    const r = await runCli(
      [
        'rollout',
        'canary',
        REFS.good,
        '--sites',
        'tier=branch',
        '--steps',
        '25,50,100',
        '--wait',
        '--interval',
        '100ms',
        '--json',
      ],
      { cwd: dir },
    );
    await stop();
    expect(r.code, r.stderr).toBe(0);
    const out = r.json<RolloutReport>();
    expect(out.outcome).toBe('promoted');
    expect(out.exitCode).toBe(0);
    expect(out.events.map((e) => e.op.replace('rollout.', ''))).toEqual(
      expect.arrayContaining(['start', 'step', 'judgement', 'promote']),
    );
    expect(out.events[0]?.op).toBe('rollout.start');
    expect(out.events.at(-1)?.op).toBe('rollout.promote');
    expect(out.judgements.length).toBeGreaterThan(0);
    const j = out.judgements.at(-1)?.judgements[0];
    expect(j).toMatchObject({ metric: 'acceptance', verdict: 'pass' });
    for (const k of ['value', 'boundary', 'evidence', 'samples', 'sites', 'reason'])
      expect(j).toHaveProperty(k);
    expect(adapters((await w.state()).state, w.sites)).toEqual(w.sites.map(() => REFS.good));
    // Progress went to stderr as plain lines.
    expect(r.stderr).toMatch(/\[support-1\.1\.0-[0-9a-f]{4}\] step 1\/3/);
  });

  it('canary --wait: a bad candidate is rolled back (exit 5), every site back on its previous ref', async () => {
    const { w, dir } = await project();
    const stop = feeder(w, acceptance(0.4));
    const r = await runCli(
      ['rollout', 'canary', REFS.bad, '--steps', '25,50,100', '--wait', '--interval', '100ms'],
      {
        cwd: dir,
      },
    );
    await stop();
    expect(r.code, r.stderr).toBe(5);
    expect(r.stdout).toMatch(/ROLLED BACK \(exit 5\)/);
    expect(r.stdout).toMatch(/acceptance/);
    expect(adapters((await w.state()).state, w.sites)).toEqual(w.sites.map(() => REFS.base));
    const hist = await runCli(['rollout', 'history', '--json'], { cwd: dir });
    expect(hist.json<{ rollouts: { status: string }[] }>().rollouts[0]?.status).toBe('aborted');
    const status = await runCli(['rollout', 'status'], { cwd: dir });
    expect(status.code).toBe(5);
  });

  it('low traffic: paused at the step timeout (exit 6), never rolled back', async () => {
    const { w, dir } = await project();
    const stop = feeder(w, (s, r) => ({ requests: 2, ...acceptance(0.2)(s, r) }));
    const r = await runCli(
      ['rollout', 'canary', REFS.bad, '--wait', '--interval', '100ms', '--step-timeout', '1500ms', '--json'],
      { cwd: dir },
    );
    await stop();
    expect(r.code, r.stderr).toBe(6);
    const out = r.json<RolloutReport>();
    expect(out.outcome).toBe('paused');
    expect(out.rollout.pauseReason).toBe('inconclusive');
    expect(out.events.map((e) => e.op)).not.toContain('rollout.abort');
  });

  it('a controller killed mid-rollout: `rollout resume --wait` finishes it from the log', async () => {
    const { w, dir } = await project(6);
    const stop = feeder(w, acceptance(0.71));
    const child = spawn(
      NODE,
      [
        RUN_JS,
        'rollout',
        'canary',
        REFS.good,
        '--steps',
        '20,50,100',
        '--wait',
        '--interval',
        '150ms',
        '--id',
        'killme',
      ],
      { cwd: dir, env: { ...process.env, CI: '1' }, stdio: 'ignore' },
    );
    const exited = new Promise((res) => child.on('exit', res));
    // Kill it as soon as wave 2 is in the log.
    let r: RolloutState | undefined;
    for (let i = 0; i < 300; i++) {
      r = (await w.state()).state.rollouts?.killme;
      if (r && r.step >= 2) break;
      await new Promise((res) => setTimeout(res, 50));
    }
    child.kill('SIGKILL');
    await exited;
    r = (await w.state()).state.rollouts?.killme;
    expect(r?.status).toBe('running');
    expect(r?.step).toBe(2);
    const status = await runCli(['rollout', 'status', '--json'], { cwd: dir });
    expect(status.code).toBe(0);
    expect(status.json<RolloutReport>().rollout.step).toBe(2);
    const resumed = await runCli(['rollout', 'resume', '--wait', '--interval', '150ms', '--json'], {
      cwd: dir,
    });
    await stop();
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.json<RolloutReport>().outcome).toBe('promoted');
    const steps = resumed.json<RolloutReport>().events.filter((e) => e.op === 'rollout.step');
    expect(steps.map((e) => e.summary.slice(0, 6))).toEqual(['step 1', 'step 2']);
    expect(adapters((await w.state()).state, w.sites)).toEqual(w.sites.map(() => REFS.good));
  });

  it('manual control: pause, promote, promote --full, undo; abort a running one', async () => {
    const { w, dir } = await project();
    const start = await runCli(
      ['rollout', 'canary', REFS.good, '--steps', '25,50,100', '--id', 'manual', '--json'],
      {
        cwd: dir,
      },
    );
    expect(start.code, start.stderr).toBe(0);
    expect(start.json<RolloutReport>().outcome).toBe('running');
    const pause = await runCli(['rollout', 'pause', '--reason', 'freeze', '--json'], { cwd: dir });
    expect(pause.json<RolloutReport>().rollout.status).toBe('paused');
    const step = await runCli(['rollout', 'promote', '--json'], { cwd: dir });
    expect(step.json<RolloutReport>().rollout).toMatchObject({ status: 'running', step: 2 });
    const full = await runCli(['rollout', 'promote', 'manual', '--full', '--json'], { cwd: dir });
    expect(full.json<RolloutReport>().outcome).toBe('promoted');
    expect(adapters((await w.state()).state, w.sites)).toEqual(w.sites.map(() => REFS.good));
    const again = await runCli(['rollout', 'abort', 'manual'], { cwd: dir });
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/rollout undo/);
    const undo = await runCli(['rollout', 'undo', '--json'], { cwd: dir });
    expect(undo.code, undo.stderr).toBe(0);
    expect(undo.json<RolloutReport>().outcome).toBe('undone');
    expect(adapters((await w.state()).state, w.sites)).toEqual(w.sites.map(() => REFS.base));

    await runCli(['rollout', 'canary', REFS.bad, '--id', 'second'], { cwd: dir });
    const abort = await runCli(['rollout', 'abort', '--json'], { cwd: dir });
    expect(abort.code).toBe(0);
    expect(abort.json<RolloutReport>().outcome).toBe('rolled-back');
    expect(adapters((await w.state()).state, w.sites)).toEqual(w.sites.map(() => REFS.base));
    const none = await runCli(['rollout', 'abort'], { cwd: dir });
    expect(none.code).toBe(3);
  });
});
