/**
 * One quickstart run's lifecycle: the CLI runner its steps go through, the progress steps (each
 * checked against Ctrl-C before and after), and everything the run started (the verifier, the
 * sites, the traffic generator, daemon pids), so that `stopAll` and `abandon` stop exactly those,
 * on success, on an error and on Ctrl-C. stages.ts holds the steps themselves; the loop is
 * described under `edgectl quickstart` in docs/cli.md.
 */
import { EdgectlError, ExitCode } from '../foundation/errors.js';
import type { Io } from '../foundation/output.js';
import type { Progress } from '../artifact/progress.js';
import { isAlive, signal as sendSignal } from '../supervisor/process-identity.js';
import { CliRunner, type CliRun } from './cli-runner.js';
import { startTraffic, type Traffic, type TrafficOptions, type TrafficStats } from './traffic.js';

export interface SessionOptions {
  dir: string;
  env: NodeJS.ProcessEnv;
  io: Io;
  progress: Progress;
  signal: AbortSignal;
}

export function interrupted(): EdgectlError {
  return new EdgectlError('quickstart interrupted; stopped what it had started', ExitCode.Interrupted, {
    code: 'E_INTERRUPTED',
  });
}

export class QuickstartSession {
  readonly runner: CliRunner;
  readonly io: Io;
  readonly dir: string;
  /** Pids of the daemons (verifier, sites) this run started. */
  readonly daemonPids: number[] = [];
  /** False until `stopAll` ran: with --keep the verifier and sites stay up. */
  stopped = false;
  private readonly started = { verifier: false, sites: [] as string[] };
  private traffic: Traffic | undefined;

  constructor(private readonly opts: SessionOptions) {
    this.io = opts.io;
    this.dir = opts.dir;
    this.runner = new CliRunner({
      cwd: opts.dir,
      env: opts.env,
      signal: opts.signal,
      onRun: (r: CliRun) =>
        opts.io.log('debug', `edgectl ${r.args.join(' ')} -> exit ${r.code} (${r.ms} ms)`),
    });
  }

  /** Throws the interrupted error once Ctrl-C was pressed. */
  check(): void {
    if (this.opts.signal.aborted) throw interrupted();
  }

  async step<T>(title: string, fn: (report: (s: string) => void) => Promise<T>): Promise<T> {
    this.check();
    const r = await this.opts.progress.step(title, fn);
    this.check();
    return r;
  }

  /** Runs `edgectl <args>` and parses its --json output; a non-zero exit throws. */
  async cli<T>(args: string[], timeoutMs?: number): Promise<T> {
    this.check();
    return this.runner.json<T>(args, timeoutMs ? { timeoutMs } : {});
  }

  verifierStarted(pid: number): void {
    this.started.verifier = true;
    this.daemonPids.push(pid);
  }

  /** Recorded before `site up` runs, so a half-started site is still taken down. */
  siteStarting(site: string): void {
    this.started.sites.push(site);
  }

  siteStarted(pid: number): void {
    this.daemonPids.push(pid);
  }

  startTraffic(opts: TrafficOptions): TrafficStats {
    this.traffic = startTraffic(opts);
    return this.traffic.stats;
  }

  async stopTraffic(): Promise<TrafficStats> {
    const traffic = this.traffic;
    if (!traffic) throw new Error('quickstart: no traffic running');
    const stats = await traffic.stop();
    this.traffic = undefined;
    return stats;
  }

  async stopAll(): Promise<void> {
    await this.traffic?.stop();
    this.traffic = undefined;
    const downs = this.started.sites.map((s) =>
      this.runner.run(['site', 'down', s, '--timeout', '10s', '--json']),
    );
    await Promise.all(downs);
    if (this.started.verifier) await this.runner.run(['verifier', 'down', '--json']);
    this.started.sites = [];
    this.started.verifier = false;
    // If a `down` could not run (say, the CLI itself broke), end the daemons by pid.
    await killSurvivors(this.daemonPids, this.io);
    this.stopped = true;
  }

  /** After a failure or Ctrl-C: never leave processes behind, even with --keep; rethrows. */
  async abandon(err: unknown): Promise<never> {
    this.runner.killAll();
    await this.stopAll().catch((e: unknown) =>
      this.io.log('warn', `cleanup: ${e instanceof Error ? e.message : String(e)}`),
    );
    if (this.opts.signal.aborted) throw interrupted();
    throw err;
  }
}

/** SIGTERM, then SIGKILL after 10 s, for each pid still alive. */
async function killSurvivors(pids: number[], io: Io): Promise<void> {
  const alive = pids.filter((p) => isAlive(p));
  if (alive.length === 0) return;
  io.log('warn', `stopping leftover daemon process(es) ${alive.join(', ')} by signal`);
  for (const p of alive) sendSignal(p, 'SIGTERM');
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline && alive.some((p) => isAlive(p))) await new Promise((r) => setTimeout(r, 100));
  for (const p of alive) if (isAlive(p)) sendSignal(p, 'SIGKILL');
}
