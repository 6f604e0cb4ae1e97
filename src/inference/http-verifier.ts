/**
 * The engine's `Verifier` interface over HTTP: a client of the verifier service (src/server/verifier),
 * so `generateSpeculative` runs identically against a remote verifier and an in-process one. It owns
 * the transport concerns: one keep-alive agent per verifier (a round trip must not pay a TCP
 * handshake), per-request timeouts, bounded retries on 429/503 honouring Retry-After (the server
 * refused before doing any work, so a retry is safe), and typed errors — unreachable (1), timeout
 * (7), bad input (2), unknown session (3), tokenizer mismatch (4). It also streams OpenAI
 * completions (`--route cloud`). Requests use node:http rather than fetch because fetch's pool
 * cannot be sized or closed per verifier.
 */
import { Agent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import {
  ConflictError,
  NotFoundError,
  OperationalError,
  TimeoutError,
  UserError,
  VerificationError,
  type EdgectlError,
} from '../cli/errors.js';
import {
  VERIFIER_TOKEN_ENV,
  type CompletionRequest,
  type CompletionResponse,
  type CreateSessionResponse,
  type IdentityResponse,
  type VerifierFeature,
  type VerifyResponse,
} from '../server/verifier/protocol.js';
import { hasRepetitionPenalty, type SamplingParams } from './sampling.js';
import { StreamUnavailableError, VerifyStreamPool } from './verify-stream-client.js';
import {
  toSparse,
  type DraftDistribution,
  type Verifier,
  type VerifierSession,
  type VerifierStartOptions,
  type VerifyRequest,
  type VerifyResult,
} from './verifier.js';

export interface HttpVerifierOptions {
  /** Per-request deadline (default 30 s). */
  timeoutMs?: number;
  /** Sockets kept per verifier (default 64: one per concurrent stream). */
  maxSockets?: number;
  /** Retries of a request the server refused with 429/503 (default 3). */
  retries?: number;
  /** Refuse a verifier whose tokenizer.json has another SHA-256 (draft and verifier must share it). */
  expectTokenizerSha256?: string;
  /**
   * Run verify rounds over kept-alive verify streams (WebSockets) where the server offers them (default
   * true); false keeps every round a POST.
   */
  verifyStream?: boolean;
  /** Bearer token the verifier requires (`verifier up --token`); sent on requests and streams. */
  token?: string;
}

interface JsonResponse {
  status: number;
  headers: IncomingMessage['headers'];
  body: unknown;
}

/** A verifier base URL with its own connection pool. */
class VerifierHttp {
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

function samplingWire(
  sampling: SamplingParams | undefined,
  seed: number | undefined,
): Record<string, number> {
  const wire: Record<string, number> = { temperature: sampling?.temperature ?? 0 };
  if (sampling?.topP !== undefined) wire.top_p = sampling.topP;
  if (sampling?.topK !== undefined) wire.top_k = sampling.topK;
  // Sent only when it changes anything, so penalty-free sessions still work with older servers.
  if (sampling !== undefined && hasRepetitionPenalty(sampling))
    wire.repetition_penalty = sampling.repetitionPenalty as number;
  if (seed !== undefined) wire.seed = seed;
  return wire;
}

function wireDistribution(d: DraftDistribution): { ids: number[]; probs: number[] } {
  return d instanceof Float32Array ? toSparse(d) : d;
}

export class HttpVerifier implements Verifier {
  private pool: VerifyStreamPool | undefined;

  private constructor(
    private readonly http: VerifierHttp,
    readonly identity: IdentityResponse,
  ) {}

  /** Connects and reads /v1/identity (vocabulary, context, digests); checks the tokenizer if asked. */
  static async connect(url: string, opts: HttpVerifierOptions = {}): Promise<HttpVerifier> {
    const http = new VerifierHttp(url, opts);
    let identity: IdentityResponse;
    try {
      identity = await http.json<IdentityResponse>('GET', '/v1/identity');
    } catch (err) {
      http.close();
      throw err;
    }
    const expected = opts.expectTokenizerSha256;
    if (expected !== undefined && identity.tokenizer.sha256 !== expected) {
      http.close();
      throw new VerificationError(
        `verifier ${url} uses another tokenizer (sha256 ${identity.tokenizer.sha256.slice(0, 12)}…, the draft's is ${expected.slice(0, 12)}…)`,
        {
          code: 'E_TOKENIZER_MISMATCH',
          suggestion: 'Draft and verifier must share one tokenizer.json; pick the matching model pair.',
        },
      );
    }
    return new HttpVerifier(http, identity);
  }

  get url(): string {
    return this.http.base.href;
  }

  get vocabSize(): number {
    return this.identity.tokenizer.vocab_size;
  }

  get maxContext(): number {
    return this.identity.max_context;
  }

  /** Verify stream sockets open to this verifier (shared by all its sessions). */
  get streamSockets(): number {
    return this.pool?.size ?? 0;
  }

  /** The verify stream pool, when the server offers the stream and the client wants it. */
  private streams(): VerifyStreamPool | undefined {
    if (!this.http.verifyStream || !this.supports('verify_stream')) return undefined;
    this.pool ??= new VerifyStreamPool(
      this.http.streamUrl('/v1/stream'),
      this.http.timeoutMs,
      undefined,
      this.http.authHeaders,
    );
    return this.pool;
  }

  /** Whether the server announced an optional protocol feature in /v1/identity. */
  supports(feature: VerifierFeature): boolean {
    return this.identity.features?.includes(feature) ?? false;
  }

  /**
   * Refuses, before any request, a repetition penalty this server would not apply the way the
   * draft does (a server that predates the field refuses it; one that ignored it would break
   * greedy exactness silently).
   */
  requirePenaltySupport(sampling: SamplingParams | undefined): void {
    if (sampling === undefined || !hasRepetitionPenalty(sampling) || this.supports('repetition_penalty'))
      return;
    throw new UserError(
      `repetition_penalty: the verifier does not support it (its /v1/identity features lack "repetition_penalty")`,
      {
        code: 'E_SAMPLING',
        suggestion: 'Upgrade the verifier to this edgectl version, or leave repetition_penalty at 1.',
      },
    );
  }

  async start(promptIds: readonly number[], opts: VerifierStartOptions = {}): Promise<HttpVerifierSession> {
    this.requirePenaltySupport(opts.sampling);
    // Older servers refuse unknown fields, so the first token is asked for only where announced.
    const first = opts.onFirstToken !== undefined && this.supports('first_token');
    const res = await this.http.json<CreateSessionResponse>('POST', '/v1/sessions', {
      prompt_ids: promptIds,
      sampling: samplingWire(opts.sampling, opts.seed),
      ...(first ? { first_token: true } : {}),
    });
    const session = new HttpVerifierSession(this.http, res.session_id, res.prompt_tokens, this.streams());
    if (first && typeof res.first_token === 'number') {
      session.firstToken = res.first_token;
      opts.onFirstToken?.(res.first_token);
    }
    return session;
  }

  /** Cloud-only generation: streams OpenAI completion chunks from /v1/completions. */
  async *complete(
    req: CompletionRequest,
    signal?: AbortSignal,
  ): AsyncGenerator<CompletionResponse, void, undefined> {
    if (req.repetition_penalty !== undefined)
      this.requirePenaltySupport({ temperature: 0, repetitionPenalty: req.repetition_penalty });
    const res = await this.http.stream('POST', '/v1/completions', { ...req, stream: true }, signal);
    if ((res.statusCode ?? 0) >= 400) {
      let text = '';
      for await (const c of res) text += (c as Buffer).toString('utf8');
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        body = { error: { message: text.slice(0, 200) } };
      }
      const e = (body as { error?: { message?: string } }).error;
      const message = `verifier POST /v1/completions: ${res.statusCode} ${e?.message ?? 'error'}`;
      throw res.statusCode === 429 || res.statusCode === 503 || (res.statusCode ?? 0) >= 500
        ? new OperationalError(message)
        : new UserError(message);
    }
    let buffer = '';
    for await (const chunk of res) {
      buffer += (chunk as Buffer).toString('utf8');
      for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = block
          .split('\n')
          .filter((l) => l.startsWith('data:'))
          .map((l) => l.slice(5).trimStart())
          .join('\n');
        if (data === '') continue;
        if (data === '[DONE]') return;
        const parsed = JSON.parse(data) as CompletionResponse & { error?: { message?: string } };
        if (parsed.error)
          throw new OperationalError(`verifier stream failed: ${parsed.error.message ?? 'error'}`);
        yield parsed;
      }
    }
    throw new OperationalError('verifier closed the completion stream before [DONE]');
  }

  /** Closes the kept-alive sockets. */
  close(): void {
    this.pool?.close();
    this.http.close();
  }
}

export class HttpVerifierSession implements VerifierSession {
  /** The verifier's first token, when the session was created with it. */
  firstToken: number | undefined;
  /** How the last verify round travelled: over the verify stream, or as a POST. */
  lastTransport: 'stream' | 'post' | undefined;
  private closed = false;

  constructor(
    private readonly http: VerifierHttp,
    readonly id: string,
    readonly promptTokens: number,
    /** The verifier's verify stream pool; undefined: every round is a POST. */
    private readonly streams: VerifyStreamPool | undefined = undefined,
  ) {}

  async verify(request: VerifyRequest): Promise<VerifyResult> {
    const body: Record<string, unknown> = { draft_ids: request.draft };
    if (request.draftDists !== undefined) body.draft_probs = request.draftDists.map(wireDistribution);
    const res = (await this.verifyOverStream(body)) ?? (await this.verifyOverPost(body));
    return {
      accepted: res.accepted,
      nextToken: res.next_token,
      length: res.context_tokens,
      verifierMs: res.verifier_ms,
    };
  }

  private async verifyOverPost(body: Record<string, unknown>): Promise<VerifyResponse> {
    this.lastTransport = 'post';
    return this.http.json<VerifyResponse>('POST', `/v1/sessions/${encodeURIComponent(this.id)}/verify`, body);
  }

  /** One round over the verify stream, retried on 429/503 like a POST; undefined: use POST. */
  private async verifyOverStream(body: Record<string, unknown>): Promise<VerifyResponse | undefined> {
    const streams = this.streams;
    if (streams === undefined || !streams.available) return undefined;
    try {
      return await this.http.retrying<VerifyResponse>('WS', `/v1/stream (session ${this.id})`, async () => {
        const frame = (await streams.request({ session_id: this.id, ...body })) as {
          status?: unknown;
          retry_after_ms?: unknown;
        };
        this.lastTransport = 'stream';
        // An error frame carries the HTTP route's status (and 429's delay); an answer has none.
        return typeof frame.status === 'number'
          ? { status: frame.status, headers: { 'retry-after-ms': String(frame.retry_after_ms) }, body: frame }
          : { status: 200, headers: {}, body: frame };
      });
    } catch (err) {
      // The stream could not be opened (a proxy, an older server): this round goes over POST.
      if (err instanceof StreamUnavailableError) return undefined;
      throw err;
    }
  }

  /**
   * Deletes the server-side session. Best effort: it runs in generation's cleanup, where a failure
   * must not mask the real outcome, and the server's idle TTL frees the session anyway.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.http.json('DELETE', `/v1/sessions/${encodeURIComponent(this.id)}`);
    } catch {
      // expired already, or the verifier went away: either way nothing is left to free
    }
  }
}
