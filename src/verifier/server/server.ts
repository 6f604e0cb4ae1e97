/**
 * The verifier service (docs/running-sites.md): loads a model directory, wires the session
 * table, admission control and metrics into a fastify app with the verify, completions and meta
 * routes, and listens. `startVerifierServer` is what `edgectl verifier up --foreground` runs and
 * what tests and benchmarks start in-process; `close()` stops accepting, drains and frees every
 * session.
 */
import type { FastifyInstance } from 'fastify';
import { OperationalError } from '../../foundation/errors.js';
import type { Io } from '../../foundation/output.js';
import type { KeyPair } from '../../registry/keys.js';
import { installBearerAuth, requireTokenForHost } from '../../http/auth.js';
import { createHttpApp, listen, type HttpError } from '../../http/http.js';
import { AdmissionQueue } from './admission.js';
import { ForwardBatcher } from '../../inference/forward-batcher.js';
import { InProcessVerifier, type InProcessVerifierSession } from '../../inference/in-process-verifier.js';
import type { CausalLm } from '../../inference/model-session.js';
import { makeForward, type VerifierContext } from './context.js';
import { VerifierMetrics } from './metrics.js';
import { registerCompletionRoutes } from './routes-completions.js';
import { registerMetaRoutes } from './routes-meta.js';
import { VERIFIER_TOKEN_ENV } from '../protocol.js';
import { registerVerifyRoutes, verifyRound } from './routes-verify.js';
import { SessionTable } from './session-table.js';
import { VerifierModel } from './verifier-model.js';
import { attachVerifyStream } from './verify-stream.js';

export { VERIFIER_TOKEN_ENV };

export interface VerifierServerOptions {
  modelDir: string;
  /** Graph file inside modelDir (`--model-file`). */
  modelFile?: string;
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** ONNX Runtime intra-op threads per forward pass (the cores given to the verifier). */
  threads: number;
  /**
   * Sequences per ONNX Runtime run: passes requested while the model is busy are micro-batched
   * into one run (the engine's ForwardBatcher). Default 1: one pass per run, no batching.
   */
  maxBatch?: number;
  /** Forward passes admitted at once (default: threads x maxBatch). */
  maxConcurrency?: number;
  /** Requests that may wait for a forward slot before new ones get 429 (default 64). */
  queueLimit?: number;
  /** Idle time after which a session's KV cache is released (default 60 s). */
  sessionTtlMs?: number;
  /** Sessions that may hold a KV cache at once (default 256). */
  maxSessions?: number;
  /** Name the API reports for the model (default: the directory name). */
  modelName?: string;
  /** Signs /v1/identity. */
  identityKey?: KeyPair;
  /**
   * Bearer token every request but /healthz must carry; required (the server refuses to start
   * without it) when `host` is not a loopback address.
   */
  bearerToken?: string;
  /** Slow-client deadlines (src/http/http.ts): whole request and headers. */
  requestTimeoutMs?: number;
  headersTimeoutMs?: number;
  io: Io;
}

export interface RunningVerifier {
  url: string;
  host: string;
  port: number;
  model: VerifierModel;
  context: VerifierContext;
  app: FastifyInstance;
  /** The effective settings, for `verifier up` to print. */
  settings: {
    threads: number;
    maxBatch: number;
    maxConcurrency: number;
    queueLimit: number;
    sessionTtlMs: number;
    maxSessions: number;
  };
  close(): Promise<void>;
}

/** Paths answered without a bearer token: liveness and readiness for the daemon and load balancers. */
const OPEN_PATHS = new Set(['/healthz', '/readyz']);

/** A non-loopback host needs a bearer token (`verifier up` checks before starting a child too). */
export function checkVerifierToken(opts: { host: string; bearerToken?: string | undefined }): void {
  requireTokenForHost(
    opts.host,
    opts.bearerToken,
    "verifier's API",
    'E_VERIFIER_TOKEN',
    `Pass --token <secret> (or set ${VERIFIER_TOKEN_ENV}) and give sites the same token`,
  );
}

/**
 * The verifier's shared state: the loaded model (behind a forward batcher when `maxBatch` > 1),
 * the session table, the admission queue and the metrics that read them.
 */
async function createVerifierContext(opts: VerifierServerOptions) {
  const maxBatch = Math.max(1, opts.maxBatch ?? 1);
  const settings = {
    threads: opts.threads,
    maxBatch,
    maxConcurrency: opts.maxConcurrency ?? opts.threads * maxBatch,
    queueLimit: opts.queueLimit ?? 64,
    sessionTtlMs: opts.sessionTtlMs ?? 60_000,
    maxSessions: opts.maxSessions ?? 256,
  };
  const model = await VerifierModel.load(opts.modelDir, {
    threads: settings.threads,
    ...(opts.modelFile === undefined ? {} : { modelFile: opts.modelFile }),
    ...(opts.modelName === undefined ? {} : { name: opts.modelName }),
    ...(opts.identityKey === undefined ? {} : { identityKey: opts.identityKey }),
  });
  const batcher = maxBatch > 1 ? new ForwardBatcher(model.lm, { maxBatch }) : undefined;
  const lm: CausalLm = batcher ?? model.lm;
  const sessions = new SessionTable<InProcessVerifierSession>({
    ttlMs: settings.sessionTtlMs,
    maxSessions: settings.maxSessions,
  });
  const admission = new AdmissionQueue({
    concurrency: settings.maxConcurrency,
    queueLimit: settings.queueLimit,
  });
  const metrics = new VerifierMetrics({
    sessionsLive: () => sessions.size,
    sessionsReleased: () => sessions.released,
    queueDepth: () => admission.stats.queued,
    activeForwards: () => admission.stats.active,
    ...(batcher ? { modelRuns: () => batcher.stats.passes } : {}),
  });
  const context: VerifierContext = {
    model,
    verifier: new InProcessVerifier(lm),
    sessions,
    admission,
    metrics,
    forward: makeForward(lm, admission, metrics),
  };
  return { settings, model, sessions, metrics, context };
}

export async function startVerifierServer(opts: VerifierServerOptions): Promise<RunningVerifier> {
  checkVerifierToken(opts);
  const { settings, model, sessions, metrics, context } = await createVerifierContext(opts);

  /** Every error answer, over HTTP or the verify stream: 429s counted, 5xx logged. */
  const reportError = (httpErr: HttpError, cause: unknown, where: string): void => {
    if (httpErr.status === 429) metrics.rejected(httpErr.code);
    if (httpErr.status >= 500) {
      opts.io.log(
        'error',
        `${where}: ${cause instanceof Error ? (cause.stack ?? cause.message) : String(cause)}`,
      );
    }
  };
  const app = createHttpApp({
    onError: (httpErr, cause, req) => reportError(httpErr, cause, `${req.method} ${req.url}`),
    ...(opts.requestTimeoutMs === undefined ? {} : { requestTimeoutMs: opts.requestTimeoutMs }),
    ...(opts.headersTimeoutMs === undefined ? {} : { headersTimeoutMs: opts.headersTimeoutMs }),
  });
  if (opts.bearerToken) installBearerAuth(app, opts.bearerToken, OPEN_PATHS);
  app.addHook('onResponse', async (req, reply) => {
    metrics.request(
      req.routeOptions.url ?? 'unmatched',
      req.method,
      reply.statusCode,
      reply.elapsedTime / 1000,
    );
  });
  const state = { closing: false };
  registerMetaRoutes(app, context, () => !state.closing);
  registerVerifyRoutes(app, context);
  const streams = attachVerifyStream(
    app.server,
    context,
    verifyRound(context),
    (httpErr, cause) => reportError(httpErr, cause, 'verify stream'),
    opts.bearerToken,
  );
  registerCompletionRoutes(app, context);
  sessions.startSweeper();

  let address;
  try {
    address = await listen(app, opts.host, opts.port);
  } catch (err) {
    sessions.close();
    await model.close();
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL') {
      throw new OperationalError(`cannot listen on ${opts.host}:${opts.port} (${code})`, {
        code: 'E_LISTEN',
        suggestion: 'Pick another --port (0 = any free port) or stop what holds this one.',
      });
    }
    throw err;
  }
  return {
    ...address,
    model,
    context,
    app,
    settings,
    close: async () => {
      state.closing = true;
      streams.close();
      await app.close();
      sessions.close();
      await model.close();
    },
  };
}
