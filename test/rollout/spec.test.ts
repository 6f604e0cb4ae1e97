/**
 * Rollout specs: defaults, flag overrides, errors that name file:line and field, and `edgectl lint`
 * checking rollouts/*.yaml (the linter in-process and through the built CLI).
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { UserError } from '../../src/foundation/errors.js';
import { lintSpecText } from '../../src/rollout/lint.js';
import { DEFAULT_METRICS, METRIC_DEFAULTS, normalizeSpec, parseSpecText } from '../../src/rollout/spec.js';
import { runCli } from '../helpers/cli.js';

const FULL = `candidate: adapter/support@1.1.0
sites: tier=branch,region=eu
steps:
  - 10%
  - sites: 50%
    pause: 5m
  - all
analysis:
  interval: 15s
  metrics:
    - metric: acceptance
      margin: 0.03
      minSamples: 5000
    - metric: ttft
      dryRun: true
pause: 1m
stepTimeout: 20m
timeout: 2h
onInconclusive: rollback
abort:
  errorRate: 0.3
  minRequests: 100
`;

function problemsOf(fn: () => unknown) {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(UserError);
    return (err as UserError).details?.problems as { line: number; field: string; message: string }[];
  }
  throw new Error('expected a UserError');
}

describe('rollout spec', () => {
  it('fills the documented defaults', () => {
    const s = normalizeSpec({}, { candidate: 'adapter/support@1.1.0' });
    expect(s.sites).toBe('');
    expect(s.steps.map((x) => x.size)).toEqual([{ share: 10 }, { share: 50 }, { share: 100 }]);
    expect(s.metrics.map((m) => m.metric)).toEqual([...DEFAULT_METRICS]);
    expect(s.metrics[0]).toEqual({ metric: 'acceptance', ...METRIC_DEFAULTS.acceptance });
    expect(s.metrics[0]?.margin).toBe(0.05);
    expect(s).toMatchObject({
      intervalMs: 30_000,
      timeoutMs: 6 * 3_600_000,
      onInconclusive: 'pause',
      abort: { errorRate: 0.5, minRequests: 50, speculativeDrop: 0.5 },
    });
    expect(s.steps[0]).toMatchObject({ pauseMs: 0, timeoutMs: 30 * 60_000 });
  });

  it('reads a full spec, and flags override it', () => {
    const file = parseSpecText(FULL, 'rollouts/support.yaml').value;
    const s = normalizeSpec(file);
    expect(s.steps).toEqual([
      { size: { share: 10 }, pauseMs: 60_000, timeoutMs: 20 * 60_000 },
      { size: { share: 50 }, pauseMs: 5 * 60_000, timeoutMs: 20 * 60_000 },
      { size: { all: true }, pauseMs: 60_000, timeoutMs: 20 * 60_000 },
    ]);
    expect(s.metrics).toEqual([
      { metric: 'acceptance', margin: 0.03, minSamples: 5000, dryRun: false, alpha: 0.01 },
      { metric: 'ttft', ...METRIC_DEFAULTS.ttft, dryRun: true },
    ]);
    expect(s).toMatchObject({ intervalMs: 15_000, timeoutMs: 7_200_000, onInconclusive: 'rollback' });
    const o = normalizeSpec(file, {
      candidate: 'adapter/support@1.2.0',
      steps: '1 site,50',
      sites: 'tier=hq',
    });
    expect(o.candidate).toBe('adapter/support@1.2.0');
    expect(o.sites).toBe('tier=hq');
    expect(o.steps.map((x) => x.size)).toEqual([{ count: 1 }, { share: 50 }]);
    // In YAML a bare integer is a count of sites; in --steps it is a share.
    expect(
      normalizeSpec(parseSpecText('steps: [2, 50%]\n', 'f.yaml').value, { candidate: 'model/a@1.0.0' })
        .steps[0]?.size,
    ).toEqual({ count: 2 });
  });

  it('names file, line and field of every problem', () => {
    const text = FULL.replace('margin: 0.03', 'margin: lots')
      .replace('onInconclusive: rollback', 'onInconclusive: shrug')
      .replace('  - all', '  - most');
    const problems = problemsOf(() => parseSpecText(text, 'rollouts/support.yaml'));
    const byField = Object.fromEntries(problems.map((p) => [p.field, p.line]));
    expect(byField['analysis.metrics.0.margin']).toBe(12);
    expect(byField.onInconclusive).toBe(19);
    expect(byField['steps.2']).toBe(7);
    const unknown = problemsOf(() => parseSpecText('candidate: adapter/a@1.0.0\nwaves: [1]\n', 'r.yaml'));
    expect(unknown[0]).toMatchObject({ line: 2, field: 'waves', message: 'unknown field "waves"' });
    const badRef = problemsOf(() => parseSpecText('candidate: support-1.1\n', 'r.yaml'));
    expect(badRef[0]?.message).toMatch(/invalid artifact ref/);
    const badSel = problemsOf(() => parseSpecText('sites: "tier="\n', 'r.yaml'));
    expect(badSel[0]?.field).toBe('sites');
    expect(() => normalizeSpec({}, {})).toThrow(/no candidate/);
    expect(() => normalizeSpec({}, { candidate: 'adapter/a@1.0.0', steps: '10,abc' })).toThrow(/--steps/);
  });

  it('lint finds steps that would never run and all-dry-run analyses', () => {
    const text =
      'steps: [50%, 10%, all]\nanalysis:\n  metrics:\n    - metric: acceptance\n      dryRun: true\n';
    const problems = lintSpecText(text, 'rollouts/x.yaml');
    expect(problems.map((p) => [p.line, p.field])).toEqual([
      [1, 'steps.1'],
      [4, 'analysis.metrics'],
    ]);
    expect(lintSpecText(FULL, 'rollouts/support.yaml')).toEqual([]);
  });
});

describe('edgectl lint with rollouts/', () => {
  it('checks rollouts/*.yaml and exits 2 naming file:line', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'edgectl-rollout-lint-'));
    writeFileSync(join(dir, 'edgectl.yaml'), 'registry: file:registry\n');
    mkdirSync(join(dir, 'rollouts'));
    writeFileSync(join(dir, 'rollouts/good.yaml'), FULL);
    const ok = await runCli(['lint', '--json'], { cwd: dir });
    expect(ok.code).toBe(0);
    writeFileSync(
      join(dir, 'rollouts/bad.yaml'),
      'candidate: adapter/support@1.1.0\nabort:\n  errorRate: 2\n',
    );
    const bad = await runCli(['lint'], { cwd: dir });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('rollouts/bad.yaml:3: abort.errorRate');
  });
});
