/**
 * The verify stream: `GET /v1/stream` upgraded to a WebSocket that a client keeps open, like a
 * kept-alive HTTP connection, and uses for verify rounds of any of its sessions. Each text frame it
 * sends is a verify request naming its session (`{"session_id": ..., ...}` plus the body of
 * `POST /v1/sessions/{id}/verify`); each frame it gets back answers the oldest open request with
 * the POST's response body plus `session_id`, or `{ "session_id", "status": <HTTP status>,
 * "error": {...} }` with the HTTP route's status and error body (429 adds `retry_after_ms`).
 * Answers come back in request order; clients send one request at a time per socket.
 *
 * It exists for cost, not features: the round itself (admission, forward pass, metrics) is the
 * POST route's `verifyRound`, but a round no longer pays an HTTP request — header parsing, the
 * framework's hooks, serialization and a response with headers — which took about a third of the
 * verifier's CPU per round on the fixture pair (docs/benchmarks.md, Speculative). Servers list
 * `verify_stream` in /v1/identity `features`; clients fall back to the POST route without it.
 */
import { STATUS_CODES, type IncomingMessage, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { checkBearer } from '../../http/auth.js';
import { badRequest, notFound, parseBody, toHttpError, type HttpError } from '../../http/http.js';
import type { VerifierContext } from './context.js';
import { verifyFrameSchema } from '../protocol.js';
import type { VerifyRound } from './routes-verify.js';

const STREAM_PATH = /^\/v1\/stream(?:\?.*)?$/;
/** Label of stream frames in the request metrics. */
const STREAM_ROUTE = '/v1/stream';

export interface VerifyStreamServer {
  /** Closes every stream (the HTTP server no longer tracks upgraded sockets). */
  close(): void;
}

export function attachVerifyStream(
  server: Server,
  ctx: VerifierContext,
  round: VerifyRound,
  onError: (httpErr: HttpError, cause: unknown) => void,
  /** Bearer token every upgrade must carry (fastify's hooks never see upgrades). */
  token?: string,
): VerifyStreamServer {
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: 4 * 1024 * 1024 });

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (!STREAM_PATH.test(req.url ?? '')) {
      refuseUpgrade(socket, notFound(`no route ${req.method ?? 'GET'} ${req.url ?? ''}`, 'route_not_found'));
      return;
    }
    const refused = token === undefined ? undefined : checkBearer(req.headers, token);
    if (refused) return refuseUpgrade(socket, refused);
    wss.handleUpgrade(req, socket, head, (ws) => serveStream(ws, ctx, round, onError));
  });

  return {
    close() {
      for (const ws of wss.clients) ws.terminate();
      wss.close();
    },
  };
}

function serveStream(
  ws: WebSocket,
  ctx: VerifierContext,
  round: VerifyRound,
  onError: (httpErr: HttpError, cause: unknown) => void,
): void {
  const gone = new AbortController();
  ws.on('close', () => gone.abort());
  ws.on('error', () => gone.abort());
  // Answers leave in request order even if a later round finished first (a client that pipelines).
  let answered: Promise<void> = Promise.resolve();
  ws.on('message', (data: RawData, isBinary: boolean) => {
    const t0 = performance.now();
    const frame = parseFrame(data, isBinary);
    const answer = verifyFrame(frame).then(
      (body) => ({ status: 200, body: { session_id: frame.sessionId, ...body } }),
      (err: unknown) => {
        const httpErr = toHttpError(err);
        onError(httpErr, err);
        const retryMs = httpErr.headers['retry-after-ms'];
        return {
          status: httpErr.status,
          body: {
            ...(frame.sessionId === undefined ? {} : { session_id: frame.sessionId }),
            status: httpErr.status,
            ...httpErr.body(),
            ...(retryMs === undefined ? {} : { retry_after_ms: Number(retryMs) }),
          },
        };
      },
    );
    answered = answered
      .then(() => answer)
      .then(({ status, body }) => {
        ctx.metrics.request(STREAM_ROUTE, 'WS', status, (performance.now() - t0) / 1000);
        if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(body));
      })
      .catch(() => undefined);
  });

  async function verifyFrame(frame: ParsedFrame): Promise<object> {
    if (frame.error !== undefined) throw frame.error;
    const body = parseBody(verifyFrameSchema, frame.json);
    const lease = ctx.sessions.acquire(body.session_id);
    try {
      const { length, ...r } = await round(
        lease.value,
        body.draft_ids,
        body.draft_probs,
        gone.signal,
        body.token_masks,
      );
      return { ...r, context_tokens: length };
    } finally {
      lease.release();
    }
  }
}

interface ParsedFrame {
  json: unknown;
  /** The frame's session_id when it has one (echoed in the answer, errors included). */
  sessionId: string | undefined;
  error: HttpError | undefined;
}

function parseFrame(data: RawData, isBinary: boolean): ParsedFrame {
  if (isBinary) {
    return {
      json: undefined,
      sessionId: undefined,
      error: badRequest('send verify requests as JSON text frames', 'invalid_json'),
    };
  }
  try {
    const json: unknown = JSON.parse(rawText(data));
    const id = (json as { session_id?: unknown } | null)?.session_id;
    return { json, sessionId: typeof id === 'string' ? id : undefined, error: undefined };
  } catch {
    return {
      json: undefined,
      sessionId: undefined,
      error: badRequest(
        'frame is not valid JSON: send {"session_id": ..., "draft_ids": [...]}',
        'invalid_json',
      ),
    };
  }
}

function rawText(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.isBuffer(data) ? data.toString('utf8') : Buffer.from(data).toString('utf8');
}

/** Answers an upgrade that cannot be served with a plain HTTP error response, then closes. */
function refuseUpgrade(socket: Duplex, err: HttpError): void {
  const body = JSON.stringify(err.body());
  const reason = STATUS_CODES[err.status] ?? 'Bad Request';
  const extra = Object.entries(err.headers).map(([k, v]) => `${k}: ${v}\r\n`);
  socket.end(
    `HTTP/1.1 ${err.status} ${reason}\r\n${extra.join('')}content-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}
