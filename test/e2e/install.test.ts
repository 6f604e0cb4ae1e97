/**
 * The package as a new user gets it: `npm pack` in this checkout, `npm install -g` of the tarball
 * into a fresh prefix with the machine's own npm and Node (Node 20 here: the launcher must run
 * itself under the bundled Node 22), then `<prefix>/bin/edgectl --version` and one `edgectl
 * quickstart` from a directory outside the repository, so nothing can come from the checkout.
 *
 * npm runs with the test's npm_* variables removed (under `npm test` they would point it at this
 * project) and prefers its cache, which `npm install` in the checkout filled; the registry is asked
 * only for what the cache lacks. ONNXRUNTIME_NODE_INSTALL=skip, as in the README: edgectl runs
 * onnxruntime on the CPU and needs none of the CUDA libraries its install script would download.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { QuickstartSummary } from '../../src/quickstart/quickstart.js';
import { REPO_ROOT } from '../helpers/cli.js';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** The environment of a user's shell: no npm_* variables and no project node_modules/.bin on PATH. */
function userEnv(extraPath: string[] = []): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k)) env[k] = v;
  const path = (process.env.PATH ?? '').split(delimiter).filter((p) => !p.includes('node_modules'));
  env.PATH = [...extraPath, ...path].join(delimiter);
  env.ONNXRUNTIME_NODE_INSTALL = 'skip';
  env.CI = '1';
  delete env.EDGECTL_REGISTRY;
  delete env.EDGECTL_REEXEC;
  return env;
}

function run(
  cmd: string,
  args: string[],
  cwd: string,
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 128, stdout, stderr });
    });
  });
}

describe('npm pack + npm install -g, then edgectl quickstart', () => {
  let tmp: string;
  beforeAll(() => {
    tmp = mkdtempSync(join(tmpdir(), 'edgectl-install-test-'));
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('installs from the tarball on the system Node and runs the quickstart on Node 22', async () => {
    const env = userEnv();
    // Phase timings in the log: this test is a large share of the suite's time.
    let t = performance.now();
    const lap = (what: string) => {
      console.info(`${what}: ${Math.round(performance.now() - t)} ms`);
      t = performance.now();
    };
    const systemNode = await run('node', ['--version'], tmp, env, 10_000);
    const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };

    // dist/ is fresh (the vitest globalSetup built it), so the pack skips `prepare`: rebuilding
    // would delete dist/ under the other test files running now.
    const pack = await run(
      'npm',
      ['pack', '--ignore-scripts', '--pack-destination', tmp, '--json'],
      REPO_ROOT,
      env,
      120_000,
    );
    expect(pack.code, pack.stderr).toBe(0);
    const [info] = JSON.parse(pack.stdout) as { filename: string; files: { path: string }[] }[];
    const files = new Set(info?.files.map((f) => f.path));
    for (const f of [
      'bin/run.js',
      'oclif.manifest.json',
      'dist/commands/quickstart.js',
      'artifacts/models/draft/model.onnx',
      'artifacts/models/verifier/model.onnx',
      'artifacts/adapters/support/adapter_model.safetensors',
      'artifacts/adapters/support-bad/adapter_model.safetensors',
      'artifacts/policies/default/policy.yaml',
      'artifacts/prompts/support.jsonl',
    ])
      expect(files.has(f), `${f} in the tarball`).toBe(true);
    expect([...files].filter((f) => /^(src|test|bench|tools)\//.test(f))).toEqual([]);
    const tarball = join(tmp, info?.filename ?? `edgectl-${pkg.version}.tgz`);
    lap('npm pack');

    const prefix = join(tmp, 'prefix');
    const install = await run(
      'npm',
      ['install', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', tarball],
      tmp,
      env,
      600_000,
    );
    expect(install.code, install.stderr.slice(-3000)).toBe(0);
    lap('npm install -g');
    const bin = join(prefix, 'bin', 'edgectl');
    expect(existsSync(bin)).toBe(true);

    const onPath = userEnv([join(prefix, 'bin')]);
    const version = await run('edgectl', ['--version'], tmp, onPath, 60_000);
    expect(version.code, version.stderr).toBe(0);
    // Whatever Node started it (the system's was systemNode.stdout), the CLI runs on Node 22.
    expect(version.stdout, `system node ${systemNode.stdout}`).toMatch(
      new RegExp(`^edgectl/${pkg.version.replace(/\./g, '\\.')} .* node-v22\\.`),
    );

    const ws = join(tmp, 'quickstart');
    // A backstop (issue #16): the quickstart's rollouts end on their evidence, each within 15 min
    // (src/quickstart/quickstart.ts), so a loaded machine makes this slower, not red.
    const qs = await run('edgectl', ['quickstart', '--dir', ws, '--json'], tmp, onPath, 2_100_000);
    expect(qs.code, qs.stderr.slice(-3000)).toBe(0);
    lap('edgectl quickstart');
    const summary = JSON.parse(qs.stdout) as QuickstartSummary;
    expect(summary.ok).toBe(true);
    expect(summary.rollouts.map((r) => [r.outcome, r.exitCode])).toEqual([
      ['promoted', 0],
      ['rolled-back', 5],
    ]);
    expect(summary.stopped).toBe(true);
  }, 3_000_000);
});
