/**
 * Rollout judge benchmark (`npm run bench:rollout-judge`, also part of `bench:rollout`): prints one
 * JSON object with the cost of judging a large fleet, target <= 1 s for 10,000 sites x 100 windows
 * including summing each site's windows into an ArmSample.
 *
 * 1. `oneLook`: sumWindows over 10,000 sites x 100 windows (1,000 canary sites, 9,000 baseline),
 *    then judgeStep with all five metrics. Baseline in the same run: the same sums with the
 *    feedback module's `sumWindows` (which allocates a merged copy per window).
 * 2. `everyWindow`: the controller's incremental path: 100 rounds of addWindow for every site,
 *    each followed by a judgeStep (100 looks).
 *
 * Windows come from the judge's seeded simulator (realistic token model); 500 distinct site
 * histories are generated once (untimed) and reused across the 10,000 sites to bound memory.
 * Each figure is the median of 5 timed rounds after a warm-up round; `cpuMs` (process CPU time)
 * separates the work from contention on a shared machine.
 */
import { cpus, loadavg } from 'node:os';
import { sumWindows as feedbackSumWindows } from '../src/feedback/report.js';
import {
  addWindow,
  emptyArmSample,
  judgeStep,
  sumWindows,
  type ArmSample,
} from '../src/rollout/judge/index.js';
import { metric, seededRng, simulateWindow, traffic, type SimWindow } from '../src/rollout/judge/simulate.js';

const SITES = Number(process.env.JUDGE_BENCH_SITES ?? 10_000);
const WINDOWS = Number(process.env.JUDGE_BENCH_WINDOWS ?? 100);
const HISTORIES = 500;
const ROUNDS = 5;
const CANARY_SHARE = 0.1;

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const ms = (x: number): number => Math.round(x * 10) / 10;

function timed(fn: () => void): number {
  const t0 = performance.now();
  fn();
  return performance.now() - t0;
}

const load0 = loadavg()[0]!;
const rng = seededRng(2026);
const model = traffic({ requestsPerWindow: 5 });
const histories: SimWindow[][] = Array.from({ length: HISTORIES }, () =>
  Array.from({ length: WINDOWS }, () => simulateWindow(rng, model, model.acceptance)),
);
const metrics = [
  metric('acceptance', { margin: 0.02, minSamples: 500 }),
  metric('ttft', { margin: 0.1 }),
  metric('e2e', { margin: 0.1 }),
  metric('errorRate', { margin: 0.1 }),
  metric('policyViolations', { margin: 0.1 }),
];
const nCanary = Math.round(SITES * CANARY_SHARE);
const names = Array.from({ length: SITES }, (_, i) => `site-${String(i).padStart(5, '0')}`);

let decision = '';
function oneLook(): { sum: number; judge: number; cpu: number } {
  const samples: ArmSample[] = new Array<ArmSample>(SITES);
  const cpu0 = process.cpuUsage();
  const sum = timed(() => {
    for (let s = 0; s < SITES; s++) samples[s] = sumWindows(histories[s % HISTORIES]!, names[s]);
  });
  const judge = timed(() => {
    decision = judgeStep(metrics, samples.slice(0, nCanary), samples.slice(nCanary)).decision;
  });
  const cpu = process.cpuUsage(cpu0);
  return { sum, judge, cpu: (cpu.user + cpu.system) / 1000 };
}

function feedbackSums(): number {
  let sink = 0;
  const t = timed(() => {
    for (let s = 0; s < SITES; s++)
      sink += feedbackSumWindows(histories[s % HISTORIES]!).counters.draftTokens;
  });
  if (sink < 0) console.error(sink);
  return t;
}

function everyWindow(): { total: number; judge: number } {
  const samples = names.map((n) => emptyArmSample(n));
  let judge = 0;
  const total = timed(() => {
    for (let w = 0; w < WINDOWS; w++) {
      for (let s = 0; s < SITES; s++) addWindow(samples[s]!, histories[s % HISTORIES]![w]!);
      judge += timed(() => {
        decision = judgeStep(metrics, samples.slice(0, nCanary), samples.slice(nCanary)).decision;
      });
    }
  });
  return { total, judge };
}

const look: { sum: number; judge: number; cpu: number }[] = [];
const base: number[] = [];
const every: { total: number; judge: number }[] = [];
for (let r = 0; r <= ROUNDS; r++) {
  const a = oneLook();
  const b = feedbackSums();
  const c = everyWindow();
  if (r === 0) continue;
  look.push(a);
  base.push(b);
  every.push(c);
}

const oneLookMs = median(look.map((x) => x.sum + x.judge));
console.log(
  JSON.stringify(
    {
      bench: 'rollout-judge',
      date: new Date().toISOString(),
      machine: { cpus: cpus().length, cpu: cpus()[0]?.model, node: process.version },
      loadAverage: { start: load0, end: loadavg()[0] },
      sites: SITES,
      windowsPerSite: WINDOWS,
      canarySites: nCanary,
      metrics: metrics.map((m) => m.metric),
      decision,
      oneLook: {
        totalMs: ms(oneLookMs),
        sumWindowsMs: ms(median(look.map((x) => x.sum))),
        judgeStepMs: ms(median(look.map((x) => x.judge))),
        cpuMs: ms(median(look.map((x) => x.cpu))),
        targetMs: 1000,
        met: oneLookMs <= 1000,
      },
      baseline: {
        what: "the same sums with src/feedback/report.ts's sumWindows (a merged copy per window)",
        sumWindowsMs: ms(median(base)),
      },
      everyWindow: {
        what: `${WINDOWS} rounds of addWindow for every site, each followed by judgeStep`,
        totalMs: ms(median(every.map((x) => x.total))),
        judgeStepMsPerLook: ms(median(every.map((x) => x.judge)) / WINDOWS),
      },
    },
    null,
    2,
  ),
);
