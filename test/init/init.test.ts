/**
 * `edgectl init` through the real CLI: the scaffold lints clean and its printed next steps (keys,
 * trust root, registry, publishing the example's artifacts, plan, apply) work as written; the
 * package.json pins this edgectl or what --edgectl-spec names (a local tarball is vendored); the
 * workflow (run as CI would in workflow.test.ts) is YAML GitHub Actions accepts
 * with the expected jobs, and every `run:` script is valid bash; a non-empty directory is refused
 * with nothing written; `--force` reruns are idempotent and keep edited files.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import type { InitResult } from '../../src/init/scaffold.js';
import { REPO_ROOT, runCli } from '../helpers/cli.js';

interface Step {
  name?: string;
  uses?: string;
  run?: string;
  with?: Record<string, unknown>;
  env?: Record<string, string>;
}
interface Workflow {
  name: string;
  on: Record<string, unknown>;
  jobs: Record<string, { if?: string; 'runs-on': string; steps: Step[]; concurrency?: { group: string } }>;
}

/** Every file under dir (relative), with its content, for before/after comparisons. */
function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out.set(relative(dir, p), readFileSync(p, 'utf8'));
    }
  };
  walk(dir);
  return out;
}

describe('edgectl init', () => {
  let tmp: string;
  beforeEach(() => {
    tmp = mkdtempSync(join(tmpdir(), 'edgectl-init-'));
  });
  afterEach(() => rmSync(tmp, { recursive: true, force: true }));

  it('scaffolds a repository that lints clean and runs the first steps from its edgectl.yaml', async () => {
    const dir = join(tmp, 'fleet');
    const r = await runCli(['init', dir, '--json'], { cwd: tmp });
    expect(r.code, r.stderr).toBe(0);
    const result = r.json<InitResult>();
    expect(result.created).toEqual(
      expect.arrayContaining([
        'edgectl.yaml',
        '.gitignore',
        'package.json',
        '.github/workflows/edgectl.yml',
        'artifacts/README.md',
        'artifacts/policies/default/policy.yaml',
        'artifacts/models/draft/model.onnx',
        'artifacts/adapters/support/adapter_model.safetensors',
        'sites/example-001.yaml',
        '.edgectl/sites/example-001/site.key',
      ]),
    );
    expect(result.kept).toEqual([]);
    expect(statSync(result.site.secretKeyPath).mode & 0o777).toBe(0o600);

    // The secret key is ignored by git; the site declaration is not.
    const git = (...args: string[]) => spawnSync('git', args, { cwd: dir, encoding: 'utf8' });
    expect(git('init', '-q').status).toBe(0);
    expect(git('check-ignore', '-q', '.edgectl/sites/example-001/site.key').status).toBe(0);
    expect(git('check-ignore', '-q', 'keys/fleet.key').status).toBe(0);
    expect(git('check-ignore', '-q', 'sites/example-001.yaml').status).toBe(1);
    expect(git('check-ignore', '-q', '.github/workflows/edgectl.yml').status).toBe(1);

    const lint = await runCli(['lint', '--json'], { cwd: dir });
    expect(lint.code, lint.stdout + lint.stderr).toBe(0);
    expect(lint.json<{ files: number }>().files).toBeGreaterThanOrEqual(2);

    // The printed next steps work as written, in order, with the key paths edgectl.yaml names:
    // keys, trust root, registry, the example's artifacts published, then the example site plans
    // and applies.
    expect(result.next.at(-1)).toBe('edgectl site apply');
    for (const line of result.next) {
      for (const command of line.split(' && ')) {
        const args = command.split(' ');
        expect(args.shift()).toBe('edgectl');
        const r = await runCli(args, { cwd: dir });
        expect(r.code, `${command}: ${r.stdout}${r.stderr}`).toBe(0);
        if (args[1] === 'plan') expect(r.stdout).toContain('+ site example-001');
      }
    }
    const list = await runCli(['artifact', 'list', '--json'], { cwd: dir });
    for (const ref of ['policy/default@1.0.0', 'model/draft@1.0.0', 'adapter/support@1.0.0'])
      expect(list.stdout).toContain(ref);
    // Keys written into keys/ stay ignored.
    expect(git('check-ignore', '-q', 'keys/root.key.pub').status).toBe(0);
    expect(git('status', '--porcelain', '--untracked-files=all').stdout).not.toMatch(/\.key/);
  }, 300_000);

  it('writes a GitHub Actions workflow with the plan, apply, publish and rollout jobs', async () => {
    const r = await runCli(['init', 'repo', '--json'], { cwd: tmp });
    expect(r.code, r.stderr).toBe(0);
    const text = readFileSync(join(tmp, 'repo/.github/workflows/edgectl.yml'), 'utf8');
    const wf = parse(text, { strict: true, uniqueKeys: true }) as Workflow;
    expect(Object.keys(wf.on).sort()).toEqual(['pull_request', 'push', 'workflow_dispatch']);
    expect(Object.keys(wf.jobs).sort()).toEqual(['apply', 'plan', 'publish', 'rollout']);
    for (const [name, job] of Object.entries(wf.jobs)) {
      expect(job['runs-on'], name).toBe('ubuntu-latest');
      const setup = job.steps.find((s) => s.uses?.startsWith('actions/setup-node@'));
      expect(setup?.with?.['node-version'], name).toBe(22);
      expect(job.steps.find((s) => s.uses?.startsWith('actions/checkout'))?.uses, name).toMatch(
        /^actions\/checkout@v\d+$/,
      );
    }
    const runs = (job: string) => (wf.jobs[job]?.steps ?? []).map((s) => s.run ?? '').join('\n');
    expect(wf.jobs.plan?.if).toContain('pull_request');
    expect(runs('plan')).toContain('site plan --detailed-exitcode');
    expect(wf.jobs.apply?.if).toContain('refs/heads/main');
    expect(runs('apply')).toContain('edgectl site apply');
    expect(wf.jobs.publish?.if).toContain('refs/tags/v');
    expect(runs('publish')).toContain('edgectl publish artifact');
    expect(runs('rollout')).toMatch(/rollout canary .*--wait/);
    for (const code of ['0)', '5)', '6)', '7)']) expect(runs('rollout')).toContain(code);
    // Writers share one concurrency group; secrets reach keys only through env, never the command line.
    expect(wf.jobs.apply?.concurrency?.group).toBe(wf.jobs.rollout?.concurrency?.group);
    for (const job of Object.values(wf.jobs)) {
      for (const s of job.steps) expect(s.run ?? '').not.toMatch(/secrets\./);
    }

    // Every run script is valid bash once the ${{ }} expressions are substituted.
    for (const [name, job] of Object.entries(wf.jobs)) {
      for (const s of job.steps) {
        if (!s.run) continue;
        const script = s.run.replace(/\$\{\{[^}]*\}\}/g, 'x');
        const check = spawnSync('bash', ['-n'], { input: script, encoding: 'utf8' });
        expect(check.status, `${name}: ${check.stderr}\n${script}`).toBe(0);
      }
    }
  });

  it('pins this version by default, or the --edgectl-spec given (a local tarball is vendored)', async () => {
    const pinned = (dir: string) =>
      (
        JSON.parse(readFileSync(join(tmp, dir, 'package.json'), 'utf8')) as {
          devDependencies: { edgectl: string };
        }
      ).devDependencies.edgectl;
    const version = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string })
      .version;
    const plain = await runCli(['init', 'plain', '--json'], { cwd: tmp });
    expect(plain.code, plain.stderr).toBe(0);
    expect(pinned('plain')).toBe(version);
    expect(plain.json<InitResult>().edgectl).toBe(version);

    writeFileSync(join(tmp, `edgectl-${version}.tgz`), 'not really a tarball, but a file\n');
    const vendored = await runCli(
      ['init', 'vendored', '--edgectl-spec', `./edgectl-${version}.tgz`, '--json'],
      {
        cwd: tmp,
      },
    );
    expect(vendored.code, vendored.stderr).toBe(0);
    expect(pinned('vendored')).toBe(`file:vendor/edgectl-${version}.tgz`);
    expect(readFileSync(join(tmp, `vendored/vendor/edgectl-${version}.tgz`), 'utf8')).toContain('not really');

    const git = await runCli(['init', 'git', '--edgectl-spec', 'github:my-org/edgectl#v1.2.3', '--json'], {
      cwd: tmp,
    });
    expect(git.code, git.stderr).toBe(0);
    expect(pinned('git')).toBe('github:my-org/edgectl#v1.2.3');

    const missing = await runCli(['init', 'missing', '--edgectl-spec', './nope.tgz', '--json'], { cwd: tmp });
    expect(missing.code).toBe(2);
    expect(missing.json<{ error: { code: string } }>().error.code).toBe('E_INIT_EDGECTL_SPEC');
    expect(readdirSync(tmp)).not.toContain('missing');
  });

  it('refuses a non-empty directory without --force and writes nothing', async () => {
    writeFileSync(join(tmp, 'notes.txt'), 'mine\n');
    const before = snapshot(tmp);
    const r = await runCli(['init', tmp, '--json'], { cwd: tmp });
    expect(r.code).toBe(2);
    const err = r.json<{ error: { code: string; suggestion?: string } }>().error;
    expect(err.code).toBe('E_INIT_NOT_EMPTY');
    expect(err.suggestion).toContain('--force');
    expect(snapshot(tmp)).toEqual(before);
    expect(readdirSync(tmp)).toEqual(['notes.txt']);
  });

  it('--force adds missing files, keeps existing ones, and is idempotent', async () => {
    writeFileSync(join(tmp, 'edgectl.yaml'), 'registry: s3://my-bucket/fleet\n');
    const first = await runCli(['init', '.', '--force', '--json'], { cwd: tmp });
    expect(first.code, first.stderr).toBe(0);
    const a = first.json<InitResult>();
    expect(a.kept).toEqual(['edgectl.yaml']);
    expect(readFileSync(join(tmp, 'edgectl.yaml'), 'utf8')).toBe('registry: s3://my-bucket/fleet\n');
    const after1 = snapshot(tmp);

    const second = await runCli(['init', '.', '--force', '--json'], { cwd: tmp });
    expect(second.code, second.stderr).toBe(0);
    const b = second.json<InitResult>();
    expect(b.created).toEqual([]);
    expect(b.site.keyid).toBe(a.site.keyid);
    expect(snapshot(tmp)).toEqual(after1);
  });
});
