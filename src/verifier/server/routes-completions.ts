/**
 * OpenAI-compatible `POST /v1/completions` on the verifier: cloud-only generation, the baseline
 * speculative decoding is measured against. Every decode step goes through admission on its own,
 * so concurrent streams interleave instead of one long generation holding the model — which is why
 * this route has its own small loop rather than the engine's generate(), whose passes call the
 * model directly. With
 * `stream: true` the answer is Server-Sent Events (`data: {chunk}` per token, `data: [DONE]`); a
 * client that disconnects aborts its generation at the next step and its KV cache is dropped.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { CompiledConstraint } from '../../inference/grammar/index.js';
import { applyMask } from '../../inference/grammar/mask.js';
import type { KvCache } from '../../inference/kv-cache.js';
import { createRng } from '../../inference/rng.js';
import { penalizedRow, sampleToken, type SamplingParams } from '../../inference/sampling.js';
import { StopMatcher } from '../../inference/stop.js';
import { HttpError, parseBody, toHttpError } from '../../http/http.js';
import { clientGoneSignal, samplingFromWire, type VerifierContext } from './context.js';
import { checkNeutralFields } from '../../http/openai-fields.js';
import { CompletionLogprobsBuilder } from './completion-logprobs.js';
import { completionSchema, type CompletionResponse, type CompletionUsage } from '../protocol.js';
import { completionConstraint } from './structured.js';

interface GenerationEvent {
  /** The generated token, or undefined for text released at the end (held back until then). */
  token: number | undefined;
  text: string;
}

interface GenerationPlan {
  promptIds: number[];
  maxTokens: number;
  sampling: SamplingParams;
  seed: number | undefined;
  stop: string[];
  ignoreEos: boolean;
  /** `response_format`: every token drawn under the grammar's mask (structured.ts). */
  constraint?: CompiledConstraint | undefined;
  /** Set when the request asked for logprobs. */
  logprobs: CompletionLogprobsBuilder | undefined;
}

interface GenerationOutcome {
  finishReason: 'stop' | 'length';
  completionTokens: number;
}

export function registerCompletionRoutes(app: FastifyInstance, ctx: VerifierContext): void {
  app.post('/v1/completions', async (req, reply) => {
    const body = parseBody(completionSchema, req.body);
    checkNeutralFields('completion', body);
    const plan = planGeneration(ctx, body);
    plan.constraint = await completionConstraint(ctx, body.response_format);
    const signal = clientGoneSignal(reply);
    const id = `cmpl-${randomUUID().replaceAll('-', '')}`;
    const created = Math.floor(Date.now() / 1000);
    const base = { id, object: 'text_completion' as const, created, model: ctx.model.name };
    const usage = (n: number): CompletionUsage => ({
      prompt_tokens: plan.promptIds.length,
      completion_tokens: n,
      total_tokens: plan.promptIds.length + n,
    });

    if (!body.stream) {
      let text = '';
      const tokenIds: number[] = [];
      const outcome = await generate(ctx, plan, signal, (e) => {
        text += e.text;
        if (e.token !== undefined) tokenIds.push(e.token);
      });
      const res: CompletionResponse = {
        ...base,
        choices: [
          {
            index: 0,
            text,
            finish_reason: outcome.finishReason,
            logprobs: plan.logprobs?.take() ?? null,
            token_ids: tokenIds,
          },
        ],
        usage: usage(outcome.completionTokens),
      };
      return res;
    }

    // Streaming: errors before the first byte are ordinary JSON errors; after it they end the stream.
    // A hijacked reply skips fastify's onResponse hook, so the latency is recorded here.
    reply.hijack();
    reply.raw.once('close', () =>
      ctx.metrics.request('/v1/completions', 'POST', reply.raw.statusCode, reply.elapsedTime / 1000),
    );
    const raw = reply.raw;
    raw.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
    });
    const send = (data: unknown) => {
      if (!raw.destroyed) raw.write(`data: ${JSON.stringify(data)}\n\n`);
    };
    try {
      const outcome = await generate(ctx, plan, signal, (e) =>
        send({
          ...base,
          choices: [
            {
              index: 0,
              text: e.text,
              finish_reason: null,
              logprobs: plan.logprobs?.take() ?? null,
              token_ids: e.token === undefined ? [] : [e.token],
            },
          ],
        }),
      );
      send({
        ...base,
        choices: [{ index: 0, text: '', finish_reason: outcome.finishReason, logprobs: null, token_ids: [] }],
        ...(body.stream_options?.include_usage ? { usage: usage(outcome.completionTokens) } : {}),
      });
      if (!raw.destroyed) raw.end('data: [DONE]\n\n');
    } catch (err) {
      if (!raw.destroyed) {
        send(toHttpError(err).body());
        raw.end('data: [DONE]\n\n');
      }
    }
  });
}

function planGeneration(
  ctx: VerifierContext,
  body: ReturnType<typeof completionSchema.parse>,
): GenerationPlan {
  const { model } = ctx;
  const prompt =
    Array.isArray(body.prompt) && typeof body.prompt[0] === 'string' ? body.prompt[0] : body.prompt;
  const promptIds = typeof prompt === 'string' ? model.encode(prompt) : (prompt as number[]);
  if (promptIds.length === 0) throw new HttpError(400, 'prompt: encodes to no tokens', 'empty_prompt');
  model.checkIds(promptIds, 'prompt');
  model.checkContext(promptIds.length + 1, 'prompt', 'prompt');
  const sampling = samplingFromWire(
    {
      temperature: body.temperature,
      top_p: body.top_p,
      top_k: body.top_k,
      repetition_penalty: body.repetition_penalty,
    },
    'body',
  );
  const stop = body.stop === undefined ? [] : Array.isArray(body.stop) ? body.stop : [body.stop];
  return {
    promptIds,
    // Past the context window the answer ends with finish_reason "length", as OpenAI servers do.
    maxTokens: Math.min(body.max_tokens, model.maxContext - promptIds.length),
    sampling,
    seed: body.seed ?? undefined,
    stop,
    ignoreEos: body.ignore_eos,
    logprobs:
      body.logprobs === undefined || body.logprobs === null
        ? undefined
        : new CompletionLogprobsBuilder(model.tokenizer, sampling, body.logprobs),
  };
}

/** Prefill, then one admitted forward pass per token until EOS, a stop string or max tokens. */
async function generate(
  ctx: VerifierContext,
  plan: GenerationPlan,
  signal: AbortSignal,
  emit: (e: GenerationEvent) => void,
): Promise<GenerationOutcome> {
  const { model, metrics } = ctx;
  const rng = createRng(plan.seed);
  const detok = model.tokenizer.streamDecoder(plan.promptIds);
  const stops = new StopMatcher(plan.stop);
  let cache: KvCache | undefined;
  let input = plan.promptIds;
  // Prompt and output so far: the history the repetition penalty looks at.
  const history = [...plan.promptIds];
  let produced = 0;
  const matcher = await plan.constraint?.matcher();
  // A grammar ends with end-of-sequence, so a constrained request always honours it.
  const ignoreEos = plan.ignoreEos && matcher === undefined;
  metrics.generationStarted();
  try {
    for (;;) {
      const res = await ctx.forward(cache === undefined ? 'prefill' : 'decode', input, cache, signal);
      // The superseded cache is this loop's alone: free it now rather than at the next GC.
      cache?.release();
      cache = res.cache;
      let row = penalizedRow(res.logits.last(), history, plan.sampling);
      if (matcher) row = applyMask(row, await matcher.mask());
      const token = sampleToken(row, plan.sampling, rng);
      history.push(token);
      matcher?.accept(token);
      if ((model.eos.has(token) && !ignoreEos) || matcher?.isTerminated() === true) {
        emitRest(detok.flush(), stops, emit);
        return { finishReason: 'stop', completionTokens: produced };
      }
      produced++;
      metrics.completionTokens(1);
      plan.logprobs?.add(row, token);
      const out = stops.push(detok.push(token));
      emit({ token, text: out.text });
      if (out.stopped) return { finishReason: 'stop', completionTokens: produced };
      if (produced >= plan.maxTokens) {
        emitRest(detok.flush(), stops, emit);
        return { finishReason: 'length', completionTokens: produced };
      }
      input = [token];
    }
  } catch (err) {
    if (signal.aborted) metrics.generationAborted();
    throw err;
  } finally {
    // The KV cache is local to this call: every exit (EOS, stop, length, error, client gone) frees it.
    cache?.release();
    matcher?.dispose();
    metrics.generationEnded();
  }
}

/** Emits text still held back by the detokenizer or the stop matcher when generation ends. */
function emitRest(pending: string, stops: StopMatcher, emit: (e: GenerationEvent) => void): void {
  const cut = stops.push(pending);
  const text = cut.stopped ? cut.text : cut.text + stops.flush();
  if (text) emit({ token: undefined, text });
}
