/**
 * The verify stream: `GET /v1/sessions/{id}/stream` upgraded to a WebSocket, over which a client
 * runs a session's verify rounds. Each text frame it sends is a verify request (the body of
 * `POST /v1/sessions/{id}/verify`) and each frame it gets back is that request's answer (the POST's
 * response body), or `{ "status": <HTTP status>, "error": {...} }` with the HTTP route's status and
 * error body (429 adds `retry_after_ms`). One round is in flight per session, as with the POST.
 *
 * It exists for cost, not features: the round itself (admission, forward pass, metrics) is the
 * POST route's `verifyRound`, but a round no longer pays an HTTP request — header parsing, the
 * framework's hooks, serialization and a response with headers — which took about a third of the
 * verifier's CPU per round on the fixture pair (docs/benchmarks.md, Speculative). Servers list
 * `verify_stream` in /v1/identity `features`; clients fall back to the POST route without it.
 */
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { badRequest, notFound, parseBody, toHttpError, type HttpError } from '../http.js';
import type { VerifierContext } from './context.js';
import { verifySchema } from './protocol.js';
import type { VerifyRound } from './routes-verify.js';

const STREAM_PATH = /^\/v1\/sessions\/([^/?#]+)\/stream(?:\?.*)?$/;
/** Label of stream frames in the request metrics. */
const STREAM_ROUTE = '/v1/sessions/:id/stream';

export interface VerifyStreamServer {
  /** Open streams. */
  readonly size: number;
  /** Closes every stream (the HTTP server no longer tracks upgraded sockets). */
  close(): void;
}

export function attachVerifyStream(
  server: Server,
  ctx: VerifierContext,
  round: VerifyRound,
  onError: (httpErr: HttpError, cause: unknown) => void,
): VerifyStreamServer {
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: 4 * 1024 * 1024 });

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const id = decodeSessionId(req.url ?? '');
    const refusal =
      id === undefined
        ? notFound(`no route ${req.method ?? 'GET'} ${req.url ?? ''}`, 'route_not_found')
        : ctx.sessions.has(id)
          ? undefined
          : notFound(`session ${id} not found (unknown, deleted or expired)`, 'session_not_found');
    if (refusal !== undefined || id === undefined) {
      refuseUpgrade(socket, refusal ?? notFound('not found', 'route_not_found'));
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => serveStream(ws, id, ctx, round, onError));
  });

  return {
    get size() {
      return wss.clients.size;
    },
    close() {
      for (const ws of wss.clients) ws.terminate();
      wss.close();
    },
  };
}

function serveStream(
  ws: WebSocket,
  id: string,
  ctx: VerifierContext,
  round: VerifyRound,
  onError: (httpErr: HttpError, cause: unknown) => void,
): void {
  const gone = new AbortController();
  ws.on('close', () => gone.abort());
  ws.on('error', () => gone.abort());
  ws.on('message', (data: RawData, isBinary: boolean) => {
    const t0 = performance.now();
    // A second frame before the answer meets the session's lease: 409, as on the POST route.
    verifyFrame(data, isBinary)
      .then(
        (body) => ({ status: 200, body }),
        (err: unknown) => {
          const httpErr = toHttpError(err);
          onError(httpErr, err);
          const retryMs = httpErr.headers['retry-after-ms'];
          return {
            status: httpErr.status,
            body: {
              status: httpErr.status,
              ...httpErr.body(),
              ...(retryMs === undefined ? {} : { retry_after_ms: Number(retryMs) }),
            },
          };
        },
      )
      .then(({ status, body }) => {
        ctx.metrics.request(STREAM_ROUTE, 'WS', status, (performance.now() - t0) / 1000);
        if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(body));
      })
      .catch(() => undefined);
  });

  async function verifyFrame(data: RawData, isBinary: boolean): Promise<object> {
    if (isBinary) throw badRequest('send verify requests as JSON text frames', 'invalid_json');
    let parsed: unknown;
    try {
      parsed = JSON.parse(rawText(data));
    } catch {
      throw badRequest('frame is not valid JSON: send the verify request body', 'invalid_json');
    }
    const body = parseBody(verifySchema, parsed);
    const lease = ctx.sessions.acquire(id);
    try {
      const { length, ...r } = await round(lease.value, body.draft_ids, body.draft_probs, gone.signal);
      return { ...r, context_tokens: length };
    } finally {
      lease.release();
    }
  }
}

function decodeSessionId(url: string): string | undefined {
  const m = STREAM_PATH.exec(url);
  if (m === null) return undefined;
  try {
    return decodeURIComponent(m[1] as string);
  } catch {
    return undefined;
  }
}

function rawText(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.isBuffer(data) ? data.toString('utf8') : Buffer.from(data).toString('utf8');
}

/** Answers an upgrade that cannot be served with a plain HTTP error response, then closes. */
function refuseUpgrade(socket: Duplex, err: HttpError): void {
  const body = JSON.stringify(err.body());
  const reason = err.status === 404 ? 'Not Found' : 'Bad Request';
  socket.end(
    `HTTP/1.1 ${err.status} ${reason}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}
