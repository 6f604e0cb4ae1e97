/**
 * Runs edgectl's own commands as child processes for the quickstart (`<node> bin/run.js <args>
 * --json`), so the quickstart exercises exactly what a user types and stays independent of the
 * internals those commands call. Every child is tracked until it exits: `killAll` ends the ones
 * still running (Ctrl-C, errors), and `pids` lists every process this runner started.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { OperationalError } from '../foundation/errors.js';
import { edgectlPackage } from '../foundation/package-root.js';

export interface CliRun {
  args: string[];
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

export interface CliRunnerOptions {
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** Aborting kills the running children (SIGINT, then SIGKILL after 5 s). */
  signal?: AbortSignal;
  /** Every finished command, for progress and debugging. */
  onRun?: (run: CliRun) => void;
}

export class CliRunner {
  private readonly children = new Set<ChildProcess>();
  readonly pids: number[] = [];
  private readonly entry = join(edgectlPackage().root, 'bin', 'run.js');

  constructor(private readonly opts: CliRunnerOptions) {
    opts.signal?.addEventListener('abort', () => this.killAll(), { once: true });
  }

  /** Runs `edgectl <args>`; resolves with the exit code (never rejects on a non-zero exit). */
  run(args: string[], extra: { timeoutMs?: number } = {}): Promise<CliRun> {
    const started = performance.now();
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [this.entry, ...args], {
        cwd: this.opts.cwd,
        env: this.opts.env,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      if (child.pid !== undefined) this.pids.push(child.pid);
      this.children.add(child);
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      const timer = extra.timeoutMs ? setTimeout(() => child.kill('SIGKILL'), extra.timeoutMs) : undefined;
      child.on('error', (err) => {
        this.children.delete(child);
        if (timer) clearTimeout(timer);
        reject(err);
      });
      child.on('close', (code, signal) => {
        this.children.delete(child);
        if (timer) clearTimeout(timer);
        const run: CliRun = {
          args,
          code: code ?? (signal === 'SIGINT' ? 130 : 128),
          stdout,
          stderr,
          ms: Math.round(performance.now() - started),
        };
        this.opts.onRun?.(run);
        resolve(run);
      });
    });
  }

  /** Runs a command that must succeed and returns its `--json` result. */
  async json<T>(args: string[], extra: { timeoutMs?: number } = {}): Promise<T> {
    const r = await this.run([...args, '--json'], extra);
    if (r.code !== 0) throw commandFailed(r);
    return parseJson<T>(r);
  }

  /** Ends every child still running: SIGINT first (they clean up), SIGKILL after 5 s. */
  killAll(): void {
    for (const child of this.children) {
      child.kill('SIGINT');
      setTimeout(() => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      }, 5000).unref();
    }
  }
}

export function parseJson<T>(r: CliRun): T {
  try {
    return JSON.parse(r.stdout) as T;
  } catch {
    throw new OperationalError(`edgectl ${r.args.join(' ')} printed no JSON result (exit ${r.code})`, {
      code: 'E_QUICKSTART_STEP',
      details: { stdout: r.stdout.slice(-2000), stderr: r.stderr.slice(-2000) },
    });
  }
}

/** The error of a failed step: the command, its exit code and its own error message. */
export function commandFailed(r: CliRun): OperationalError {
  let reason = r.stderr.trim().split('\n').slice(-3).join(' | ');
  try {
    const err = (JSON.parse(r.stdout) as { error?: { message?: string } }).error;
    if (err?.message) reason = err.message;
  } catch {
    // not JSON: keep the stderr tail
  }
  return new OperationalError(
    `quickstart step failed: edgectl ${r.args.join(' ')} exited ${r.code}: ${reason}`,
    {
      code: 'E_QUICKSTART_STEP',
      suggestion:
        'rerun with --keep to inspect the workspace (logs under .edgectl/), or run `edgectl doctor` in it',
      details: { args: r.args, exitCode: r.code, stderr: r.stderr.slice(-4000) },
    },
  );
}
