/**
 * The site runtime's HTTP server (docs/running-sites.md; issue #5 items 2, 3, 6; issue #16):
 * the OpenAI-compatible `POST /v1/chat/completions` and `POST /v1/completions` (JSON or SSE
 * streaming: completions.ts), `GET /v1/models` and `/v1/models/{id}`, `/healthz`, `/readyz`, `/metrics` and `/v1/status`,
 * on fastify with edgectl's OpenAI-style error bodies (src/http/http.ts). It is a thin transport:
 * every generation request goes through the site engine (src/runtime/engine/site-engine.ts), which
 * owns the request path from the generation lease to the outcome report (docs/architecture.md,
 * runtime). Without a loopback `host` a bearer token is required; it is compared in constant time.
 * On close the server stops taking requests (503 shutting_down), lets in-flight streams finish, then
 * closes the engine.
 */
import { OperationalError } from '../../foundation/errors.js';
import { checkBearer, isLoopbackHost, requireTokenForHost } from '../../http/auth.js';
import { createHttpApp, HttpError, listen } from '../../http/http.js';
import type { RuntimeServer, RuntimeServerOptions } from '../contract.js';
import { SiteEngine } from '../engine/site-engine.js';
import { handleGeneration } from './completions.js';
import type { LoadedGeneration } from '../engine/generation.js';
import { installJsonBodyParser } from './json-body.js';
import { modelList, modelObject } from '../../http/openai-models.js';

export { DEFAULT_MAX_TOKENS } from '../engine/request-run.js';

const OWNED_BY = 'edgectl-site';

/** Paths answered without a bearer token (liveness and readiness probes). */
const OPEN_PATHS = new Set(['/healthz', '/readyz']);

export { isLoopbackHost };

export async function startRuntimeServer(
  opts: RuntimeServerOptions<LoadedGeneration>,
): Promise<RuntimeServer> {
  requireTokenForHost(
    opts.host,
    opts.bearerToken,
    "site's API",
    'E_RUNTIME_TOKEN',
    'Pass --token <secret> (or set EDGECTL_SITE_TOKEN)',
  );
  const engine = new SiteEngine(opts);
  const state = { draining: false };
  const app = buildApp(opts, engine, state);
  app.get('/v1/status', async () => ({ ...opts.daemonStatus(), url: address.url, runtime: engine.status() }));

  let address: { host: string; port: number; url: string };
  try {
    address = await listen(app, opts.host, opts.port);
  } catch (err) {
    await engine.close();
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL') {
      throw new OperationalError(`cannot listen on ${opts.host}:${opts.port} (${code})`, {
        code: 'E_LISTEN',
        suggestion: 'Pick another --listen port (0 = any free port) or stop what holds this one.',
      });
    }
    throw err;
  }
  opts.log('info', `site runtime listening on ${address.url}`);

  return {
    get url() {
      return address.url;
    },
    get host() {
      return address.host;
    },
    get port() {
      return address.port;
    },
    status: () => engine.status(),
    async close(drainMs = 10_000) {
      state.draining = true;
      await engine.drain(drainMs);
      await app.close();
      await engine.close();
    },
  };
}

/** The fastify app: auth and draining hooks, the JSON body parser, probes, metrics and the API. */
function buildApp(
  opts: RuntimeServerOptions<LoadedGeneration>,
  engine: SiteEngine,
  state: { draining: boolean },
): ReturnType<typeof createHttpApp> {
  const app = createHttpApp({
    ...(opts.requestTimeoutMs === undefined ? {} : { requestTimeoutMs: opts.requestTimeoutMs }),
    ...(opts.headersTimeoutMs === undefined ? {} : { headersTimeoutMs: opts.headersTimeoutMs }),
    onError: (httpErr, cause, req) => {
      if (httpErr.status >= 500 && httpErr.status !== 503) {
        opts.log(
          'error',
          `${req.method} ${req.url}: ${cause instanceof Error ? (cause.stack ?? cause.message) : String(cause)}`,
        );
      }
    },
  });
  app.addHook('onRequest', async (req, reply) => {
    const path = req.url.split('?')[0] ?? req.url;
    const refused =
      opts.bearerToken && !OPEN_PATHS.has(path) ? checkBearer(req.headers, opts.bearerToken) : undefined;
    if (refused) return reply.status(401).headers(refused.headers).send(refused.body());
    if (state.draining && !OPEN_PATHS.has(path)) {
      return reply
        .status(503)
        .header('retry-after', '1')
        .header('connection', 'close')
        .send(new HttpError(503, 'the site runtime is shutting down', 'shutting_down').body());
    }
  });
  installJsonBodyParser(app, (body) => engine.parseJson(body));
  app.addHook('onResponse', async (req, reply) => {
    engine.metrics.http(req.routeOptions.url ?? 'unmatched', reply.statusCode);
  });

  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => {
    const lease = opts.generations.acquire();
    lease?.release();
    const ready = !state.draining && lease !== undefined && opts.ready();
    return reply.status(ready ? 200 : 503).send({
      status: ready ? 'ready' : 'not ready',
      generation: lease?.generation.id ?? null,
      draining: state.draining,
    });
  });
  app.get('/metrics', async (_req, reply) => {
    const text = await opts.metrics.metrics();
    return reply.header('content-type', opts.metrics.contentType).send(text);
  });
  // `created` is the model artifact's publish time, the same on every call and restart.
  app.get('/v1/models', async () => {
    const lease = opts.generations.acquire();
    if (!lease) return modelList([], 0, OWNED_BY);
    try {
      return modelList(lease.generation.modelIds, lease.generation.created, OWNED_BY);
    } finally {
      lease.release();
    }
  });
  app.get<{ Params: { id: string } }>('/v1/models/:id', async (req) => {
    const lease = opts.generations.acquire();
    try {
      const g = lease?.generation;
      return modelObject(req.params.id, g?.modelIds ?? [], g?.created ?? 0, OWNED_BY);
    } finally {
      lease?.release();
    }
  });
  app.post('/v1/chat/completions', (req, reply) => handleGeneration(engine, 'chat', req, reply));
  app.post('/v1/completions', (req, reply) => handleGeneration(engine, 'completion', req, reply));
  return app;
}
