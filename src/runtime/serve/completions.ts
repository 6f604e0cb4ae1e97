/**
 * `POST /v1/chat/completions` and `POST /v1/completions` on the site engine (docs/architecture.md,
 * runtime): the OpenAI body (zod, a 400 naming the field) and the `x-edgectl-route` header become an
 * `EngineRequest`; the engine's events become one JSON body or an SSE stream (sse-stream.ts). The
 * stream opens at the first text, so an error before it is an ordinary JSON error (a 503 with
 * Retry-After when the verifier is unavailable); after it, an error ends the stream with an error
 * event. `x-edgectl-route` carries the route (and `x-edgectl-unverified` an edge fallback); every
 * body, and the final stream chunk, carries the `edgectl` field.
 */
import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ROUTES, type Route } from '../../policy/schema.js';
import { badRequest, parseBody, toHttpError } from '../../http/http.js';
import type { SiteEngine } from '../engine/site-engine.js';
import type { EngineEvent, EngineRequest } from '../engine/types.js';
import {
  chatRequestSchema,
  chatResponse,
  chunk,
  completionRequestSchema,
  completionResponse,
  deltaWriter,
  stopList,
  usage,
  usageChunk,
  type ChatRequest,
  type CompletionRequest,
  type ResponseBase,
} from './openai.js';
import { SseStream } from './sse-stream.js';

export type Kind = 'chat' | 'completion';

export const PATHS: Record<Kind, string> = { chat: '/v1/chat/completions', completion: '/v1/completions' };

interface Parsed {
  request: EngineRequest;
  stream: boolean;
  includeUsage: boolean;
  base: ResponseBase;
}

/** The route asked for in the body's `edgectl.route`, else the `x-edgectl-route` header. */
function routeOverride(body: ChatRequest | CompletionRequest, req: FastifyRequest): Route | undefined {
  const asked = body.edgectl?.route;
  const header = req.headers['x-edgectl-route'];
  if (asked !== undefined || header === undefined) return asked;
  const value = Array.isArray(header) ? header[0] : header;
  if (!(ROUTES as readonly string[]).includes(value ?? '')) {
    throw badRequest(
      `x-edgectl-route: must be one of ${ROUTES.join(', ')}, got "${value}"`,
      'invalid_route',
      'x-edgectl-route',
    );
  }
  return value as Route;
}

/** Settles true once the response was handed to the client, false if it closed before. */
function delivery(raw: ServerResponse): Promise<boolean> {
  return new Promise((resolve) => {
    raw.once('finish', () => resolve(true));
    raw.once('close', () => resolve(raw.writableFinished));
  });
}

function parseRequest(kind: Kind, req: FastifyRequest, delivered: Promise<boolean>): Parsed {
  const body =
    kind === 'chat' ? parseBody(chatRequestSchema, req.body) : parseBody(completionRequestSchema, req.body);
  const chat = kind === 'chat' ? (body as ChatRequest) : undefined;
  const p = chat ? undefined : (body as CompletionRequest).prompt;
  const request: EngineRequest = {
    model: body.model,
    prompt: chat ? { messages: chat.messages } : { text: typeof p === 'string' ? p : (p?.[0] as string) },
    stops: stopList(body.stop),
    maxTokens: chat?.max_completion_tokens ?? body.max_tokens ?? undefined,
    temperature: body.temperature ?? undefined,
    topP: body.top_p ?? undefined,
    repetitionPenalty: body.repetition_penalty ?? undefined,
    seed: body.seed ?? undefined,
    ignoreEos: body.ignore_eos === true,
    override: routeOverride(body, req),
    retrieval: body.edgectl?.retrieval,
    delivered,
    label: PATHS[kind],
  };
  return {
    request,
    stream: body.stream === true,
    includeUsage: body.stream_options?.include_usage === true,
    base: {
      id: `${kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${randomUUID().replaceAll('-', '')}`,
      created: Math.floor(Date.now() / 1000),
      model: body.model,
    },
  };
}

/** Turns engine events into the response: text collected (JSON) or streamed (SSE). */
class AnswerWriter {
  private route = '';
  private unverified = false;
  private text = '';
  readonly sse: SseStream | undefined;
  private readonly delta: (text: string) => string;

  constructor(
    private readonly kind: Kind,
    private readonly parsed: Parsed,
    private readonly reply: FastifyReply,
    onStreamClose: (status: number) => void,
  ) {
    this.delta = deltaWriter(kind, parsed.base);
    this.sse = parsed.stream ? new SseStream(reply, () => this.headers(), onStreamClose) : undefined;
  }

  private headers(): Record<string, string> {
    return {
      'x-edgectl-route': this.route,
      ...(this.unverified ? { 'x-edgectl-unverified': 'true' } : {}),
    };
  }

  /** Handles one event; the handler's return value once the answer is complete. */
  event(e: EngineEvent): unknown {
    if (e.type === 'text') this.emit(e.text);
    else if (e.type === 'route') this.route = e.route;
    else if (e.type === 'blocked') {
      this.route = 'blocked';
      void this.reply.header('x-edgectl-route', 'blocked');
    } else if (e.type === 'fallback') {
      this.route = e.route;
      this.unverified = true;
    } else if (e.type === 'finish') return this.finish(e);
    return undefined;
  }

  private emit(piece: string): void {
    const { sse, kind, parsed } = this;
    if (piece === '') return;
    if (!sse) this.text += piece;
    else if (!sse.started) sse.send(chunk(kind, parsed.base, { text: piece, first: true }));
    else sse.write(this.delta(piece));
  }

  private finish(e: Extract<EngineEvent, { type: 'finish' }>): unknown {
    const { sse, kind, parsed, reply } = this;
    if (e.reason === 'aborted') {
      if (sse?.started) sse.end();
      return reply;
    }
    const u = usage(e.promptTokens, e.completionTokens);
    const finish = e.reason;
    if (sse) {
      if (!sse.started) sse.send(chunk(kind, parsed.base, { text: '', first: true }));
      sse.send(chunk(kind, parsed.base, { text: '', finish, edgectl: e.info }));
      if (parsed.includeUsage) sse.send(usageChunk(kind, parsed.base, u));
      sse.end();
      return reply;
    }
    void reply.header('x-edgectl-route', e.route);
    if (e.unverified) void reply.header('x-edgectl-unverified', 'true');
    return kind === 'chat'
      ? chatResponse(parsed.base, this.text, finish, u, e.info)
      : completionResponse(parsed.base, this.text, finish, u, e.info);
  }
}

/** One generation request through the engine (module comment). */
export async function handleGeneration(
  engine: SiteEngine,
  kind: Kind,
  req: FastifyRequest,
  reply: FastifyReply,
): Promise<unknown> {
  const ac = new AbortController();
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) ac.abort();
  });
  const parsed = parseRequest(kind, req, delivery(reply.raw));
  const writer = new AnswerWriter(kind, parsed, reply, (status) => engine.metrics.http(PATHS[kind], status));
  let answer: unknown;
  try {
    for await (const e of engine.run(parsed.request, ac.signal)) {
      const done = writer.event(e);
      if (done !== undefined) answer = done;
    }
    return answer;
  } catch (err) {
    const httpErr = toHttpError(err);
    if (writer.sse?.started) {
      writer.sse.send(httpErr.body());
      writer.sse.end();
      return reply;
    }
    throw httpErr;
  }
}
