/**
 * The speculative-decoding endpoints: sessions (prefill once, then one forward pass per verify
 * round over the previous round's verifier token plus the draft, with the cache rolled back to the
 * accepted prefix — the engine's InProcessVerifierSession does the round), session delete, and the
 * stateless verify that re-reads the whole prefix every call (for clients that cannot keep a
 * session; its cost shows up in positions processed). Each round is one admitted job.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { InProcessVerifierSession } from '../../inference/in-process-verifier.js';
import type { DraftDistribution } from '../../inference/verifier.js';
import { decodeMask, type TokenMaskWire } from '../../inference/grammar/mask.js';
import { badRequest, notFound, parseBody } from '../../http/http.js';
import { clientGoneSignal, samplingFromWire, type VerifierContext } from './context.js';
import {
  createSessionSchema,
  statelessVerifySchema,
  verifySchema,
  type CreateSessionResponse,
  type DraftProbsRow,
  type StatelessVerifyResponse,
  type VerifyResponse,
  type WireLogprob,
} from '../protocol.js';

/** A verify request with its session, answered by one admitted, counted round. */
export type VerifyRound = (
  session: InProcessVerifierSession,
  draft: number[],
  rows: DraftProbsRow[] | undefined,
  signal: AbortSignal,
  /** Grammar masks of the draft.length + 1 scored positions (`token_masks`). */
  masks?: TokenMaskWire[],
) => Promise<Omit<VerifyResponse, 'context_tokens'> & { length: number }>;

/** One admitted, counted verify round: shared by the POST route and the verify stream. */
export function verifyRound(ctx: VerifierContext): VerifyRound {
  const { model, metrics, admission } = ctx;
  return async (session, draft, rows, signal, masks) => {
    model.checkIds(draft, 'draft_ids');
    const vocab = ctx.verifier.vocabSize;
    const bits = masks?.map((m, i) => decodeMask(m, vocab, `token_masks[${i}]`));
    model.checkContext(session.length + draft.length, 'session context plus draft', 'draft_ids');
    return admission.run(async () => {
      // Fed in this round's pass: tokens the cache lacks (last round's verifier token) plus the draft.
      const positions = session.length - session.cachedLength + draft.length;
      const r = await session.verify({
        draft,
        ...(rows ? { draftDists: rows.map(toDistribution) } : {}),
        ...(bits ? { masks: bits } : {}),
      });
      if (positions > 0) metrics.forward('verify', positions, r.verifierMs / 1000);
      metrics.verifyRound(draft.length, r.accepted);
      return {
        accepted: r.accepted,
        drafted: draft.length,
        next_token: r.nextToken,
        eos: model.eos.has(r.nextToken),
        length: r.length,
        positions,
        verifier_ms: r.verifierMs,
        ...(r.logprobs === undefined ? {} : { logprobs: r.logprobs }),
      };
    }, signal);
  };
}

/** POST /v1/sessions: a new session with the prompt prefilled (optionally its first token). */
async function createSession(
  ctx: VerifierContext,
  rawBody: unknown,
  reply: FastifyReply,
): Promise<CreateSessionResponse> {
  const { model, sessions, metrics, verifier, admission } = ctx;
  const body = parseBody(createSessionSchema, rawBody);
  if (body.adapter !== undefined) {
    throw badRequest(
      `adapter "${body.adapter}": this verifier serves its base model only; adapters apply to the draft`,
      'adapter_not_supported',
      'adapter',
    );
  }
  const ids = body.prompt_ids ?? model.encode(body.prompt ?? '');
  if (ids.length === 0) throw badRequest('prompt: encodes to no tokens', 'empty_prompt', 'prompt');
  model.checkIds(ids, 'prompt_ids');
  model.checkContext(ids.length + 1, 'prompt', body.prompt_ids === undefined ? 'prompt' : 'prompt_ids');
  const sampling = samplingFromWire(body.sampling, 'sampling');
  // The slot is taken before the awaited prefill, so a burst cannot overshoot maxSessions.
  const slot = sessions.reserve();
  const seed = body.sampling?.seed;
  let first: number | undefined;
  let firstLogprob: WireLogprob | undefined;
  let session: InProcessVerifierSession;
  try {
    session = await admission.run(async () => {
      const t0 = performance.now();
      const s = await verifier.start(ids, {
        sampling,
        ...(seed === undefined ? {} : { seed }),
        ...(body.first_token === true
          ? {
              onFirstToken: (t: number, lp?: WireLogprob) => {
                first = t;
                firstLogprob = lp;
              },
            }
          : {}),
        ...(body.logprobs === undefined ? {} : { logprobs: body.logprobs }),
      });
      metrics.forward('prefill', ids.length, (performance.now() - t0) / 1000);
      return s;
    }, clientGoneSignal(reply));
  } catch (err) {
    slot.cancel();
    throw err;
  }
  const lease = slot.fill(session);
  lease.release();
  metrics.sessionCreated();
  void reply.status(201);
  return {
    session_id: lease.id,
    prompt_tokens: ids.length,
    max_context: model.maxContext,
    expires_in_s: sessions.ttlMs / 1000,
    ...(first === undefined
      ? {}
      : {
          first_token: first,
          eos: model.eos.has(first),
          context_tokens: session.length,
          ...(firstLogprob === undefined ? {} : { first_token_logprob: firstLogprob }),
        }),
  };
}

export function registerVerifyRoutes(app: FastifyInstance, ctx: VerifierContext): void {
  const { model, sessions, verifier } = ctx;
  const round = verifyRound(ctx);

  app.post('/v1/sessions', (req, reply) => createSession(ctx, req.body, reply));

  app.post<{ Params: { id: string } }>(
    '/v1/sessions/:id/verify',
    async (req, reply): Promise<VerifyResponse> => {
      const body = parseBody(verifySchema, req.body);
      const lease = sessions.acquire(req.params.id);
      try {
        const { length, ...r } = await round(
          lease.value,
          body.draft_ids,
          body.draft_probs,
          clientGoneSignal(reply),
          body.token_masks,
        );
        return { ...r, context_tokens: length };
      } finally {
        lease.release();
      }
    },
  );

  app.delete<{ Params: { id: string } }>('/v1/sessions/:id', async (req, reply) => {
    if (!sessions.delete(req.params.id)) {
      throw notFound(`session ${req.params.id} not found (unknown, deleted or expired)`, 'session_not_found');
    }
    return reply.status(204).send();
  });

  app.post('/v1/verify', async (req, reply): Promise<StatelessVerifyResponse> => {
    const body = parseBody(statelessVerifySchema, req.body);
    model.checkIds(body.prefix_ids, 'prefix_ids');
    const sampling = samplingFromWire(body.sampling, 'sampling');
    const seed = body.sampling?.seed;
    // A session over the prefix with nothing cached: the round's one pass reads prefix and draft.
    const session = verifier.resume(body.prefix_ids, undefined, {
      sampling,
      ...(seed === undefined ? {} : { seed }),
    });
    try {
      const { length: _length, ...r } = await round(
        session,
        body.draft_ids,
        body.draft_probs,
        clientGoneSignal(reply),
        body.token_masks,
      );
      return r;
    } finally {
      session.dispose();
    }
  });
}

function toDistribution(row: DraftProbsRow): DraftDistribution {
  return Array.isArray(row) ? Float32Array.from(row) : { ids: row.ids, probs: row.probs };
}
