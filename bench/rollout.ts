/**
 * Rollout benchmark (`npm run bench:rollout`, which then runs the judge benchmark
 * bench/rollout-judge.ts): prints one JSON object.
 *
 * Rollback latency: from the moment the evidence crosses the boundary (the feedback window that
 * makes the judge fail is in the registry) to the rollback applied on every canary site (each
 * canary site's `current` is back on its previous generation). Target: <= 2 sync intervals.
 *
 * Setup per trial: 6 real site data directories, each with a real sync agent looping every sync
 * interval against a directory registry holding real published artifacts (policy, a tiny ONNX
 * draft model, adapters support 1.0.0 and 1.2.0); a rollout of 1.2.0 with waves 3/6; the
 * controller running its loop (`runController`) at the spec's interval, equal to the sync
 * interval as in the defaults (30 s both). The sites' feedback is synthesized with the real
 * signing code: neutral windows every second, then, from a uniformly random moment, the canary
 * sites' windows with acceptance 0.40 against 0.70 until the judge (run by the bench on the same
 * signed feedback) says rollback: that is the crossing. The result splits the latency
 * into the controller's part (until the abort entry is in the log) and the sites' part (until the
 * last canary site switched), and gives, as the baseline of the same run, how long the forward
 * install of the candidate took (download + verify + build) against the rollback's sync (the
 * previous generation is still on disk, so nothing is downloaded).
 *
 * Env: ROLLOUT_BENCH_INTERVAL (default 30s; also runs a 2s series unless ROLLOUT_BENCH_FAST=0),
 * ROLLOUT_BENCH_TRIALS (default 2 at the default interval, 5 for the fast series).
 */
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import type { RolloutState } from '../src/fleet/rollout-ops.js';
import { FsStore } from '../src/registry/fs-store.js';
import { parseDuration } from '../src/foundation/duration.js';
import { startOps } from '../src/rollout/actions.js';
import { appendEntry, readLatest } from '../src/rollout/append.js';
import { runController } from '../src/rollout/controller.js';
import { FeedbackCache, stepEvidence } from '../src/rollout/evidence.js';
import { judgeStep } from '../src/rollout/judge/index.js';
import { normalizeSpec } from '../src/rollout/spec.js';
import { tempDir } from '../test/site/fixtures.js';
import { siteFleet } from '../test/rollout/sites.js';
import { feedbackWriter } from '../test/rollout/world.js';

const SITES = 6;
const CANDIDATE = 'adapter/support@1.2.0';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;

interface Trial {
  latencyS: number;
  controllerS: number;
  sitesS: number;
  intervals: number;
  installSyncMs: number;
  rollbackSyncMs: number;
  installBytes: number;
  rollbackBytes: number;
}

async function trial(intervalMs: number): Promise<Trial> {
  const store = new FsStore(join(tempDir('edgectl-bench-rollout-'), 'registry'));
  const f = await siteFleet(store, SITES);
  const stopAgents = f.startAgents(intervalMs);
  const controller = new AbortController();
  try {
    const until = async (ok: () => Promise<boolean>, ms: number) => {
      const end = Date.now() + ms;
      while (!(await ok())) {
        if (Date.now() > end) throw new Error('bench: timed out');
        await sleep(25);
      }
    };
    const all = async (ref: string, sites: string[]) =>
      (await Promise.all(sites.map((s) => f.currentAdapter(s)))).every((a) => a === ref);
    await until(() => all('adapter/support@1.0.0', f.sites), 4 * intervalMs + 30_000);

    const w = { store, trust: f.t.trust, signers: [f.t.fleet], clock: () => new Date() };
    // A long soak keeps the neutral phase from promoting: only the rollback path is measured.
    const spec = normalizeSpec(
      {},
      { candidate: CANDIDATE, steps: '50', interval: `${intervalMs}ms`, pause: '1h', stepTimeout: '1h' },
    );
    const candidate = { ref: CANDIDATE, manifestDigest: f.digests[CANDIDATE] as string };
    const started = await appendEntry(w, (fleet) => ({
      ops: startOps(fleet.state, { id: 'bench', spec, candidate, by: 'bench' }).ops,
    }));
    const r = started.fleet.state.rollouts?.bench as RolloutState;
    const installFrom = f.switches.length;
    const changesFrom = f.changes.length;
    await until(() => all(CANDIDATE, r.canary), 4 * intervalMs + 30_000);

    let abortAt = 0;
    const deps = { ...w, judge: judgeStep, by: 'bench', cache: new FeedbackCache() };
    const run = runController(deps, 'bench', {
      signal: controller.signal,
      onTick: (t) => {
        if (t.rollout.status === 'aborted' && abortAt === 0) abortAt = performance.now();
      },
    });
    const feedback = feedbackWriter(store, f.t.trust, f.keys);
    const window = async (bad: boolean) => {
      for (const s of f.sites) {
        const ctx = await f.context(s);
        const onCandidate = ctx?.refs.adapters.some((a) => a.ref === CANDIDATE) ?? false;
        await feedback(s, {
          acceptance: bad && onCandidate ? 0.4 : 0.7,
          ...(ctx ? { refs: ctx.refs, fleetSeq: ctx.fleetSeq } : {}),
        });
      }
    };
    const crossAfter = 1000 + Math.random() * intervalMs;
    const t0 = performance.now();
    while (performance.now() - t0 < crossAfter) {
      await window(false);
      await sleep(1000);
    }
    // Bad windows until the evidence crosses the boundary: the judge, run here on the same
    // signed feedback the controller reads, says rollback. That moment is the start of the clock.
    let crossedAt = 0;
    const probe = new FeedbackCache();
    for (let i = 0; i < 120 && crossedAt === 0; i++) {
      await window(true);
      const { applied } = await readLatest(store, f.t.trust, new Date());
      const cur = applied.state.rollouts?.bench as RolloutState;
      await probe.refresh(store, applied.state, cur.sites, new Date(Date.parse(cur.stepTime) - 60_000));
      const ev = stepEvidence(applied.state, cur, (x) => probe.reports(x));
      if (
        judgeStep(spec.metrics, ev.canary, ev.baseline).decision === 'rollback' ||
        cur.status === 'aborted'
      ) {
        crossedAt = performance.now();
      } else await sleep(1000);
    }
    const backFrom = f.switches.length;
    const changesMid = f.changes.length;
    await until(() => all('adapter/support@1.0.0', r.canary), 4 * intervalMs + 30_000);
    await until(
      () =>
        Promise.resolve(
          f.switches
            .slice(backFrom)
            .filter((s) => r.canary.includes(s.site) && s.adapter === 'adapter/support@1.0.0').length >=
            r.canary.length,
        ),
      5_000,
    );
    const backs = f.switches
      .slice(backFrom)
      .filter((s) => r.canary.includes(s.site) && s.adapter === 'adapter/support@1.0.0');
    const installs = f.switches
      .slice(installFrom, backFrom)
      .filter((s) => r.canary.includes(s.site) && s.adapter === CANDIDATE);
    const doneAt = Math.max(...backs.map((s) => s.at));
    const bytes = (from: number, to: number) =>
      f.changes
        .slice(from, to)
        .filter((c) => r.canary.includes(c.site))
        .reduce((a, c) => a + c.bytes, 0) / r.canary.length;
    controller.abort();
    await run;
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
    return {
      latencyS: round((doneAt - crossedAt) / 1000),
      controllerS: round((abortAt - crossedAt) / 1000),
      sitesS: round((doneAt - abortAt) / 1000),
      intervals: round((doneAt - crossedAt) / intervalMs),
      installSyncMs: Math.round(mean(installs.map((s) => s.syncMs))),
      rollbackSyncMs: Math.round(mean(backs.map((s) => s.syncMs))),
      installBytes: Math.round(bytes(changesFrom, changesMid)),
      rollbackBytes: Math.round(bytes(changesMid, f.changes.length)),
    };
  } finally {
    controller.abort();
    await stopAgents();
    await store.close();
  }
}

async function series(intervalMs: number, trials: number) {
  const results: Trial[] = [];
  for (let i = 0; i < trials; i++) results.push(await trial(intervalMs));
  const max = (k: keyof Trial) => Math.max(...results.map((r) => r[k]));
  const mean = (k: keyof Trial) => round(results.reduce((a, r) => a + r[k], 0) / results.length);
  return {
    syncIntervalS: intervalMs / 1000,
    controllerIntervalS: intervalMs / 1000,
    trials: results,
    maxLatencyS: max('latencyS'),
    meanLatencyS: mean('latencyS'),
    maxIntervals: max('intervals'),
    targetIntervals: 2,
    pass: max('intervals') <= 2,
    baseline: {
      what: 'per canary site: the sync that installed the candidate against the sync that rolled it back',
      installSyncMs: mean('installSyncMs'),
      rollbackSyncMs: mean('rollbackSyncMs'),
      installBytes: mean('installBytes'),
      rollbackBytes: mean('rollbackBytes'),
    },
  };
}

async function main() {
  const intervalMs = parseDuration(process.env.ROLLOUT_BENCH_INTERVAL ?? '30s', 'ROLLOUT_BENCH_INTERVAL');
  const loadAverage: Record<string, number> = { start: round(loadavg()[0] ?? 0) };
  const out: Record<string, unknown> = {
    bench: 'rollout',
    date: new Date().toISOString(),
    machine: { cpus: cpus().length, model: cpus()[0]?.model ?? 'unknown', node: process.version },
    loadAverage,
    sites: SITES,
    canarySites: SITES / 2,
  };
  if (process.env.ROLLOUT_BENCH_FAST !== '0') {
    out.fast = await series(2000, Number(process.env.ROLLOUT_BENCH_TRIALS ?? 5));
  }
  out.default = await series(intervalMs, Number(process.env.ROLLOUT_BENCH_TRIALS ?? 2));
  loadAverage.end = round(loadavg()[0] ?? 0);
  process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
}

await main();
