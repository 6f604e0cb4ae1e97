/**
 * Shared HTTP plumbing for edgectl's servers (the verifier now, the site runtime later): a fastify
 * instance whose every error, ours or the framework's, leaves as an OpenAI-style JSON body
 * `{ error: { message, type, code } }` with the right status; request bodies validated with zod into
 * 400s that name the field; and a `listen` that reports the bound address (port 0 = random).
 *
 * Slow clients are cut off (issue #14 item 10): a request whose headers take longer than
 * `headersTimeoutMs`, or whose headers and body together take longer than `requestTimeoutMs`, gets
 * 408 and its connection closed, so a client trickling a body a byte at a time cannot hold a socket
 * (and its buffered body) forever. Node checks these deadlines on a timer, run here at a quarter of
 * the shorter one so the cut comes close to the deadline.
 */
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { z } from 'zod';
import { ExitCode, isEdgectlError } from '../foundation/errors.js';
import { API_ERROR_CODES } from './api-errors.js';

/** OpenAI's error `type` vocabulary, plus the overload types OpenAI-compatible servers use. */
export type HttpErrorType =
  'invalid_request_error' | 'not_found_error' | 'conflict_error' | 'overloaded_error' | 'server_error';

export interface HttpErrorBody {
  error: { message: string; type: HttpErrorType; code: string; param?: string };
}

/** An error that maps to one HTTP response; everything in a handler that the client caused is one. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code: string,
    readonly type: HttpErrorType = status >= 500 ? 'server_error' : 'invalid_request_error',
    readonly headers: Record<string, string> = {},
    readonly param?: string,
  ) {
    super(message);
    this.name = 'HttpError';
  }

  body(): HttpErrorBody {
    return {
      error: {
        message: this.message,
        type: this.type,
        code: this.code,
        ...(this.param === undefined ? {} : { param: this.param }),
      },
    };
  }
}

export const badRequest = (message: string, code: string, param?: string): HttpError =>
  new HttpError(400, message, code, 'invalid_request_error', {}, param);
export const notFound = (message: string, code: string): HttpError =>
  new HttpError(404, message, code, 'not_found_error');

/** 400 `context_length_exceeded` naming the field that made the context overflow. */
export const contextLengthExceeded = (message: string, param: string): HttpError =>
  badRequest(message, API_ERROR_CODES.contextLengthExceeded, param);

/** 400 `unsupported_value`: the field is known but this value is not honoured here. */
export const unsupportedValue = (param: string, why: string): HttpError =>
  badRequest(`${param}: ${why}`, API_ERROR_CODES.unsupportedValue, param);

/** 404 `model_not_found` in OpenAI's shape (`param: "model"`). */
export const modelNotFound = (message: string): HttpError =>
  new HttpError(404, message, API_ERROR_CODES.modelNotFound, 'not_found_error', {}, 'model');

/** Framework error codes that are the client's fault, and what we call them. */
const frameworkErrors: Record<string, { status: number; code: string; hint: string }> = {
  FST_ERR_CTP_INVALID_JSON_BODY: { status: 400, code: 'invalid_json', hint: 'send a valid JSON body' },
  FST_ERR_CTP_EMPTY_JSON_BODY: { status: 400, code: 'invalid_json', hint: 'send a JSON body' },
  FST_ERR_CTP_BODY_TOO_LARGE: { status: 413, code: 'body_too_large', hint: 'send a smaller body' },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: {
    status: 415,
    code: 'unsupported_media_type',
    hint: 'send Content-Type: application/json',
  },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { status: 400, code: 'invalid_content_length', hint: '' },
};

/** Turns anything thrown by a handler or by fastify into a status and an OpenAI-style body. */
export function toHttpError(err: unknown): HttpError {
  if (err instanceof HttpError) return err;
  // Input checks deeper in src/ (tokenizer, model session) throw UserError: still the client's fault.
  if (isEdgectlError(err) && err.exitCode === ExitCode.Usage) {
    return new HttpError(400, err.message, err.code.toLowerCase().replace(/^e_/, ''));
  }
  const e = err as { code?: string; statusCode?: number; message?: string };
  const known = e.code ? frameworkErrors[e.code] : undefined;
  if (known) {
    const message = known.hint
      ? `${e.message ?? 'bad request'}: ${known.hint}`
      : (e.message ?? 'bad request');
    return new HttpError(known.status, message, known.code);
  }
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return new HttpError(e.statusCode, e.message ?? 'bad request', 'bad_request');
  }
  return new HttpError(500, `internal error: ${e.message ?? String(err)}`, 'internal_error', 'server_error');
}

export function sendError(reply: FastifyReply, err: HttpError): FastifyReply {
  for (const [k, v] of Object.entries(err.headers)) void reply.header(k, v);
  return reply.status(err.status).send(err.body());
}

/** Defaults of the slow-client deadlines (see the module comment). */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
export const DEFAULT_HEADERS_TIMEOUT_MS = 10_000;

export interface HttpAppOptions {
  /** Largest accepted request body in bytes. */
  bodyLimit?: number;
  /** Longest a client may take to send a whole request, headers and body (default 30 s). */
  requestTimeoutMs?: number;
  /** Longest a client may take to send the request headers (default 10 s, at most requestTimeoutMs). */
  headersTimeoutMs?: number;
  /** Called with every error response (the daemon logs 5xx, metrics count 429s). */
  onError?: (httpErr: HttpError, cause: unknown, req: FastifyRequest) => void;
}

/**
 * Errors Node raises before a request reaches fastify (a slow client's deadline, malformed HTTP),
 * answered with the same OpenAI-style body as everything else, then the connection is closed.
 */
function clientErrorHandler(err: NodeJS.ErrnoException, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const known: Record<string, [number, string, string]> = {
    ERR_HTTP_REQUEST_TIMEOUT: [
      408,
      'request_timeout',
      'the request was not received in time; send it faster',
    ],
    HPE_HEADER_OVERFLOW: [431, 'headers_too_large', 'the request headers are too large'],
  };
  const [status, code, message] = known[err.code ?? ''] ?? [400, 'bad_request', 'malformed HTTP request'];
  const body = JSON.stringify(new HttpError(status, message, code).body());
  if (!socket.writable) return void socket.destroy();
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\nconnection: close\r\ncontent-type: application/json\r\n` +
      `content-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

/** A fastify instance with edgectl's error conventions installed. */
export function createHttpApp(opts: HttpAppOptions = {}): FastifyInstance {
  const requestTimeout = opts.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  const headersTimeout = Math.min(opts.headersTimeoutMs ?? DEFAULT_HEADERS_TIMEOUT_MS, requestTimeout);
  if (!(requestTimeout > 0 && headersTimeout > 0)) {
    throw new TypeError(
      `request and headers timeouts must be > 0 ms, not ${requestTimeout}/${headersTimeout}`,
    );
  }
  const app = Fastify({
    logger: false,
    bodyLimit: opts.bodyLimit ?? 4 * 1024 * 1024,
    requestTimeout,
    clientErrorHandler,
    http: {
      requestTimeout,
      headersTimeout,
      connectionsCheckingInterval: Math.max(10, Math.min(1000, Math.floor(headersTimeout / 4))),
    },
    // Keep-alive clients (the speculative loop) reuse one socket per stream; don't cut them early.
    keepAliveTimeout: 65_000,
    forceCloseConnections: true,
  });
  app.setErrorHandler((err, req, reply) => {
    const httpErr = toHttpError(err);
    opts.onError?.(httpErr, err, req);
    return sendError(reply, httpErr);
  });
  app.setNotFoundHandler((req, reply) =>
    sendError(reply, notFound(`no route ${req.method} ${req.url}`, 'route_not_found')),
  );
  return app;
}

/**
 * Validates a parsed JSON body; the 400 names the first offending field. A field a strict schema
 * does not know is `unknown_parameter` with `param` the field's path (zod reports it on the parent).
 */
export function parseBody<S extends z.ZodType>(schema: S, body: unknown): z.infer<S> {
  const result = schema.safeParse(body ?? {});
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const at = issue ? issue.path.map(String) : [];
  if (issue?.code === 'unrecognized_keys' && issue.keys[0] !== undefined) {
    const field = [...at, issue.keys[0]].join('.');
    throw badRequest(
      `${field}: unrecognized or unsupported request field (this server refuses fields it would not honour; see docs/running-sites.md)`,
      API_ERROR_CODES.unknownParameter,
      field,
    );
  }
  const field = at.join('.');
  const message = issue ? issue.message : 'invalid body';
  throw badRequest(field ? `${field}: ${message}` : message, API_ERROR_CODES.invalidBody, field || undefined);
}

export interface BoundAddress {
  host: string;
  port: number;
  /** `http://host:port`, ready for clients. */
  url: string;
}

/** Listens and reports the actual address (port 0 picks a free one). */
export async function listen(app: FastifyInstance, host: string, port: number): Promise<BoundAddress> {
  await app.listen({ host, port });
  const addr = app.server.address();
  if (addr === null || typeof addr === 'string') throw new Error(`unexpected server address ${String(addr)}`);
  const shownHost = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return { host: addr.address, port: addr.port, url: `http://${shownHost}:${addr.port}` };
}
