/**
 * The verifier's read-only endpoints: `/healthz` (liveness for the daemon's readiness wait and
 * load balancers), `/v1/identity` (model and tokenizer digests, signed when the verifier has a
 * key), `/metrics` (Prometheus text) and `/v1/stats` (the same counters as JSON, for benchmarks).
 */
import type { FastifyInstance } from 'fastify';
import type { VerifierContext } from './context.js';
import type { VerifierStats } from './metrics.js';
import type { HealthResponse, IdentityResponse } from '../protocol.js';

export function registerMetaRoutes(app: FastifyInstance, ctx: VerifierContext): void {
  app.get('/healthz', async (): Promise<HealthResponse> => ({ status: 'ok', model: ctx.model.name }));
  app.get('/v1/identity', async (): Promise<IdentityResponse> => ctx.model.identity);
  app.get('/v1/stats', async (): Promise<VerifierStats> => ctx.metrics.snapshot());
  app.get('/metrics', async (_req, reply) => {
    const { contentType, body } = await ctx.metrics.prometheus();
    return reply.header('content-type', contentType).send(body);
  });
}
