/**
 * The steps of one site request, in order (issue #16 item 1; docs/architecture.md, runtime):
 * validate (404 for an unknown model or adapter; a cheap context bound) → compile the output grammar
 * (structured.ts, 400 before taking a slot) → admission (429 past the queue) → retrieval of index
 * passages into the chat (retrieval.ts) → block rules, PII redaction and tokenization (prompt-pool.ts, off the event loop for
 * long prompts) → context-length checks → route (policy rules, prompt length, draft entropy on the
 * prompt, running acceptance, the client's override) → the route executor (edge / speculative /
 * cloud with fallback and breaker) → the text pipeline (detokenize, stop strings, restore
 * placeholders: output.ts) → outcome report and shadow sampling. Each step yields what the client
 * should learn as engine events; a refusal is thrown as an HttpError after the outcome is reported.
 * The lease of the generation is the caller's (site-engine.ts): this runs inside it.
 */
import { analyzePrompt } from '../../inference/prompt-signals.js';
import type { KvCache } from '../../inference/kv-cache.js';
import type { LoraFeeds } from '../../inference/lora-slots.js';
import type { SamplingParams } from '../../inference/sampling.js';
import { decideRoute, policyNeedsEntropy, type RouteDecision } from '../../policy/router.js';
import { ROUTES } from '../../policy/schema.js';
import type { RedactionMap } from '../../policy/redact.js';
import type { RequestOutcome } from '../../feedback/accumulator.js';
import { badRequest, contextLengthExceeded, HttpError, toHttpError } from '../../http/http.js';
import type { LoadedGeneration } from './generation.js';
import { MIN_ACCEPTANCE_SAMPLES } from './metrics.js';
import { encodeChatPrompt, renderChatPrompt } from './chat-prompt.js';
import { parseModelName, type ChatMessage } from '../serve/openai.js';
import { OutputText } from './output.js';
import { logprobToken } from './logprob-tokens.js';
import type { PreparedPrompt } from './prompt-pool.js';
import { cannotFit, tooLongError } from './prompt-prep.js';
import { edgectlInfo, outcomeOf, servedCosts } from './outcome.js';
import {
  executeRoute,
  newRunState,
  VerifierUnavailableError,
  type ExecFinish,
  type RunState,
} from './route-executor.js';
import type { EngineParts } from './site-engine.js';
import type { EngineEvent, EngineRequest } from './types.js';
import { poolAccess } from './verifier-access.js';
import { checkStructured, compileConstraint, type StructuredInfo } from './structured.js';
import type { CompiledConstraint } from '../../inference/grammar/index.js';
import { cloudDeps, cloudMessages } from './cloud-route.js';
import type { CloudMessage } from '../../verifier/client/cloud-client.js';
import { retrieve, StaleIndexError, type Retrieved } from './retrieval.js';

/** Default `max_tokens` when a request gives none (capped by the context left). */
export const DEFAULT_MAX_TOKENS = 128;

interface Validated {
  adapter: string | undefined;
  text: string;
  messages: ChatMessage[] | undefined;
  stops: string[];
  sampling: SamplingParams;
  /** The request field a prompt error names. */
  param: 'messages' | 'prompt';
}

interface Encoded {
  modelText: string;
  /** A chat's messages as the model saw them (redacted), for a cloud chat model. */
  messages: CloudMessage[] | undefined;
  promptIds: number[];
  map: RedactionMap | undefined;
  maxTokens: number;
  lora: LoraFeeds | undefined;
}

export class RequestRun {
  private decision: RouteDecision | undefined;
  private redactions = 0;
  private state: RunState | undefined;
  private ttftMs: number | undefined;
  private leaveAdmission: (() => void) | undefined;
  /** The request's grammar constraint, compiled for the draft's tokenizer. */
  private constraint: CompiledConstraint | undefined;
  /** The retrieval step's result (retrieval.ts), when the request retrieved. */
  private rag: Retrieved | undefined;
  private ragRefused: RequestOutcome['retrieval'];
  private readonly t0 = performance.now();

  constructor(
    private readonly parts: EngineParts,
    private readonly g: LoadedGeneration,
    private readonly req: EngineRequest,
    private readonly signal: AbortSignal,
  ) {}

  async *steps(): AsyncGenerator<EngineEvent, RequestOutcome, undefined> {
    try {
      const validated = this.validate();
      // A schema the grammar engine refuses is a 400 before the request takes an admission slot.
      this.constraint = await compileConstraint(this.g, this.req.constraint);
      const v = await this.retrieval(validated);
      // A chat is tokenized once, by its template (encode); the preparation only screens and bounds it.
      const prepared = await this.parts.prompts.prepare(this.g, v.text, v.messages === undefined);
      if (prepared.kind === 'blocked') return yield* this.blocked(prepared);
      if (prepared.kind === 'too_long') throw tooLongError(prepared, this.g.maxPositions, v.param);
      const enc = this.encode(v, prepared);
      if (this.redactions > 0) yield { type: 'redactions', count: this.redactions };
      const cache = await this.route(v, enc);
      const d = this.decision as RouteDecision;
      yield { type: 'route', route: d.route, reason: d.reason, escalated: d.escalated };
      return yield* this.generate(v, enc, cache);
    } catch (err) {
      throw this.fail(err);
    } finally {
      this.leaveAdmission?.();
    }
  }

  private outcome(): RequestOutcome {
    const o = outcomeOf(this.g, this.decision, this.state, this.redactions, this.ttftMs, this.t0);
    const retrieval = this.rag?.outcome ?? this.ragRefused;
    return retrieval ? { ...o, retrieval } : o;
  }

  /**
   * Admission, then the retrieval step (retrieval.ts): a chat that retrieves gets its context
   * message (passages matching a block rule already withheld there); block rules and the length
   * bound still screen the user's own text (`v.text`).
   */
  private async retrieval(v: Validated): Promise<Validated> {
    await this.admit(v);
    try {
      this.rag = await retrieve(this.g, this.req);
    } catch (err) {
      if (err instanceof StaleIndexError) this.ragRefused = err.outcome;
      throw err;
    }
    return this.rag ? { ...v, messages: this.rag.messages } : v;
  }

  private fail(err: unknown): HttpError {
    const httpErr =
      err instanceof VerifierUnavailableError
        ? new HttpError(503, err.message, 'verifier_unavailable', 'server_error', {
            'retry-after': String(err.retryAfterSeconds),
          })
        : toHttpError(err);
    // Requests that got past validation count as failed for feedback; client mistakes (4xx) do not.
    if (this.decision !== undefined || httpErr.status >= 500) {
      this.parts.report({ ...this.outcome(), error: true }, this.g, this.req.label);
    }
    return httpErr;
  }

  /** The model name, sampling defaults, the prompt text (a chat rendered by its template), stops. */
  private validate(): Validated {
    const { g, req } = this;
    const { model, adapter } = parseModelName(req.model);
    if (model !== g.modelName || (adapter !== undefined && !g.adapterNames.includes(adapter))) {
      const known = [g.modelName, ...g.adapterNames.map((a) => `${g.modelName}:${a}`)].join(', ');
      const what = model !== g.modelName ? `model "${model}"` : `adapter "${adapter}" of model "${model}"`;
      throw new HttpError(
        404,
        `The ${what} does not exist at this site; available: ${known} (GET /v1/models)`,
        'model_not_found',
        'not_found_error',
        {},
        'model',
      );
    }
    const defaults = g.requestDefaults;
    const sampling: SamplingParams = { temperature: req.temperature ?? defaults.temperature };
    const topP = req.topP ?? (req.temperature === undefined ? defaults.topP : undefined);
    if (topP !== undefined) sampling.topP = topP;
    const penalty = req.repetitionPenalty ?? defaults.repetitionPenalty;
    if (penalty !== undefined && penalty !== 1) sampling.repetitionPenalty = penalty;
    const stops = [...req.stops];
    if ('messages' in req.prompt) {
      // Forced tool calls end where their grammar ends (tool-calls.ts `ownsEnd`).
      if (!req.tools?.ownsEnd) stops.push(...g.chat.stops);
      const text = renderChatPrompt(g.chat, req.prompt.messages, req.tools?.tools);
      return { adapter, text, messages: req.prompt.messages, stops, sampling, param: 'messages' };
    }
    return { adapter, text: req.prompt.text, messages: undefined, stops, sampling, param: 'prompt' };
  }

  /** Oversize text is refused before admission, without tokenizing (prompt-prep.ts), then a slot. */
  private async admit(v: Validated): Promise<void> {
    const g = this.g;
    // With redaction the text may still shrink, so the worker applies the bound after redacting.
    const hopeless = g.redactor.enabled ? undefined : cannotFit(v.text, g.tokenizer, g.maxPositions);
    if (hopeless) throw tooLongError(hopeless, g.maxPositions, v.param);
    try {
      this.leaveAdmission = await this.parts.admission.enter(this.signal);
    } catch (err) {
      if (err instanceof HttpError && err.status === 429) this.parts.metrics.rejected();
      throw err;
    }
  }

  private async *blocked(
    p: Extract<PreparedPrompt, { kind: 'blocked' }>,
  ): AsyncGenerator<EngineEvent, RequestOutcome, undefined> {
    const reason = `block rule "${p.rule}": ${p.matched}`;
    const outcome: RequestOutcome = { route: 'blocked', e2eMs: performance.now() - this.t0 };
    this.parts.report(outcome, this.g, this.req.label);
    yield { type: 'blocked', rule: p.rule, message: p.message, reason };
    yield { type: 'text', text: p.message };
    const info = { ...edgectlInfo(undefined, undefined, this.redactions), route: 'blocked' as const, reason };
    yield {
      type: 'finish',
      reason: 'content_filter',
      route: 'blocked',
      unverified: false,
      promptTokens: 0,
      completionTokens: 0,
      info,
    };
    return outcome;
  }

  /**
   * The prompt's ids: a chat through the model's own template (control tokens only where the
   * template puts them, PII redacted per message), a completion as prepared; then the context checks.
   */
  private encode(v: Validated, prepared: Extract<PreparedPrompt, { kind: 'ready' }>): Encoded {
    const g = this.g;
    const encoded = v.messages
      ? encodeChatPrompt(g.chat, v.messages, g.redactor, this.req.tools?.tools)
      : {
          modelText: prepared.modelText,
          promptIds: prepared.ids,
          map: prepared.map,
          redactions: prepared.redactions,
        };
    const { promptIds } = encoded;
    this.redactions = encoded.redactions;
    const param = v.param;
    if (promptIds.length === 0) throw badRequest(`${param}: encodes to no tokens`, 'empty_prompt', param);
    const room = g.maxPositions - promptIds.length;
    if (room < 1) {
      throw contextLengthExceeded(
        `${param}: ${promptIds.length} tokens leave no room in the model's context of ${g.maxPositions} tokens; shorten it`,
        param,
      );
    }
    const asked = this.req.maxTokens;
    if (asked !== undefined && asked > room) {
      throw contextLengthExceeded(
        `max_tokens: ${asked} exceeds the ${room} tokens left in the model's context of ${g.maxPositions} after the ${promptIds.length}-token prompt`,
        'max_tokens',
      );
    }
    const maxTokens = asked ?? Math.min(g.requestDefaults.maxTokens ?? DEFAULT_MAX_TOKENS, room);
    const lora = v.adapter === undefined ? undefined : g.adapters.get(v.adapter)?.feeds;
    this.parts.metrics.promptTokens(promptIds.length);
    const messages = 'messages' in encoded ? cloudMessages(encoded.messages) : undefined;
    return { modelText: encoded.modelText, messages, promptIds, map: encoded.map, maxTokens, lora };
  }

  /** The router's decision; the draft's entropy on the prompt costs one prefill the generation reuses. */
  private async route(v: Validated, enc: Encoded): Promise<KvCache | undefined> {
    const policy = this.g.policy;
    const override = this.req.override;
    const overrideAllowed = override !== undefined && (policy.routing.overrides ?? ROUTES).includes(override);
    let cache: KvCache | undefined;
    let entropy: number | undefined;
    if (!overrideAllowed && policyNeedsEntropy(policy)) {
      const analysis = await analyzePrompt(this.g.model, enc.promptIds, enc.lora);
      cache = analysis.cache;
      entropy = analysis.signals.meanEntropy;
    }
    const running = this.parts.metrics.acceptance(MIN_ACCEPTANCE_SAMPLES);
    this.decision = decideRoute({
      policy,
      promptTokens: enc.promptIds.length,
      promptText: enc.modelText,
      ...(entropy === undefined ? {} : { entropy }),
      ...(running === null ? {} : { runningAcceptance: running }),
      ...(override === undefined ? {} : { override }),
    });
    return this.decision.route === 'cloud' ? undefined : cache;
  }

  /** The route executor's tokens through the text pipeline, then the outcome and the finish. */
  private async *generate(
    v: Validated,
    enc: Encoded,
    cache: KvCache | undefined,
  ): AsyncGenerator<EngineEvent, RequestOutcome, undefined> {
    const { g, parts } = this;
    const route = (this.decision as RouteDecision).route;
    const live = newRunState(route);
    this.state = live;
    const spec = g.policy.routing.speculative;
    const max = Math.min(spec.maxDraftTokens, parts.maxDraftTokens);
    const exec = executeRoute(
      {
        route,
        prompt: { ids: enc.promptIds },
        maxTokens: enc.maxTokens,
        sampling: v.sampling,
        seed: this.req.seed,
        ignoreEos: this.req.ignoreEos,
        lora: enc.lora,
        cache,
        drafting: {
          k: 'auto',
          adaptive: { min: Math.min(spec.minDraftTokens, max), max },
          minDraftConfidence: spec.minDraftConfidence,
        },
        cloudPrompt: { text: enc.modelText, ...(enc.messages ? { messages: enc.messages } : {}) },
        signal: this.signal,
        ...(this.constraint ? { constraint: this.constraint } : {}),
        logprobs: this.req.logprobs,
      },
      {
        model: g.model,
        verifier: poolAccess(parts.pool, g.policy, parts.verifierUrl(), g.tokenizerSha256, (_m, kind) =>
          parts.metrics.verifierError(kind),
        ),
        onRound: (drafted, accepted) => parts.metrics.round(drafted, accepted),
        ...cloudDeps(parts.cloudAccess(g), g.tokenizer),
      },
      live,
    );
    const out = new OutputText(g.tokenizer, enc.promptIds, v.stops, enc.map);
    let finish: ExecFinish = 'length';
    let all = '';
    try {
      for (;;) {
        const n = await exec.next();
        if (n.done) {
          finish = n.value;
          break;
        }
        const e = n.value;
        if (e.type === 'fallback' || e.type === 'logprob') {
          yield e;
          continue;
        }
        this.ttftMs ??= performance.now() - this.t0;
        if (e.type === 'token' && e.logprob)
          yield { type: 'logprob', token: logprobToken(g.tokenizer, e.logprob, e.source ?? 'draft') };
        // A cloud model's text (no ids in this tokenizer) is the answer itself: cloud-route.ts.
        const r = e.type === 'token' ? out.push(e.token) : out.pushText(e.text);
        all += r.text;
        if (r.text !== '') yield { type: 'text', text: r.text };
        if (r.stopped) {
          finish = 'stop';
          break;
        }
      }
    } finally {
      // Ends the route run (its generator and verifier session) when a stop or the consumer ended it.
      await exec.return('stop');
    }
    const tail = out.end();
    if (tail !== '') yield { type: 'text', text: tail };
    finish = finish === 'length' && !out.stopped ? 'length' : finish;
    if (this.constraint === undefined) return yield* this.finish(v, enc, finish, live);
    const checked = checkStructured(this.constraint, all + tail, finish);
    return yield* this.finish(v, enc, checked.finish, live, checked.info);
  }

  private async *finish(
    v: Validated,
    enc: Encoded,
    finish: ExecFinish,
    live: RunState,
    structured?: StructuredInfo,
  ): AsyncGenerator<EngineEvent, RequestOutcome, undefined> {
    const outcome = this.outcome();
    this.parts.report(outcome, this.g, this.req.label);
    const aborted = finish === 'aborted';
    if (!aborted) {
      this.parts.scheduleShadow(
        this.g,
        v.adapter,
        {
          promptIds: enc.promptIds,
          maxTokens: live.emitted.length,
          sampling: v.sampling,
          seed: this.req.seed,
          costs: servedCosts(live),
          constraint: this.constraint,
        },
        this.req.delivered,
      );
    }
    yield {
      type: 'finish',
      reason: aborted ? 'aborted' : finish === 'length' ? 'length' : 'stop',
      route: live.route,
      unverified: live.unverified,
      promptTokens: enc.promptIds.length,
      completionTokens: live.emitted.length,
      info: {
        ...edgectlInfo(this.decision, live, this.redactions),
        ...(structured ? { structured } : {}),
        ...(this.rag ? { citations: this.rag.citations, retrieval: this.rag.info } : {}),
      },
    };
    return outcome;
  }
}
