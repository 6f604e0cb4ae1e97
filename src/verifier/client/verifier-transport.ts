/**
 * The HTTP transport under `HttpVerifier` (http-verifier.ts): one verifier base URL with its own
 * keep-alive agent (a verify round trip must not pay a TCP handshake), per-request deadlines,
 * bounded retries of requests the server refused with 429/503 (honouring Retry-After; the server
 * did no work, so a retry is safe), and the mapping of HTTP failures to typed errors with their
 * exit codes (unreachable 1, timeout 7, bad input 2, unknown session 3, tokenizer mismatch 4).
 * The verifier's endpoints are documented in docs/operations.md and docs/cli.md (`verifier up`).
 */
import { Agent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import {
  ConflictError,
  NotFoundError,
  OperationalError,
  TimeoutError,
  UserError,
  type EdgectlError,
} from '../../foundation/errors.js';
import { VERIFIER_TOKEN_ENV } from '../protocol.js';
import type { HttpVerifierOptions } from './http-verifier.js';

interface JsonResponse {
  status: number;
  headers: IncomingMessage['headers'];
  body: unknown;
}

/** A verifier base URL with its own connection pool. */
export class VerifierHttp {
  readonly base: URL;
  private readonly agent: Agent;
  readonly timeoutMs: number;
  private readonly retries: number;
  readonly verifyStream: boolean;
  /** Authorization header (empty without a token), for requests and stream upgrades. */
  readonly authHeaders: Record<string, string>;

  constructor(url: string, opts: HttpVerifierOptions) {
    try {
      this.base = new URL(url);
    } catch {
      throw new UserError(`invalid verifier URL "${url}"`, {
        suggestion: 'Use http://host:port, e.g. http://127.0.0.1:8700.',
      });
    }
    if (this.base.protocol !== 'http:' && this.base.protocol !== 'https:') {
      throw new UserError(`invalid verifier URL "${url}": only http and https are supported`);
    }
    const agentOpts = { keepAlive: true, maxSockets: opts.maxSockets ?? 64 };
    this.agent = this.base.protocol === 'https:' ? new HttpsAgent(agentOpts) : new Agent(agentOpts);
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.retries = opts.retries ?? 3;
    this.verifyStream = opts.verifyStream ?? true;
    this.authHeaders = opts.token ? { authorization: `Bearer ${opts.token}` } : {};
  }

  url(path: string): URL {
    return new URL(path.replace(/^\//, ''), this.base.href.endsWith('/') ? this.base : `${this.base.href}/`);
  }

  /** One JSON request, retried on 429/503; non-2xx becomes a typed error. */
  json<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
    return this.retrying(method, path, () => this.send(method, path, body, signal), signal);
  }

  /**
   * Runs `attempt` until it answers 2xx, retrying 429/503 (the server refused before doing any
   * work) with the server's delay; any other status becomes a typed error. Shared by POST requests
   * and verify stream frames, so both transports retry and fail alike.
   */
  async retrying<T>(
    method: string,
    path: string,
    attempt: () => Promise<JsonResponse>,
    signal?: AbortSignal,
  ): Promise<T> {
    for (let n = 0; ; n++) {
      const res = await attempt();
      if (res.status >= 200 && res.status < 300) return res.body as T;
      if ((res.status === 429 || res.status === 503) && n < this.retries) {
        await sleep(retryDelayMs(res.headers, n), signal);
        continue;
      }
      throw this.httpError(method, path, res);
    }
  }

  /** Sends a request and returns the raw response stream (for SSE); the caller consumes it. */
  stream(method: string, path: string, body: unknown, signal?: AbortSignal): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      const req = this.open(method, path, body, signal, reject);
      req.on('response', (res) => {
        // Streams may legitimately stay open longer than one request timeout.
        req.setTimeout(0);
        resolve(res);
      });
    });
  }

  close(): void {
    this.agent.destroy();
  }

  private send(method: string, path: string, body: unknown, signal?: AbortSignal): Promise<JsonResponse> {
    return new Promise((resolve, reject) => {
      const req = this.open(method, path, body, signal, reject);
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = undefined;
          if (text) {
            try {
              parsed = JSON.parse(text);
            } catch {
              parsed = { error: { message: text.slice(0, 200) } };
            }
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: parsed });
        });
      });
    });
  }

  private open(
    method: string,
    path: string,
    body: unknown,
    signal: AbortSignal | undefined,
    reject: (err: unknown) => void,
  ): ReturnType<typeof httpRequest> {
    const url = this.url(path);
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = send(url, {
      method,
      agent: this.agent,
      headers: {
        accept: 'application/json, text/event-stream',
        ...this.authHeaders,
        ...(payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}),
      },
      ...(signal ? { signal } : {}),
    });
    req.setNoDelay(true);
    req.setTimeout(this.timeoutMs, () => {
      req.destroy(
        new TimeoutError(
          `verifier ${url.origin} did not answer ${method} ${url.pathname} within ${this.timeoutMs} ms`,
          {
            suggestion: 'Check that the verifier is not overloaded, or raise the timeout.',
          },
        ),
      );
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (err instanceof TimeoutError || err.name === 'AbortError') return reject(err);
      reject(
        new OperationalError(`verifier ${url.origin} is unreachable (${err.code ?? err.message})`, {
          code: 'E_VERIFIER_UNREACHABLE',
          suggestion: 'Start it with `edgectl verifier up --model <dir>` or check --verifier.',
          cause: err,
        }),
      );
    });
    req.end(payload);
    return req;
  }

  /** A verify stream's URL (ws:// or wss://) for a session. */
  streamUrl(path: string): URL {
    const url = this.url(path);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    return url;
  }

  /** The typed error for an error answer (an HTTP response, or a verify stream's error frame). */
  private httpError(method: string, path: string, res: JsonResponse): EdgectlError {
    const err = (res.body as { error?: { message?: string; code?: string } } | undefined)?.error;
    const message = `verifier ${method} ${path}: ${res.status} ${err?.message ?? 'error'}`;
    const details = { status: res.status, code: err?.code };
    if (res.status === 404) return new NotFoundError(message, { code: 'E_VERIFIER_NOT_FOUND', details });
    if (res.status === 409) return new ConflictError(message, { details });
    if (res.status === 401) {
      return new UserError(message, {
        code: 'E_VERIFIER_AUTH',
        details,
        suggestion: `Give the verifier's bearer token (${VERIFIER_TOKEN_ENV}, or --verifier-token where offered).`,
      });
    }
    if (res.status >= 400 && res.status < 500 && res.status !== 429) {
      return new UserError(message, { code: 'E_VERIFIER_REJECTED', details });
    }
    return new OperationalError(message, {
      code: res.status === 429 || res.status === 503 ? 'E_VERIFIER_OVERLOADED' : 'E_VERIFIER',
      details,
      ...(res.status === 429 || res.status === 503
        ? { suggestion: 'The verifier is overloaded; retry later.' }
        : {}),
    });
  }
}

/** The server's estimate (Retry-After-Ms, else Retry-After seconds) with jitter, capped at 5 s. */
function retryDelayMs(headers: IncomingMessage['headers'], attempt: number): number {
  const ms = Number(headers['retry-after-ms']);
  const s = Number(headers['retry-after']);
  const base =
    Number.isFinite(ms) && ms > 0 ? ms : Number.isFinite(s) && s > 0 ? s * 1000 : 50 * 2 ** attempt;
  // Jitter so clients refused together do not all come back together.
  return Math.min(5000, base * (0.5 + Math.random()));
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        reject(signal.reason);
      },
      { once: true },
    );
  });
}
