/**
 * `edgectl verifier up|down` as plain functions: run the verifier server in this process under the
 * daemon contract (pid file, state file, signals), start it as a detached child that does exactly
 * that, or stop it. The command files only parse flags and render; everything a test or `site up`
 * might reuse lives here or in src/supervisor.
 */
import { join, resolve } from 'node:path';
import type { Io } from '../../foundation/output.js';
import { runForeground } from '../../supervisor/foreground.js';
import { startDaemon, type DaemonStartResult } from '../../supervisor/start.js';
import { stopDaemon, type DaemonStopResult } from '../../supervisor/stop.js';
import type { KeyPair } from '../../registry/keys.js';
import { VERIFIER_TOKEN_ENV } from '../protocol.js';
import { checkVerifierToken, startVerifierServer, type RunningVerifier } from './server.js';

export const VERIFIER_DAEMON = 'verifier';

export interface VerifierUpOptions {
  modelDir: string;
  /** Graph file inside modelDir (`--model-file`); default: model-files.ts's order. */
  modelFile?: string | undefined;
  host: string;
  port: number;
  threads: number;
  /** Sequences per ONNX Runtime run (1 = no micro-batching). */
  maxBatch: number;
  maxConcurrency: number | undefined;
  queueLimit: number;
  maxSessions: number;
  sessionTtlMs: number;
  identityKeyPath: string | undefined;
  runDir: string;
  /** Bearer token clients must send; required for a non-loopback host. */
  bearerToken?: string | undefined;
  /** Slow-client deadline for a whole request (src/http/http.ts). */
  requestTimeoutMs?: number | undefined;
}

export interface VerifierUpResult {
  status: DaemonStartResult['status'] | 'stopped';
  pid: number;
  url: string | undefined;
  model: string;
  logFile: string;
  runDir: string;
  startupMs: number;
  /** Settings of the running verifier (from its state file when it was already running). */
  settings: Record<string, unknown> | undefined;
}

/** The project's run directory for daemons. */
export function defaultRunDir(projectRoot: string): string {
  return join(projectRoot, '.edgectl', 'run');
}

/** Serves until SIGTERM/SIGINT/SIGHUP; `onReady` fires once listening and recorded. */
export async function runVerifierForeground(
  opts: VerifierUpOptions,
  identityKey: KeyPair | undefined,
  io: Io,
  onReady: (svc: RunningVerifier) => void,
): Promise<VerifierUpResult> {
  const t0 = performance.now();
  let running: RunningVerifier | undefined;
  const result = await runForeground({
    name: VERIFIER_DAEMON,
    runDir: opts.runDir,
    io,
    stopCommand: 'edgectl verifier down',
    start: async () => {
      running = await startVerifierServer({
        modelDir: opts.modelDir,
        ...(opts.modelFile === undefined ? {} : { modelFile: opts.modelFile }),
        host: opts.host,
        port: opts.port,
        threads: opts.threads,
        maxBatch: opts.maxBatch,
        ...(opts.maxConcurrency === undefined ? {} : { maxConcurrency: opts.maxConcurrency }),
        queueLimit: opts.queueLimit,
        maxSessions: opts.maxSessions,
        sessionTtlMs: opts.sessionTtlMs,
        ...(identityKey === undefined ? {} : { identityKey }),
        ...(opts.bearerToken ? { bearerToken: opts.bearerToken } : {}),
        ...(opts.requestTimeoutMs === undefined ? {} : { requestTimeoutMs: opts.requestTimeoutMs }),
        io,
      });
      const svc = running;
      return {
        url: svc.url,
        host: svc.host,
        port: svc.port,
        info: { model: svc.model.name, modelDir: svc.model.dir, ...svc.settings },
        close: () => svc.close(),
      };
    },
    onReady: () => {
      if (running) onReady(running);
    },
  });
  return {
    status: 'stopped',
    pid: result.pid,
    url: result.url,
    model: running?.model.name ?? opts.modelDir,
    logFile: join(opts.runDir, `${VERIFIER_DAEMON}.log`),
    runDir: opts.runDir,
    startupMs: Math.round(performance.now() - t0),
    settings: running?.settings,
  };
}

/** Starts `<entry> verifier up --foreground ...` detached and waits until it answers /healthz. */
export async function startVerifierDaemon(
  opts: VerifierUpOptions,
  entry: string,
  readyTimeoutMs: number,
  io: Io,
): Promise<VerifierUpResult> {
  checkVerifierToken(opts); // fail here, not in the child
  const args = [
    'verifier',
    'up',
    '--foreground',
    '--model',
    resolve(opts.modelDir),
    '--host',
    opts.host,
    '--port',
    String(opts.port),
    '--threads',
    String(opts.threads),
    '--batch',
    String(opts.maxBatch),
    '--queue',
    String(opts.queueLimit),
    '--max-sessions',
    String(opts.maxSessions),
    '--session-ttl',
    `${opts.sessionTtlMs}ms`,
    '--run-dir',
    resolve(opts.runDir),
    ...(opts.maxConcurrency === undefined ? [] : ['--max-concurrency', String(opts.maxConcurrency)]),
    ...(opts.identityKeyPath === undefined ? [] : ['--identity-key', resolve(opts.identityKeyPath)]),
    ...(opts.requestTimeoutMs === undefined ? [] : ['--request-timeout', `${opts.requestTimeoutMs}ms`]),
    ...(opts.modelFile === undefined ? [] : ['--model-file', opts.modelFile]),
  ];
  const env: NodeJS.ProcessEnv = { ...process.env };
  // The token goes through the environment: arguments are visible to every user in `ps`.
  if (opts.bearerToken) env[VERIFIER_TOKEN_ENV] = opts.bearerToken;
  const r = await startDaemon(
    { name: VERIFIER_DAEMON, runDir: opts.runDir, entry, args, env, healthPath: '/healthz', readyTimeoutMs },
    io,
  );
  const info = r.info ?? {};
  return {
    status: r.status,
    pid: r.pid,
    url: r.url,
    model: typeof info.model === 'string' ? info.model : opts.modelDir,
    logFile: r.logFile,
    runDir: opts.runDir,
    startupMs: r.startupMs,
    settings: r.info,
  };
}

export function stopVerifierDaemon(runDir: string, graceMs: number, io: Io): Promise<DaemonStopResult> {
  return stopDaemon({ name: VERIFIER_DAEMON, runDir, graceMs }, io);
}
