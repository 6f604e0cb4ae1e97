/**
 * The engine's `Verifier` interface over HTTP: a client of the verifier service (src/verifier/server),
 * so `generateSpeculative` runs identically against a remote verifier and an in-process one. It owns
 * the client side of the protocol: identity and tokenizer checks, sessions, verify rounds over
 * kept-alive verify streams (falling back to POST), and streamed OpenAI completions (`--route
 * cloud`). The transport (keep-alive agent, timeouts, retries on 429/503, typed errors) is in
 * verifier-transport.ts; it uses node:http rather than fetch because fetch's pool cannot be sized
 * or closed per verifier.
 */
import { OperationalError, UserError, VerificationError } from '../../foundation/errors.js';
import {
  type CompletionRequest,
  type CompletionResponse,
  type CreateSessionResponse,
  type IdentityResponse,
  type VerifierFeature,
  type VerifyResponse,
} from '../protocol.js';
import { hasRepetitionPenalty, type SamplingParams } from '../../inference/sampling.js';
import { encodeMask } from '../../inference/grammar/mask.js';
import { sseJson } from './sse.js';
import { VerifierHttp } from './verifier-transport.js';
import { StreamUnavailableError, VerifyStreamPool } from './verify-stream-client.js';
import {
  toSparse,
  type DraftDistribution,
  type Verifier,
  type VerifierSession,
  type VerifierStartOptions,
  type VerifyRequest,
  type VerifyResult,
} from '../../inference/verifier.js';

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

  /**
   * Refuses grammar-constrained decoding (issue #18) against a server that would ignore the masks
   * or `response_format`: its output would not follow the grammar.
   */
  requireMaskSupport(): void {
    if (this.supports('token_masks')) return;
    throw new UserError(
      `response_format: the verifier at ${this.url} does not support grammar-constrained decoding (its /v1/identity features lack "token_masks")`,
      {
        code: 'E_VERIFIER_FEATURE',
        suggestion: 'Upgrade the verifier to this edgectl version, or send the request on the edge route.',
      },
    );
  }

  async start(promptIds: readonly number[], opts: VerifierStartOptions = {}): Promise<HttpVerifierSession> {
    this.requirePenaltySupport(opts.sampling);
    if (opts.logprobs !== undefined && !this.supports('logprobs')) {
      throw new UserError(
        `logprobs: the verifier does not return them (its /v1/identity features lack "logprobs")`,
        {
          code: 'E_LOGPROBS_UNSUPPORTED',
          suggestion: 'Upgrade the verifier to this edgectl version, or ask without logprobs.',
        },
      );
    }
    // Older servers refuse unknown fields, so the first token is asked for only where announced.
    const first = opts.onFirstToken !== undefined && this.supports('first_token');
    const res = await this.http.json<CreateSessionResponse>('POST', '/v1/sessions', {
      prompt_ids: promptIds,
      sampling: samplingWire(opts.sampling, opts.seed),
      ...(first ? { first_token: true } : {}),
      ...(opts.logprobs === undefined ? {} : { logprobs: opts.logprobs }),
    });
    const session = new HttpVerifierSession(this.http, res.session_id, res.prompt_tokens, this.streams());
    if (first && typeof res.first_token === 'number') {
      session.firstToken = res.first_token;
      opts.onFirstToken?.(res.first_token, res.first_token_logprob);
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
    // eventsource-parser and a streaming decoder (sse.ts): CRLF framing and split UTF-8 are legal.
    const source = { name: 'verifier', protocolCode: 'E_VERIFIER_PROTOCOL' };
    for await (const event of sseJson(res, source)) yield event as unknown as CompletionResponse;
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
    if (request.masks !== undefined) body.token_masks = request.masks.map((m) => encodeMask(m));
    const res = (await this.verifyOverStream(body)) ?? (await this.verifyOverPost(body));
    return {
      accepted: res.accepted,
      nextToken: res.next_token,
      length: res.context_tokens,
      verifierMs: res.verifier_ms,
      ...(res.logprobs === undefined ? {} : { logprobs: res.logprobs }),
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
