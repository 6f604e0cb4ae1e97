/**
 * The client end of the verify stream (server: src/verifier/server/verify-stream.ts): a pool of
 * kept-alive WebSockets to one verifier, like an HTTP agent's sockets. A round takes an idle socket
 * (or opens one), sends one JSON request frame naming its session, waits for the one answer frame
 * and puts the socket back, so sessions after the first pay no connection setup. The pool owns the
 * sockets' life only; what a frame means (errors, retries) is the HTTP verifier's business, so both
 * transports behave the same.
 *
 * A stream that cannot be opened (a proxy without WebSocket support that refuses or drops the
 * upgrade, an older server, a verifier restarting) raises `StreamUnavailableError` and the caller
 * falls back to POST rounds; the pool tries again a minute later. A socket that fails after a
 * request was sent is an error, never a fallback, because the server may already have run that
 * round.
 */
import WebSocket from 'ws';
import { OperationalError, TimeoutError } from '../../foundation/errors.js';

/** How long the pool sends rounds over POST after the verifier refused an upgrade. */
const RETRY_UPGRADE_MS = 60_000;

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

/** Kept-alive verify streams to one verifier (one request in flight per socket). */
export class VerifyStreamPool {
  private idle: VerifyStreamSocket[] = [];
  private readonly all = new Set<VerifyStreamSocket>();
  private refusedUntil = 0;

  constructor(
    /** ws:// or wss:// URL of /v1/stream. */
    private readonly url: URL,
    private readonly timeoutMs: number,
    private readonly now: () => number = () => performance.now(),
    /** Sent with every upgrade (the verifier's bearer token). */
    private readonly headers: Record<string, string> = {},
  ) {}

  /** False for a while after the verifier refused an upgrade: rounds go over POST meanwhile. */
  get available(): boolean {
    return this.now() >= this.refusedUntil;
  }

  /** Open sockets (idle or busy). */
  get size(): number {
    return this.all.size;
  }

  /** Sends one request frame over an idle socket (or a new one); resolves with the answer frame. */
  async request(body: object): Promise<unknown> {
    let socket = this.idle.pop();
    if (socket === undefined) {
      socket = new VerifyStreamSocket(this.url, this.timeoutMs, this.headers);
      this.all.add(socket);
    }
    try {
      const frame = await socket.request(body);
      this.idle.push(socket);
      return frame;
    } catch (err) {
      this.all.delete(socket);
      socket.close();
      if (err instanceof StreamUnavailableError) this.refusedUntil = this.now() + RETRY_UPGRADE_MS;
      throw err;
    }
  }

  close(): void {
    for (const socket of this.all) socket.close();
    this.all.clear();
    this.idle = [];
  }
}

/** One WebSocket of the pool: opened on first use, reopened after the server closed it. */
class VerifyStreamSocket {
  private socket: Promise<WebSocket> | undefined;
  private pending: Pending | undefined;
  private closed = false;

  constructor(
    private readonly url: URL,
    private readonly timeoutMs: number,
    private readonly headers: Record<string, string>,
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
        headers: this.headers,
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
        reject(new StreamUnavailableError(`verify stream refused with HTTP ${status}`));
      });
      ws.on('message', (data: WebSocket.RawData) => this.answer(data));
      ws.on('error', (err: NodeJS.ErrnoException) => {
        if (opened) return this.fail(err);
        // A proxy that drops upgrades looks like this too; POST rounds tell the two apart (a verifier
        // that is really unreachable fails them with the usual error).
        reject(new StreamUnavailableError(`verify stream failed to open: ${err.code ?? err.message}`));
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
