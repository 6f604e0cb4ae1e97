/**
 * Runs the built CLI as a real child process: `node_modules/.bin/node bin/run.js <args>` from the
 * repo root (Node 22), in `cwd`, with `env` merged over the test's environment minus the registry,
 * signing-key and AWS variables (SCRUBBED below; pass what a test needs in `env`), and with CI=1
 * so output is plain. The vitest globalSetup (test/setup/build.ts) builds dist/ once per run.
 *
 *   const r = await runCli(['keys', 'generate', '--out', 'k.key', '--json'], { cwd: dir });
 *   expect(r.code).toBe(0);
 *   expect(r.json<{ keyid: string }>().keyid).toMatch(/^sha256:/);
 */
import { spawn } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const NODE = join(REPO_ROOT, 'node_modules/.bin/node');
export const RUN_JS = join(REPO_ROOT, 'bin/run.js');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout parsed as JSON (throws with the output when it is not JSON). */
  json<T = unknown>(): T;
  /** Wall time in milliseconds. */
  ms: number;
}

export interface RunCliOptions {
  cwd: string;
  env?: Record<string, string | undefined>;
  input?: string;
  /** Kill the child after this long (default 60 s). */
  timeoutMs?: number;
}

/** Variables that would leak the developer's setup into tests; callers set what they need. */
const SCRUBBED = [
  'EDGECTL_REGISTRY',
  'EDGECTL_SIGNING_KEY',
  'AWS_ENDPOINT_URL',
  'AWS_ENDPOINT_URL_S3',
  'AWS_PROFILE',
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_SESSION_TOKEN',
];

export function runCli(args: string[], opts: RunCliOptions): Promise<CliResult> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of SCRUBBED) delete env[k];
  for (const [k, v] of Object.entries(opts.env ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  env.CI = '1';
  const started = performance.now();
  return new Promise((resolvePromise, reject) => {
    const child = spawn(NODE, [RUN_JS, ...args], { cwd: opts.cwd, env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolvePromise({
        code: code ?? (signal ? 128 : 1),
        stdout,
        stderr,
        ms: performance.now() - started,
        json<T>() {
          try {
            return JSON.parse(stdout) as T;
          } catch {
            throw new Error(`stdout is not JSON (exit ${code}):\n${stdout}\nstderr:\n${stderr}`);
          }
        },
      });
    });
    child.stdin.end(opts.input ?? '');
  });
}

/**
 * Starts the fixture verifier as a detached daemon (`edgectl verifier up --port 0 --threads 1`)
 * with its run files in `runDir`; stop it with `verifier down --run-dir <runDir>`.
 */
export async function startVerifierDaemon(
  cwd: string,
  runDir: string,
  timeoutMs = 120_000,
): Promise<{ url: string; pid: number }> {
  const model = join(REPO_ROOT, 'artifacts/models/verifier');
  const args = ['verifier', 'up', '--model', model, '--port', '0', '--threads', '1'];
  const v = await runCli([...args, '--run-dir', runDir, '--json'], { cwd, timeoutMs });
  if (v.code !== 0) throw new Error(`verifier up exited ${v.code}:\n${v.stderr}`);
  return v.json<{ url: string; pid: number }>();
}
