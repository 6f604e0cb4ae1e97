/**
 * The site runtime's HTTP server (DESIGN: Runtime and verifier; issue #5 items 2, 3, 6): the
 * OpenAI-compatible `POST /v1/chat/completions` and `POST /v1/completions` (JSON or SSE streaming),
 * `GET /v1/models`, `/healthz`, `/readyz`, `/metrics` and `/v1/status`, on fastify with edgectl's
 * OpenAI-style error bodies (src/server/http.ts).
 *
 * One generation request goes: lease a generation (hot swap never touches a running request) →
 * validate (400 naming the field; 404 for an unknown model or adapter) → a cheap context bound
 * (text that cannot fit is refused without tokenizing) → admission (429 with Retry-After past the
 * queue) → block rules on the original text (a refusal with finish_reason content_filter), PII
 * redaction (the draft and the verifier only ever see placeholders) and tokenization, off the event
 * loop for long prompts (prompt-pool.ts) → context-length checks → route (policy rules, prompt length, draft entropy on the prompt, running acceptance,
 * per-request override) → generation on that route with the verifier fallback (execute.ts) → the
 * text pipeline (detokenize, stop strings, restore placeholders: output.ts) → response, outcome for
 * feedback, metrics; the lease is released exactly once whatever happens.
 *
 * Streaming answers start lazily, at the first text, so a verifier failure before any token can
 * still be an ordinary 503 JSON error (or a clean edge fallback); after that, failures end the
 * stream with an error event. `x-edgectl-route` carries the route; every body, and the final stream
 * chunk, carries the `edgectl` field (route, reason, unverified, speculative statistics,
 * redactions). Without a loopback `host` a bearer token is required; it is compared in constant time.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { OperationalError } from '../../cli/errors.js';
import { analyzePrompt } from '../../inference/prompt-signals.js';
import type { KvCache } from '../../inference/kv-cache.js';
import type { SamplingParams } from '../../inference/sampling.js';
import { decideRoute, policyNeedsEntropy, type RouteDecision } from '../../policy/router.js';
import { ROUTES, type Route } from '../../policy/schema.js';
import type { RequestOutcome } from '../../site/feedback/accumulator.js';
import { checkBearer, isLoopbackHost, requireTokenForHost } from '../../server/auth.js';
import { badRequest, createHttpApp, HttpError, listen, parseBody, toHttpError } from '../../server/http.js';
import type {
  GenerationLease,
  RuntimeRequestStatus,
  RuntimeServer,
  RuntimeServerOptions,
} from '../contract.js';
import { GenerationAdmission } from './admission.js';
import type { RoundCosts } from '../../inference/adaptive-k.js';
import { newRunState, runGeneration, VerifierUnavailableError, type RunState } from './execute.js';
import type { LoadedGeneration } from './generation.js';
import { MIN_ACCEPTANCE_SAMPLES, RuntimeMetrics } from './metrics.js';
import { encodeChatPrompt, renderChatPrompt } from './chat-prompt.js';
import {
  chatRequestSchema,
  chatResponse,
  chunk,
  completionRequestSchema,
  completionResponse,
  deltaWriter,
  parseModelName,
  stopList,
  usage,
  usageChunk,
  type ChatMessage,
  type ChatRequest,
  type EdgectlInfo,
  type OpenAiFinishReason,
  type ResponseBase,
} from './openai.js';
import { OutputText } from './output.js';
import { installJsonBodyParser } from './json-body.js';
import { PromptPool } from './prompt-pool.js';
import { cannotFit, tooLongError } from './prompt-prep.js';
import { VerifierPool } from './verifier-pool.js';
import { DEFAULT_SHADOW_SAMPLE, ShadowRunner, type ShadowJob } from './shadow.js';

/** Default `max_tokens` when a request gives none (capped by the context left). */
export const DEFAULT_MAX_TOKENS = 128;
/**
 * Longest a streamed event waits to share a socket write with the events after it (the first event
 * of a stream never waits). 20 ms is below what a reader of streamed text notices, and at a fixture
 * draft's ~0.4 ms per token it turns ~50 writes into one.
 */
const SSE_COALESCE_MS = 20;
/** Paths answered without a bearer token (liveness and readiness probes). */
const OPEN_PATHS = new Set(['/healthz', '/readyz']);

export { isLoopbackHost };

type Kind = 'chat' | 'completion';

interface Prepared {
  kind: Kind;
  stream: boolean;
  includeUsage: boolean;
  base: ResponseBase;
  adapter: string | undefined;
  text: string;
  /** Chat requests: the messages, encoded through the model's template (chat-prompt.ts). */
  messages: ChatMessage[] | undefined;
  stops: string[];
  maxTokens: number | undefined;
  sampling: SamplingParams;
  seed: number | undefined;
  ignoreEos: boolean;
  override: Route | undefined;
}

/** The served request's measured round costs, for its shadow run; none without speculative rounds. */
function servedCosts(state: RunState): RoundCosts | undefined {
  if (state.route !== 'speculative' || state.verifyRounds === 0 || state.draftTokens === 0) return undefined;
  return {
    draftMsPerToken: state.draftMs / state.draftTokens,
    roundMs: Math.max(state.verifyMs / state.verifyRounds, 1e-3),
  };
}

function finishReason(f: string): OpenAiFinishReason {
  return f === 'length' ? 'length' : 'stop';
}

export async function startRuntimeServer(
  opts: RuntimeServerOptions<LoadedGeneration>,
): Promise<RuntimeServer> {
  requireTokenForHost(
    opts.host,
    opts.bearerToken,
    "site's API",
    'E_RUNTIME_TOKEN',
    'Pass --token <secret> (or set EDGECTL_SITE_TOKEN)',
  );
  const admission = new GenerationAdmission(opts.maxConcurrent, opts.maxQueue);
  const prompts = new PromptPool();
  const metrics = new RuntimeMetrics(opts.metrics, {
    inFlight: () => admission.active,
    queued: () => admission.queued,
  });
  const pool = new VerifierPool(
    Date.now,
    (from, to) =>
      opts.log(to === 'open' ? 'warn' : 'info', `verifier circuit breaker ${from} -> ${to}`, {
        verifier: opts.verifierUrl() ?? null,
      }),
    opts.verifierToken,
  );
  const onShadow = opts.onShadow;
  const shadow = onShadow
    ? new ShadowRunner({
        sample: opts.shadowSample ?? DEFAULT_SHADOW_SAMPLE,
        pool,
        verifierUrl: opts.verifierUrl,
        onShadow,
        busy: () => admission.queued > 0,
        log: opts.log,
      })
    : undefined;
  /**
   * Shadow run of a served request (rollout shadow steps, shadow.ts): the generation is leased now
   * and the run starts only once the response has been sent, so it never delays the user.
   */
  const scheduleShadow = (
    reply: FastifyReply,
    g: LoadedGeneration,
    adapter: string | undefined,
    job: Omit<ShadowJob, 'adapter'>,
  ): void => {
    const picked = shadow?.pick(g, adapter);
    if (!shadow || !picked) return;
    const extra = opts.generations.acquire();
    if (!extra) return;
    if (extra.generation !== g) return extra.release();
    const raw = reply.raw;
    let started = false;
    const go = (sent: boolean) => {
      if (started) return;
      started = true;
      if (sent) setImmediate(() => shadow.start({ ...job, adapter: picked }, extra));
      else extra.release();
    };
    if (raw.writableFinished) go(true);
    else {
      raw.once('finish', () => go(true));
      raw.once('close', () => go(raw.writableFinished));
    }
  };
  let draining = false;
  let active = 0;
  let idle: (() => void) | undefined;

  const app = createHttpApp({
    ...(opts.requestTimeoutMs === undefined ? {} : { requestTimeoutMs: opts.requestTimeoutMs }),
    ...(opts.headersTimeoutMs === undefined ? {} : { headersTimeoutMs: opts.headersTimeoutMs }),
    onError: (httpErr, cause, req) => {
      if (httpErr.status >= 500 && httpErr.status !== 503) {
        opts.log(
          'error',
          `${req.method} ${req.url}: ${cause instanceof Error ? (cause.stack ?? cause.message) : String(cause)}`,
        );
      }
    },
  });
  app.addHook('onRequest', async (req, reply) => {
    const path = req.url.split('?')[0] ?? req.url;
    const refused =
      opts.bearerToken && !OPEN_PATHS.has(path) ? checkBearer(req.headers, opts.bearerToken) : undefined;
    if (refused) return reply.status(401).headers(refused.headers).send(refused.body());
    if (draining && !OPEN_PATHS.has(path)) {
      return reply
        .status(503)
        .header('retry-after', '1')
        .header('connection', 'close')
        .send(new HttpError(503, 'the site runtime is shutting down', 'shutting_down').body());
    }
  });
  installJsonBodyParser(app, (body) => prompts.parseJson(body));
  app.addHook('onResponse', async (req, reply) => {
    metrics.http(req.routeOptions.url ?? 'unmatched', reply.statusCode);
  });

  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => {
    const lease = opts.generations.acquire();
    lease?.release();
    const ready = !draining && lease !== undefined && opts.ready();
    return reply.status(ready ? 200 : 503).send({
      status: ready ? 'ready' : 'not ready',
      generation: lease?.generation.id ?? null,
      draining,
    });
  });
  app.get('/metrics', async (_req, reply) => {
    const text = await opts.metrics.metrics();
    return reply.header('content-type', opts.metrics.contentType).send(text);
  });
  app.get('/v1/status', async () => ({ ...opts.daemonStatus(), url: address.url, runtime: status() }));
  app.get('/v1/models', async () => {
    const lease = opts.generations.acquire();
    if (!lease) return { object: 'list', data: [] };
    try {
      const g = lease.generation;
      const created = Math.floor(Date.now() / 1000);
      const ids = [g.modelName, ...g.adapterNames.map((a) => `${g.modelName}:${a}`)];
      return {
        object: 'list',
        data: ids.map((id) => ({ id, object: 'model', created, owned_by: 'edgectl-site' })),
      };
    } finally {
      lease.release();
    }
  });
  app.post('/v1/chat/completions', (req, reply) => handle('chat', req, reply));
  app.post('/v1/completions', (req, reply) => handle('completion', req, reply));

  function status(): RuntimeRequestStatus {
    return {
      inFlight: admission.active,
      queued: admission.queued,
      requests: { ...metrics.requests },
      acceptance: metrics.acceptance(),
      ...metrics.latency(),
      verifier: {
        url: opts.verifierUrl() ?? null,
        breaker: pool.breakerState,
        lastError: pool.lastError,
      },
    };
  }

  function prepare(kind: Kind, req: FastifyRequest, g: LoadedGeneration): Prepared {
    const body =
      kind === 'chat' ? parseBody(chatRequestSchema, req.body) : parseBody(completionRequestSchema, req.body);
    const { model, adapter } = parseModelName(body.model);
    if (model !== g.modelName || (adapter !== undefined && !g.adapterNames.includes(adapter))) {
      const known = [g.modelName, ...g.adapterNames.map((a) => `${g.modelName}:${a}`)].join(', ');
      const what = model !== g.modelName ? `model "${model}"` : `adapter "${adapter}" of model "${model}"`;
      const err = new HttpError(
        404,
        `The ${what} does not exist at this site; available: ${known} (GET /v1/models)`,
        'model_not_found',
        'not_found_error',
        {},
        'model',
      );
      throw err;
    }
    let override: Route | undefined = body.edgectl?.route;
    const header = req.headers['x-edgectl-route'];
    if (override === undefined && header !== undefined) {
      const value = Array.isArray(header) ? header[0] : header;
      if (!(ROUTES as readonly string[]).includes(value ?? '')) {
        throw badRequest(
          `x-edgectl-route: must be one of ${ROUTES.join(', ')}, got "${value}"`,
          'invalid_route',
          'x-edgectl-route',
        );
      }
      override = value as Route;
    }
    const defaults = g.requestDefaults;
    const sampling: SamplingParams = { temperature: body.temperature ?? defaults.temperature };
    const topP = body.top_p ?? (body.temperature == null ? defaults.topP : undefined);
    if (topP !== undefined) sampling.topP = topP;
    const penalty = body.repetition_penalty ?? defaults.repetitionPenalty;
    if (penalty !== undefined && penalty !== 1) sampling.repetitionPenalty = penalty;
    const stops = stopList(body.stop);
    let text: string;
    let maxTokens = body.max_tokens ?? undefined;
    if (kind === 'chat') {
      const chat = body as ReturnType<typeof chatRequestSchema.parse>;
      text = renderChatPrompt(g.chat, chat.messages);
      stops.push(...g.chat.stops);
      maxTokens = chat.max_completion_tokens ?? maxTokens;
    } else {
      const p = (body as ReturnType<typeof completionRequestSchema.parse>).prompt;
      text = typeof p === 'string' ? p : (p[0] as string);
    }
    return {
      kind,
      stream: body.stream === true,
      includeUsage: body.stream_options?.include_usage === true,
      base: {
        id: `${kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${randomUUID().replaceAll('-', '')}`,
        created: Math.floor(Date.now() / 1000),
        model: body.model,
      },
      adapter,
      text,
      messages: kind === 'chat' ? (body as ChatRequest).messages : undefined,
      stops,
      maxTokens,
      sampling,
      seed: body.seed ?? undefined,
      ignoreEos: body.ignore_eos === true,
      override,
    };
  }

  /**
   * The SSE side of a streamed answer, opened at the first write. The first event goes out at once
   * (time to first token); later events are coalesced for up to SSE_COALESCE_MS into one socket
   * write, because a write per token costs more than a fixture draft's token (a writev syscall,
   * a chunked-encoding frame and a wake-up of the client per event). Every token is still its own
   * event; only their delivery is batched, and end() writes whatever is pending first.
   */
  class SseStream {
    started = false;
    private pending = '';
    private timer: NodeJS.Timeout | undefined;
    constructor(
      private readonly reply: FastifyReply,
      private readonly headers: () => Record<string, string>,
      private readonly path: string,
    ) {}
    send(data: unknown): void {
      this.write(JSON.stringify(data));
    }
    /** Writes an already serialized event (the per-token hot path). */
    write(json: string): void {
      const raw = this.reply.raw;
      if (!this.started) {
        this.started = true;
        this.reply.hijack();
        raw.once('close', () => {
          this.cancel();
          metrics.http(this.path, raw.statusCode);
        });
        raw.writeHead(200, {
          'content-type': 'text/event-stream; charset=utf-8',
          'cache-control': 'no-cache',
          connection: 'keep-alive',
          ...this.headers(),
        });
        if (!raw.destroyed) raw.write(`data: ${json}\n\n`);
        return;
      }
      if (raw.destroyed) return;
      this.pending += `data: ${json}\n\n`;
      this.timer ??= setTimeout(this.flush, SSE_COALESCE_MS);
    }
    private readonly flush = (): void => {
      this.cancel();
      const raw = this.reply.raw;
      if (this.pending !== '' && !raw.destroyed) raw.write(this.pending);
      this.pending = '';
    };
    private cancel(): void {
      if (this.timer !== undefined) clearTimeout(this.timer);
      this.timer = undefined;
    }
    end(): void {
      const raw = this.reply.raw;
      this.cancel();
      if (!raw.destroyed) raw.end(`${this.pending}data: [DONE]\n\n`);
      this.pending = '';
    }
  }

  async function handle(kind: Kind, req: FastifyRequest, reply: FastifyReply): Promise<unknown> {
    const t0 = performance.now();
    const path = kind === 'chat' ? '/v1/chat/completions' : '/v1/completions';
    const lease: GenerationLease<LoadedGeneration> | undefined = opts.generations.acquire();
    if (!lease) {
      throw new HttpError(
        503,
        'no generation is installed yet (the site is still syncing)',
        'not_ready',
        'server_error',
        {
          'retry-after': '1',
        },
      );
    }
    active++;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      lease.release();
      if (--active === 0) idle?.();
    };
    const g = lease.generation;
    const ac = new AbortController();
    reply.raw.once('close', () => {
      if (!reply.raw.writableFinished) ac.abort();
    });
    let leaveAdmission: (() => void) | undefined;
    let decision: RouteDecision | undefined;
    let redactions = 0;
    let state: RunState | undefined;
    let ttftMs: number | undefined;
    let sse: SseStream | undefined;
    const outcomeBase = (): RequestOutcome => ({
      route: state?.route ?? decision?.route ?? g.policy.routing.default,
      ...(decision?.escalated ? { escalated: true } : {}),
      ...(state?.fallback ? { fallback: true } : {}),
      draftTokens: state?.draftTokens ?? 0,
      acceptedTokens: state?.acceptedTokens ?? 0,
      verifyRounds: state?.verifyRounds ?? 0,
      outputTokens: state?.emitted.length ?? 0,
      redactions,
      ...(ttftMs === undefined ? {} : { ttftMs }),
      e2eMs: performance.now() - t0,
    });
    const report = (o: RequestOutcome) => {
      metrics.outcome(o);
      opts.log('debug', `${path} ${o.route}${o.error ? ' failed' : ''}`, {
        generation: g.id,
        outputTokens: o.outputTokens ?? 0,
        e2eMs: Math.round(o.e2eMs ?? 0),
        ...(o.fallback ? { fallback: true } : {}),
      });
      try {
        opts.onOutcome(o, g.context);
      } catch (err) {
        opts.log('error', `onOutcome failed: ${(err as Error).message}`);
      }
    };
    try {
      const prep = prepare(kind, req, g);
      const info = (finalState: RunState | undefined): EdgectlInfo => ({
        route: finalState?.route ?? decision?.route ?? 'blocked',
        reason: decision?.reason ?? '',
        unverified: finalState?.unverified ?? false,
        stats: {
          draftTokens: finalState?.draftTokens ?? 0,
          acceptedTokens: finalState?.acceptedTokens ?? 0,
          verifyRounds: finalState?.verifyRounds ?? 0,
          acceptance:
            finalState && finalState.draftTokens > 0
              ? finalState.acceptedTokens / finalState.draftTokens
              : null,
          k:
            finalState && finalState.route === 'speculative' && finalState.verifyRounds > 0
              ? Math.round((finalState.draftTokens / finalState.verifyRounds) * 100) / 100
              : null,
        },
        redactions,
      });

      // Oversize text is refused before admission, without tokenizing (prompt-prep.ts); with
      // redaction the text may still shrink, so the worker applies the bound after redacting.
      const param = kind === 'chat' ? 'messages' : 'prompt';
      const hopeless = g.redactor.enabled ? undefined : cannotFit(prep.text, g.tokenizer, g.maxPositions);
      if (hopeless) throw tooLongError(hopeless, g.maxPositions, param);
      try {
        leaveAdmission = await admission.enter(ac.signal);
      } catch (err) {
        if (err instanceof HttpError && err.status === 429) metrics.rejected();
        throw err;
      }
      // Block rules, redaction and tokenization: long prompts off the event loop (prompt-pool.ts).
      // A chat is tokenized once, by its template below; the preparation only screens and bounds it.
      const prepared = await prompts.prepare(g, prep.text, prep.messages === undefined);
      if (prepared.kind === 'blocked') {
        const edgectl: EdgectlInfo = {
          ...info(undefined),
          route: 'blocked',
          reason: `block rule "${prepared.rule}": ${prepared.matched}`,
        };
        const u = usage(0, 0);
        report({ route: 'blocked', e2eMs: performance.now() - t0 });
        void reply.header('x-edgectl-route', 'blocked');
        if (prep.stream) {
          sse = new SseStream(reply, () => ({ 'x-edgectl-route': 'blocked' }), path);
          sse.send(chunk(kind, prep.base, { text: prepared.message, first: true }));
          sse.send(chunk(kind, prep.base, { text: '', finish: 'content_filter', edgectl }));
          if (prep.includeUsage) sse.send(usageChunk(kind, prep.base, u));
          sse.end();
          return reply;
        }
        return kind === 'chat'
          ? chatResponse(prep.base, prepared.message, 'content_filter', u, edgectl)
          : completionResponse(prep.base, prepared.message, 'content_filter', u, edgectl);
      }
      if (prepared.kind === 'too_long') throw tooLongError(prepared, g.maxPositions, param);
      // A chat is encoded through the model's own template (control tokens only where the template
      // puts them, PII redacted per message); the preparation above already applied the block rules
      // and bounded the text to about a context's worth, so this runs on small text.
      const encoded = prep.messages
        ? encodeChatPrompt(g.chat, prep.messages, g.redactor)
        : {
            modelText: prepared.modelText,
            promptIds: prepared.ids,
            map: prepared.map,
            redactions: prepared.redactions,
          };
      const { modelText, promptIds } = encoded;
      redactions = encoded.redactions;
      if (promptIds.length === 0) throw badRequest(`${param}: encodes to no tokens`, 'empty_prompt', param);
      const room = g.maxPositions - promptIds.length;
      if (room < 1) {
        throw badRequest(
          `${param}: ${promptIds.length} tokens leave no room in the model's context of ${g.maxPositions} tokens; shorten it`,
          'context_length_exceeded',
          param,
        );
      }
      if (prep.maxTokens !== undefined && prep.maxTokens > room) {
        throw badRequest(
          `max_tokens: ${prep.maxTokens} exceeds the ${room} tokens left in the model's context of ${g.maxPositions} after the ${promptIds.length}-token prompt`,
          'context_length_exceeded',
          'max_tokens',
        );
      }
      const maxTokens = prep.maxTokens ?? Math.min(g.requestDefaults.maxTokens ?? DEFAULT_MAX_TOKENS, room);
      const lora = prep.adapter === undefined ? undefined : g.adapters.get(prep.adapter)?.feeds;
      metrics.promptTokens(promptIds.length);

      // Route: the draft's entropy on the prompt costs one prefill whose cache the generation reuses.
      const policy = g.policy;
      const overrideAllowed =
        prep.override !== undefined && (policy.routing.overrides ?? ROUTES).includes(prep.override);
      let cache: KvCache | undefined;
      let entropy: number | undefined;
      if (!overrideAllowed && policyNeedsEntropy(policy)) {
        const analysis = await analyzePrompt(g.model, promptIds, lora);
        cache = analysis.cache;
        entropy = analysis.signals.meanEntropy;
      }
      const running = metrics.acceptance(MIN_ACCEPTANCE_SAMPLES);
      decision = decideRoute({
        policy,
        promptTokens: promptIds.length,
        promptText: modelText,
        ...(entropy === undefined ? {} : { entropy }),
        ...(running === null ? {} : { runningAcceptance: running }),
        ...(prep.override === undefined ? {} : { override: prep.override }),
      });

      const out = new OutputText(g.tokenizer, promptIds, prep.stops, encoded.map);
      let text = '';
      const decided = decision;
      const live = newRunState(decided.route);
      state = live;
      const headers = (): Record<string, string> => ({
        'x-edgectl-route': live.route,
        ...(live.unverified ? { 'x-edgectl-unverified': 'true' } : {}),
      });
      if (prep.stream) sse = new SseStream(reply, headers, path);
      const delta = deltaWriter(kind, prep.base);
      const emit = (piece: string) => {
        if (piece === '') return;
        if (!sse) text += piece;
        else if (!sse.started) sse.send(chunk(kind, prep.base, { text: piece, first: true }));
        else sse.write(delta(piece));
      };
      let firstToken = true;
      const run = runGeneration(
        {
          gen: g,
          route: decided.route,
          promptIds,
          maxTokens,
          sampling: prep.sampling,
          seed: prep.seed,
          ignoreEos: prep.ignoreEos,
          lora,
          cache: decided.route === 'cloud' ? undefined : cache,
          signal: ac.signal,
          verifierUrl: opts.verifierUrl(),
          pool,
          metrics,
          onToken: (token) => {
            if (firstToken) {
              firstToken = false;
              ttftMs = performance.now() - t0;
            }
            const r = out.push(token);
            emit(r.text);
            return r.stopped;
          },
        },
        live,
      );
      let result: Awaited<typeof run>;
      try {
        result = await run;
      } catch (err) {
        if (err instanceof VerifierUnavailableError) {
          if (sse?.started) {
            sse.send(new HttpError(503, err.message, 'verifier_unavailable', 'server_error').body());
            sse.end();
            report({ ...outcomeBase(), error: true });
            return reply;
          }
          throw new HttpError(503, err.message, 'verifier_unavailable', 'server_error', {
            'retry-after': String(err.retryAfterSeconds),
          });
        }
        throw err;
      }
      emit(out.end());
      if (result.finish === 'aborted') {
        report(outcomeBase());
        if (sse?.started) sse.end();
        return reply;
      }
      const finish = finishReason(out.stopped ? 'stop' : result.finish);
      const u = usage(promptIds.length, live.emitted.length);
      const edgectl = info(live);
      report(outcomeBase());
      scheduleShadow(reply, g, prep.adapter, {
        promptIds,
        maxTokens: live.emitted.length,
        sampling: prep.sampling,
        seed: prep.seed,
        costs: servedCosts(live),
      });
      if (sse) {
        if (!sse.started) sse.send(chunk(kind, prep.base, { text: '', first: true }));
        sse.send(chunk(kind, prep.base, { text: '', finish, edgectl }));
        if (prep.includeUsage) sse.send(usageChunk(kind, prep.base, u));
        sse.end();
        return reply;
      }
      void reply.header('x-edgectl-route', live.route);
      if (live.unverified) void reply.header('x-edgectl-unverified', 'true');
      return kind === 'chat'
        ? chatResponse(prep.base, text, finish, u, edgectl)
        : completionResponse(prep.base, text, finish, u, edgectl);
    } catch (err) {
      const httpErr = toHttpError(err);
      // Requests that got past validation count as failed for feedback; client mistakes (4xx) do not.
      if (decision !== undefined || httpErr.status >= 500) report({ ...outcomeBase(), error: true });
      if (sse?.started) {
        sse.send(httpErr.body());
        sse.end();
        return reply;
      }
      throw httpErr;
    } finally {
      leaveAdmission?.();
      release();
    }
  }

  let address: { host: string; port: number; url: string };
  try {
    address = await listen(app, opts.host, opts.port);
  } catch (err) {
    pool.close();
    prompts.close();
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL') {
      throw new OperationalError(`cannot listen on ${opts.host}:${opts.port} (${code})`, {
        code: 'E_LISTEN',
        suggestion: 'Pick another --listen port (0 = any free port) or stop what holds this one.',
      });
    }
    throw err;
  }
  opts.log('info', `site runtime listening on ${address.url}`);

  return {
    get url() {
      return address.url;
    },
    get host() {
      return address.host;
    },
    get port() {
      return address.port;
    },
    status,
    async close(drainMs = 10_000) {
      draining = true;
      if (active > 0) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, drainMs);
          idle = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
      await app.close();
      await shadow?.close();
      pool.close();
      prompts.close();
    },
  };
}
