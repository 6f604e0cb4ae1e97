/**
 * The client end of a session's verify stream (server: src/server/verifier/verify-stream.ts): one
 * WebSocket per verifier session, opened on the first round, carrying one JSON request frame and
 * one JSON answer frame per round. It owns the socket's life only; what a frame means (errors,
 * retries) is the HTTP verifier's business, so both transports behave the same.
 *
 * A stream that cannot be opened for a reason other than "no such session" raises
 * `StreamUnavailableError`, and the caller falls back to the POST route: a proxy or an older server
 * that refuses the upgrade costs speed, not service. A stream that fails after a request was sent
 * is an error, never a fallback, because the server may already have run that round.
 */
import WebSocket from 'ws';
import { NotFoundError, OperationalError, TimeoutError } from '../cli/errors.js';

/** The stream could not be opened (upgrade refused or failed); the POST route still works. */
export class StreamUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StreamUnavailableError';
  }
}

interface Pending {
  resolve: (frame: unknown) => void;
  reject: (err: unknown) => void;
  timer: NodeJS.Timeout;
}

export class VerifyStreamClient {
  private socket: Promise<WebSocket> | undefined;
  private pending: Pending | undefined;
  private closed = false;

  constructor(
    /** ws:// or wss:// URL of /v1/sessions/{id}/stream. */
    private readonly url: URL,
    private readonly timeoutMs: number,
  ) {}

  /** Sends one request frame and resolves with the parsed answer frame. */
  async request(body: object): Promise<unknown> {
    if (this.closed) throw new OperationalError('the verify stream is closed', { code: 'E_VERIFIER' });
    if (this.pending !== undefined) throw new Error('one verify request at a time per stream');
    const ws = await this.open();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending = undefined;
        ws.terminate();
        reject(
          new TimeoutError(
            `verifier ${this.url.host} did not answer a verify round on its stream within ${this.timeoutMs} ms`,
            { suggestion: 'Check that the verifier is not overloaded, or raise the timeout.' },
          ),
        );
      }, this.timeoutMs);
      this.pending = { resolve, reject, timer };
      ws.send(JSON.stringify(body));
    });
  }

  close(): void {
    this.closed = true;
    void this.socket?.then(
      (ws) => ws.close(1000),
      () => undefined,
    );
    this.socket = undefined;
  }

  private open(): Promise<WebSocket> {
    this.socket ??= new Promise<WebSocket>((resolve, reject) => {
      const ws = new WebSocket(this.url, {
        perMessageDeflate: false,
        handshakeTimeout: this.timeoutMs,
        maxPayload: 4 * 1024 * 1024,
      });
      let opened = false;
      ws.on('open', () => {
        opened = true;
        resolve(ws);
      });
      ws.on('unexpected-response', (_req, res) => {
        const status = res.statusCode ?? 0;
        res.resume();
        ws.terminate();
        reject(
          status === 404
            ? new NotFoundError(`verifier session stream ${this.url.pathname}: 404 session not found`, {
                code: 'E_VERIFIER_NOT_FOUND',
                details: { status },
              })
            : new StreamUnavailableError(`verify stream refused with HTTP ${status}`),
        );
      });
      ws.on('message', (data: WebSocket.RawData) => this.answer(data));
      ws.on('error', (err: NodeJS.ErrnoException) => {
        if (!opened) reject(new StreamUnavailableError(`verify stream failed: ${err.code ?? err.message}`));
        else this.fail(err);
      });
      ws.on('close', () => {
        this.socket = undefined;
        this.fail(undefined);
      });
    });
    // A failed open is not cached: the next round tries again (or the caller falls back).
    this.socket.catch(() => (this.socket = undefined));
    return this.socket;
  }

  private answer(data: WebSocket.RawData): void {
    const pending = this.pending;
    if (pending === undefined) return;
    this.pending = undefined;
    clearTimeout(pending.timer);
    const text = Array.isArray(data)
      ? Buffer.concat(data).toString('utf8')
      : Buffer.isBuffer(data)
        ? data.toString('utf8')
        : Buffer.from(data).toString('utf8');
    try {
      pending.resolve(JSON.parse(text));
    } catch {
      pending.reject(
        new OperationalError(`verifier sent a verify answer that is not JSON: ${text.slice(0, 80)}`, {
          code: 'E_VERIFIER_PROTOCOL',
        }),
      );
    }
  }

  private fail(err: NodeJS.ErrnoException | undefined): void {
    const pending = this.pending;
    if (pending === undefined) return;
    this.pending = undefined;
    clearTimeout(pending.timer);
    pending.reject(
      new OperationalError(
        `verifier ${this.url.host} closed the verify stream during a round${err ? ` (${err.code ?? err.message})` : ''}`,
        {
          code: 'E_VERIFIER_UNREACHABLE',
          suggestion: 'Check that the verifier is running; the session may need to be restarted.',
          ...(err ? { cause: err } : {}),
        },
      ),
    );
  }
}
