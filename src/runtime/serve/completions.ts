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
import { parseResponseFormat } from './response-format.js';
import { SseStream } from './sse-stream.js';
import { toolCallChunk, toolCallsInfo, toolMessage, toolPlanOf, withToolConstraint } from './tools-wire.js';
import { LogprobsRenderer, withLogprobs } from './logprobs-render.js';
import { checkNeutralFields } from '../../http/openai-fields.js';

export type Kind = 'chat' | 'completion';

export const PATHS: Record<Kind, string> = { chat: '/v1/chat/completions', completion: '/v1/completions' };

interface Parsed {
  request: EngineRequest;
  /** Set when the request asked for logprobs. */
  logprobs: LogprobsRenderer | undefined;
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
  checkNeutralFields(kind, body);
  const chat = kind === 'chat' ? (body as ChatRequest) : undefined;
  const p = chat ? undefined : (body as CompletionRequest).prompt;
  const tools = chat ? toolPlanOf(chat) : undefined;
  const constraint = withToolConstraint(tools, parseResponseFormat(req.body));
  const logprobs = requestedLogprobs(chat, chat ? undefined : (body as CompletionRequest));
  const request: EngineRequest = {
    model: body.model,
    prompt: chat ? { messages: chat.messages } : { text: typeof p === 'string' ? p : (p?.[0] as string) },
    stops: [...stopList(body.stop), ...(tools?.stops ?? [])],
    ...(tools ? { tools } : {}),
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
    ...(constraint ? { constraint } : {}),
    logprobs,
  };
  return {
    request,
    logprobs: logprobs === undefined ? undefined : new LogprobsRenderer(kind),
    stream: body.stream === true,
    includeUsage: body.stream_options?.include_usage === true,
    base: {
      id: `${kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${randomUUID().replaceAll('-', '')}`,
      created: Math.floor(Date.now() / 1000),
      model: body.model,
    },
  };
}

/** Top alternatives asked for (chat `logprobs` + `top_logprobs`, completions `logprobs`); undefined: none. */
function requestedLogprobs(
  chat: ChatRequest | undefined,
  completion: CompletionRequest | undefined,
): number | undefined {
  if (completion) return completion.logprobs ?? undefined;
  const top = chat?.top_logprobs ?? undefined;
  if (chat?.logprobs !== true) {
    if (top !== undefined)
      throw badRequest('top_logprobs: requires logprobs: true', 'invalid_body', 'top_logprobs');
    return undefined;
  }
  return top ?? 0;
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
    else if (e.type === 'tool_call') this.sendTool(e);
    else if (e.type === 'route') this.route = e.route;
    else if (e.type === 'blocked') {
      this.route = 'blocked';
      void this.reply.header('x-edgectl-route', 'blocked');
    } else if (e.type === 'fallback') {
      this.route = e.route;
      this.unverified = e.unverified !== false;
    } else if (e.type === 'logprob') this.parsed.logprobs?.add(e.token);
    else if (e.type === 'finish') return this.finish(e);
    return undefined;
  }

  private emit(piece: string): void {
    const { sse, kind, parsed } = this;
    if (piece === '') return;
    const lp = parsed.logprobs;
    if (!sse) this.text += piece;
    else if (lp?.hasPending) {
      sse.send(withLogprobs(chunk(kind, parsed.base, { text: piece, first: !sse.started }), lp.take()));
    } else if (!sse.started) sse.send(chunk(kind, parsed.base, { text: piece, first: true }));
    else sse.write(this.delta(piece));
  }

  /** A piece of a tool call: streamed as OpenAI does; a JSON body takes the calls from the finish. */
  private sendTool(e: Extract<EngineEvent, { type: 'tool_call' }>): void {
    const sse = this.sse;
    if (sse) sse.send(toolCallChunk(this.parsed.base, e, !sse.started));
  }

  private finish(e: Extract<EngineEvent, { type: 'finish' }>): unknown {
    const { sse, kind, parsed, reply } = this;
    if (e.reason === 'aborted') {
      if (sse?.started) sse.end();
      return reply;
    }
    const u = usage(e.promptTokens, e.completionTokens);
    const finish = e.reason;
    const lp = parsed.logprobs;
    const withTools = e.tools ? { ...e.info, tool_calls: toolCallsInfo(e.tools) } : e.info;
    const info = lp ? { ...withTools, ...lp.info() } : withTools;
    if (sse) {
      if (lp?.hasPending) {
        // Tokens whose text was held back (a stop string, a split character) or cut.
        sse.send(withLogprobs(chunk(kind, parsed.base, { text: '', first: !sse.started }), lp.take()));
      }
      if (!sse.started) sse.send(chunk(kind, parsed.base, { text: '', first: true }));
      sse.send(chunk(kind, parsed.base, { text: '', finish, edgectl: info }));
      if (parsed.includeUsage) sse.send(usageChunk(kind, parsed.base, u));
      sse.end();
      return reply;
    }
    void reply.header('x-edgectl-route', e.route);
    if (e.unverified) void reply.header('x-edgectl-unverified', 'true');
    const body = e.tools
      ? chatResponse(parsed.base, this.text, finish, u, info, toolMessage(e.tools))
      : kind === 'chat'
        ? chatResponse(parsed.base, this.text, finish, u, info)
        : completionResponse(parsed.base, this.text, finish, u, info);
    return lp ? withLogprobs(body, lp.take()) : body;
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
