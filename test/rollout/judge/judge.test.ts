/**
 * The rollout judge on hand-made and simulated samples: summing windows (same totals as the
 * feedback module, plus the per-window squares), the mixture e-value's calibration, every metric's
 * verdicts (a clearly worse canary fails, an equal one passes or stays inconclusive, low traffic is
 * inconclusive and never fails), minSamples, dryRun, the step decision, and the reason line.
 */
import { describe, expect, it } from 'vitest';
import { sumWindows as feedbackSumWindows } from '../../../src/feedback/report.js';
import {
  stepVerdict,
  judgeMetric,
  judgeStep,
  sumWindows,
  type ArmSample,
  type Judgement,
  type MetricSpec,
} from '../../../src/rollout/judge/index.js';
import { logMixtureEValue, normalCdf } from '../../../src/rollout/judge/stats.js';
import {
  metric,
  normal,
  seededRng,
  simulateMany,
  simulateWindow,
  traffic,
  type Rng,
  type TrafficModel,
} from '../../../src/rollout/judge/simulate.js';

/** `sites` sites of `windows` windows each under `model`. */
function arm(rng: Rng, model: TrafficModel, sites: number, windows: number, prefix: string): ArmSample[] {
  return Array.from({ length: sites }, (_, i) =>
    sumWindows(
      Array.from({ length: windows }, () => simulateWindow(rng, model, model.acceptance)),
      `${prefix}-${i + 1}`,
    ),
  );
}

const busy = (over: Partial<TrafficModel> = {}) => traffic({ requestsPerWindow: 20, ...over });

describe('sumWindows', () => {
  it('sums like the feedback module and keeps per-window squares', () => {
    const rng = seededRng(11);
    const windows = Array.from({ length: 30 }, () => simulateWindow(rng, busy(), 0.7));
    const ours = sumWindows(windows, 'store-001');
    const theirs = feedbackSumWindows(windows);
    expect(ours.site).toBe('store-001');
    expect(ours.windows).toBe(30);
    expect(ours.counters).toEqual(theirs.counters);
    expect(ours.latency.ttftMs.counts).toEqual(theirs.latency.ttftMs.counts);
    expect(ours.latency.e2eMs.count).toBe(theirs.latency.e2eMs.count);
    let sq = 0;
    let n = 0;
    for (const w of windows) {
      if (w.counters.draftTokens === 0) continue;
      n++;
      sq += w.counters.acceptedTokens ** 2 / w.counters.draftTokens;
    }
    expect(ours.dispersion?.acceptance.windows).toBe(n);
    expect(ours.dispersion?.acceptance.sq).toBeCloseTo(sq, 6);
    // Latency squares, per bucket: Σ_w (requests above bucket i's bound)² / requests.
    const brute = new Array<number>(ours.latency.e2eMs.counts.length).fill(0);
    for (const w of windows) {
      const h = w.latency.e2eMs;
      if (h.count === 0) continue;
      for (let i = 0; i < brute.length; i++) {
        const above = h.counts.slice(i + 1).reduce((a, b) => a + b, 0);
        brute[i]! += (above * above) / h.count;
      }
    }
    ours.dispersion?.e2e.sq.forEach((v, i) => expect(v).toBeCloseTo(brute[i]!, 9));
    expect(ours.dispersion?.ttft.sq.at(-1)).toBe(0);
    expect(ours.dispersion?.ttft.windows).toBe(windows.filter((w) => w.latency.ttftMs.count > 0).length);
  });

  it('takes the site from the first report and does not depend on window order', () => {
    const rng = seededRng(12);
    const windows = Array.from({ length: 10 }, () => ({
      ...simulateWindow(rng, busy(), 0.7),
      site: 'store-002',
    }));
    const a = sumWindows(windows);
    const b = sumWindows([...windows].reverse());
    expect(a.site).toBe('store-002');
    expect(b.counters).toEqual(a.counters);
    expect(b.dispersion?.acceptance.sq).toBeCloseTo(a.dispersion?.acceptance.sq ?? NaN, 9);
    expect(sumWindows([]).counters.draftTokens).toBe(0);
  });
});

describe('mixture e-value', () => {
  it('has expectation 1 at the null boundary (it is a mixture of likelihood ratios)', () => {
    const rng = seededRng(13);
    const v = 1e-4;
    const tau = 0.02; // r = τ²/v = 4
    let sum = 0;
    const n = 200_000;
    for (let i = 0; i < n; i++) sum += Math.exp(logMixtureEValue(Math.sqrt(v) * normal(rng), v, tau));
    expect(sum / n).toBeGreaterThan(0.95);
    expect(sum / n).toBeLessThan(1.05);
  });

  it('grows with evidence on its side and is tiny on the other', () => {
    const v = 1e-4;
    expect(logMixtureEValue(0.05, v, 0.05)).toBeGreaterThan(logMixtureEValue(0.03, v, 0.05));
    expect(logMixtureEValue(-0.05, v, 0.05)).toBeLessThan(Math.log(0.05));
    expect(Number.isFinite(logMixtureEValue(-10, v, 0.05))).toBe(true);
    expect(normalCdf(1.959964)).toBeCloseTo(0.975, 6);
  });
});

describe('overdispersion', () => {
  const spec = metric('acceptance', { margin: 0 });
  const phiOf = (j: Judgement) => j.detail?.dispersion.canary ?? NaN;

  it('is about 1 for independent tokens and well above for tokens clustered in requests', () => {
    const rng = seededRng(14);
    const iid = traffic({ tokenModel: 'iid', requestsPerWindow: 2, latency: false });
    const clustered = traffic({ requestsPerWindow: 2, latency: false });
    const a = judgeMetric(spec, arm(rng, iid, 4, 100, 'c'), arm(rng, iid, 4, 100, 'b'));
    const b = judgeMetric(spec, arm(rng, clustered, 4, 100, 'c'), arm(rng, clustered, 4, 100, 'b'));
    expect(phiOf(a)).toBeLessThan(1.4);
    expect(phiOf(b)).toBeGreaterThan(3);
  });

  it('adds the spread between sites when sites differ', () => {
    const rng = seededRng(15);
    const model = traffic({ requestsPerWindow: 2, latency: false });
    const sites = (m: TrafficModel, k: number, p: string) =>
      Array.from({ length: k }, (_, i) =>
        sumWindows(
          Array.from({ length: 60 }, () => simulateWindow(rng, m, m.acceptance)),
          `${p}-${i}`,
        ),
      );
    // Same data shape, but each site with its own rate (logit shift sd 0.3).
    const differing = (k: number, p: string) =>
      Array.from({ length: k }, (_, i) => {
        const rate = 1 / (1 + Math.exp(-(Math.log(0.7 / 0.3) + 0.3 * normal(rng))));
        return sumWindows(
          Array.from({ length: 60 }, () => simulateWindow(rng, model, rate)),
          `${p}-${i}`,
        );
      });
    const same = judgeMetric(spec, sites(model, 15, 'c'), sites(model, 15, 'b'));
    const diff = judgeMetric(spec, differing(15, 'c'), differing(15, 'b'));
    expect(phiOf(diff)).toBeGreaterThan(5 * phiOf(same)); // 108 vs 6.9 with this seed
    // The excess is shared by both arms (it is estimated from both).
    expect((diff.detail?.dispersion.baseline ?? 0) - phiOf(diff)).toBeLessThan(2);
  });
});

describe('acceptance', () => {
  const spec = metric('acceptance', { margin: 0.05, minSamples: 500 });

  it('fails a 10% drop with a reason a person can read', () => {
    const rng = seededRng(21);
    const j = judgeMetric(
      spec,
      arm(rng, busy({ acceptance: 0.63 }), 3, 20, 'c'),
      arm(rng, busy(), 3, 20, 'b'),
    );
    expect(j.verdict).toBe('fail');
    expect(j.evidence.fail).toBeGreaterThanOrEqual(100);
    expect(j.boundary).toBe(100);
    expect(j.value.canary).toBeLessThan(0.66);
    expect(j.samples.canary).toBeGreaterThan(10_000);
    expect(j.sites).toEqual({ canary: ['c-1', 'c-2', 'c-3'], baseline: ['b-1', 'b-2', 'b-3'] });
    expect(j.reason).toMatch(
      /^acceptance 0\.6\d\d vs 0\.[67]\d\d \(-\d+\.\d%, margin -5%\): e-value \S+ >= 100 → fail$/,
    );
    expect(j.detail?.dispersion.canary).toBeGreaterThan(1.5); // tokens are clustered in requests
    expect(JSON.parse(JSON.stringify(j))).toEqual(j);
  });

  it('passes an equal canary with enough traffic', () => {
    const rng = seededRng(22);
    const j = judgeMetric(spec, arm(rng, busy(), 3, 40, 'c'), arm(rng, busy(), 3, 40, 'b'));
    expect(j.verdict).toBe('pass');
    expect(j.evidence.pass).toBeGreaterThanOrEqual(100);
    expect(j.reason).toMatch(/pass e-value \S+ >= 100 → pass$/);
  });

  it('below minSamples in either arm is inconclusive, however bad the canary looks', () => {
    const rng = seededRng(23);
    const canary = arm(rng, traffic({ acceptance: 0.2, requestsPerWindow: 1 }), 1, 3, 'c');
    const baseline = arm(rng, busy(), 3, 40, 'b');
    const few = canary[0]!.counters.draftTokens;
    expect(few).toBeGreaterThan(0);
    const j = judgeMetric({ ...spec, minSamples: few + 1 }, canary, baseline);
    expect(j.verdict).toBe('inconclusive');
    expect(j.evidence).toEqual({ fail: 1, pass: 1 });
    expect(j.reason).toContain(`below minSamples ${few + 1}`);
    expect(j.detail).toBeUndefined();
    // No baseline at all: inconclusive too.
    expect(judgeMetric(spec, baseline, []).verdict).toBe('inconclusive');
    expect(judgeMetric(spec, [], baseline).value).toEqual({ canary: null, baseline: expect.any(Number) });
  });

  it('low traffic with minSamples met is inconclusive, never a rollback', () => {
    // A canary 5% worse (inside a 10% margin) on a trickle of traffic: 300 rollouts, 20 looks each.
    const s = simulateMany(
      24,
      {
        canary: traffic({ acceptance: 0.665, requestsPerWindow: 0.3, latency: false }),
        baseline: traffic({ requestsPerWindow: 0.3, latency: false }),
        canarySites: 1,
        baselineSites: 2,
        windows: 20,
        metrics: [metric('acceptance', { margin: 0.1, minSamples: 200 })],
      },
      300,
    );
    expect(s.rollbacks).toBe(0);
    expect(s.continues).toBeGreaterThan(250);
  });
});

describe('latency, errors and policy violations', () => {
  const specs = {
    ttft: metric('ttft', { margin: 0.1, minSamples: 100 }),
    e2e: metric('e2e', { margin: 0.1, minSamples: 100 }),
    errorRate: metric('errorRate', { margin: 0.1, minSamples: 100 }),
    policyViolations: metric('policyViolations', { margin: 0.1, minSamples: 100 }),
  };

  it('fails a clearly slower canary on ttft and e2e', () => {
    const rng = seededRng(31);
    const slow = busy({ ttft: { medianMs: 160, sigma: 0.5 }, e2e: { medianMs: 3000, sigma: 0.6 } });
    const c = arm(rng, slow, 2, 20, 'c');
    const b = arm(rng, busy(), 4, 20, 'b');
    for (const m of ['ttft', 'e2e'] as const) {
      const j = judgeMetric(specs[m], c, b);
      expect(j.verdict, j.reason).toBe('fail');
      expect(j.value.canary).toBeGreaterThan(j.value.baseline ?? Infinity);
      expect(j.detail?.thresholdMs).toBeGreaterThan(0);
      expect(j.reason).toMatch(new RegExp(`^${m} p95 \\d+ ms vs \\d+ ms; .* of requests above \\d+ ms`));
    }
  });

  it('an equal canary passes or is inconclusive, never fails', () => {
    const rng = seededRng(32);
    for (let k = 0; k < 20; k++) {
      const c = arm(rng, busy(), 2, 20, 'c');
      const b = arm(rng, busy(), 4, 20, 'b');
      for (const m of Object.values(specs)) expect(judgeMetric(m, c, b).verdict).not.toBe('fail');
    }
  });

  it('fails a canary with 5x the errors or 3x the blocks', () => {
    const rng = seededRng(33);
    const c = arm(rng, busy({ errorRate: 0.05, policyBlockRate: 0.06 }), 2, 50, 'c');
    const b = arm(rng, busy(), 4, 50, 'b');
    const e = judgeMetric(specs.errorRate, c, b);
    expect(e.verdict, e.reason).toBe('fail');
    expect(e.reason).toMatch(
      /^errorRate \d\.\d\d% vs \d\.\d\d% \(\+\d+\.\d%, margin \+10% \+0\.1pp\): e-value/,
    );
    expect(judgeMetric(specs.policyViolations, c, b).verdict).toBe('fail');
  });

  it('passes zero errors against zero errors thanks to the absolute allowance', () => {
    const rng = seededRng(34);
    const clean = busy({ errorRate: 0, policyBlockRate: 0 });
    const c = arm(rng, clean, 3, 60, 'c');
    const b = arm(rng, clean, 6, 60, 'b');
    expect(judgeMetric(specs.errorRate, c, b).verdict).toBe('pass');
    // Without it, "no worse than 1.1 x 0" cannot be shown: inconclusive, not fail.
    expect(judgeMetric({ ...specs.errorRate, absoluteMargin: 0 }, c, b).verdict).toBe('inconclusive');
  });

  it('low traffic is inconclusive for every metric, never failed', () => {
    const rng = seededRng(35);
    const bad = traffic({ requestsPerWindow: 1, errorRate: 0.2, ttft: { medianMs: 400, sigma: 0.5 } });
    const c = arm(rng, bad, 1, 5, 'c');
    const b = arm(rng, traffic({ requestsPerWindow: 1 }), 2, 5, 'b');
    for (const m of Object.values(specs)) {
      const j = judgeMetric(m, c, b);
      expect(j.verdict, j.reason).toBe('inconclusive');
      expect(j.reason).toContain('below minSamples 100');
    }
  });
});

describe('judgeStep', () => {
  const rng = seededRng(41);
  const good = busy();
  const c = arm(rng, good, 2, 40, 'c');
  const b = arm(rng, good, 4, 40, 'b');
  const worse = arm(rng, busy({ acceptance: 0.5 }), 2, 40, 'w');

  it('promotes when every metric passes, rolls back on a failure, continues otherwise', () => {
    const acc: MetricSpec = metric('acceptance', { margin: 0.05, minSamples: 500 });
    expect(judgeStep([acc], c, b).decision).toBe('promote');
    expect(judgeStep([acc], worse, b).decision).toBe('rollback');
    const slowToPass = metric('ttft', { margin: 0, absoluteMargin: 0, minSamples: 100 });
    const step = judgeStep([acc, slowToPass], c, b);
    expect(step.judgements.map((j) => j.metric)).toEqual(['acceptance', 'ttft']);
    expect(step.decision).toBe('continue');
  });

  it('dry-run metrics are judged but neither roll back nor hold back a promotion', () => {
    const acc = metric('acceptance', { margin: 0.05, minSamples: 500 });
    const dry = metric('acceptance', { margin: 0.05, minSamples: 500, dryRun: true });
    const failing = judgeStep([dry], worse, b);
    expect(failing.judgements[0]?.verdict).toBe('fail');
    expect(failing.judgements[0]?.dryRun).toBe(true);
    expect(failing.judgements[0]?.reason).toMatch(/→ fail \(dry run\)$/);
    expect(failing.decision).toBe('promote'); // vacuously: no counted metric
    const pending = metric('ttft', { margin: 0, absoluteMargin: 0, minSamples: 100, dryRun: true });
    expect(judgeStep([acc, pending], c, b).decision).toBe('promote');
  });

  it('stepVerdict: any counted fail rolls back, all counted pass promotes', () => {
    const j = (verdict: Judgement['verdict'], dryRun = false) => ({ verdict, dryRun }) as Judgement;
    expect(stepVerdict([j('pass'), j('fail')])).toBe('rollback');
    expect(stepVerdict([j('pass'), j('inconclusive')])).toBe('continue');
    expect(stepVerdict([j('pass'), j('fail', true), j('inconclusive', true)])).toBe('promote');
    expect(stepVerdict([j('inconclusive'), j('fail', true)])).toBe('continue');
    expect(stepVerdict([])).toBe('promote');
  });
});
