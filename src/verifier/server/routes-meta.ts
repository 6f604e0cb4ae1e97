/**
 * The verifier's read-only endpoints: `/healthz` (liveness for the daemon's readiness wait and
 * load balancers), `/readyz` (200 only while the model is loaded and the server is not shutting
 * down; 503 otherwise), `/v1/models` and `/v1/models/{id}` (OpenAI model objects, the same shape
 * and 404 as the site's: src/http/openai-models.ts), `/v1/identity` (model and tokenizer digests,
 * signed when the verifier has a key), `/metrics` (Prometheus text) and `/v1/stats` (the same
 * counters as JSON, for benchmarks).
 */
import type { FastifyInstance } from 'fastify';
import { modelList, modelObject } from '../../http/openai-models.js';
import type { VerifierContext } from './context.js';
import type { VerifierStats } from './metrics.js';
import type { HealthResponse, IdentityResponse } from '../protocol.js';

const OWNED_BY = 'edgectl-verifier';

export function registerMetaRoutes(app: FastifyInstance, ctx: VerifierContext, ready: () => boolean): void {
  app.get('/healthz', async (): Promise<HealthResponse> => ({ status: 'ok', model: ctx.model.name }));
  app.get('/readyz', async (_req, reply) => {
    const ok = ready() && ctx.model.loaded;
    return reply.status(ok ? 200 : 503).send({ status: ok ? 'ready' : 'not ready', model: ctx.model.name });
  });
  app.get('/v1/models', async () => modelList([ctx.model.name], ctx.model.created, OWNED_BY));
  app.get<{ Params: { id: string } }>('/v1/models/:id', async (req) =>
    modelObject(req.params.id, [ctx.model.name], ctx.model.created, OWNED_BY),
  );
  app.get('/v1/identity', async (): Promise<IdentityResponse> => ctx.model.identity);
  app.get('/v1/stats', async (): Promise<VerifierStats> => ctx.metrics.snapshot());
  app.get('/metrics', async (_req, reply) => {
    const { contentType, body } = await ctx.metrics.prometheus();
    return reply.header('content-type', contentType).send(body);
  });
}
