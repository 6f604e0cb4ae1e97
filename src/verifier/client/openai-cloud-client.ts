/**
 * The cloud route against any OpenAI-compatible server (issue #18 item 5; a site's `runtime.cloud`,
 * docs/running-sites.md): streamed `POST {url}/completions` or `{url}/chat/completions` with standard
 * fields only (model, prompt or messages, max_tokens, temperature, top_p, seed, stream,
 * stream_options) and the API key from an environment variable as `Authorization: Bearer`. Such a
 * server has its own tokenizer, so it gets text, never the site's token ids, and its answer is text:
 * the caller re-tokenises it where it needs ids (counts, a fallback that continues the answer).
 *
 * Failures are typed like the verifier client's (verifier-transport.ts), so the route executor's
 * breaker and fallback treat them alike: unreachable and 5xx are OperationalErrors, a deadline is a
 * TimeoutError (for the response headers, then between two reads of the stream), 401/403 is a
 * UserError naming the key's variable, 429/503 are retried once after the server's delay and are
 * `E_CLOUD_OVERLOADED` after that; a stream that closes early or sends an event that is not JSON is
 * `E_CLOUD_PROTOCOL` (sse.ts). It uses fetch: one base URL per site, no per-verifier pool to size.
 */
import { OperationalError, TimeoutError, UserError, type EdgectlError } from '../../foundation/errors.js';
import type { CloudChunk, CloudClient, CloudRequest } from './cloud-client.js';
import { sseJson } from './sse.js';

export type OpenAICloudApi = 'completions' | 'chat';

export interface OpenAICloudOptions {
  /** Base URL as OpenAI clients take it, e.g. https://api.example.com/v1. */
  url: string;
  model: string;
  api: OpenAICloudApi;
  /** The key (read by the caller from the variable it names); undefined sends no Authorization. */
  apiKey: string | undefined;
  /** The variable the key came from, for messages. */
  apiKeyEnv: string | undefined;
  /** Deadline for the response headers and between two reads of the stream. */
  timeoutMs: number;
  /** Retries of a 429/503 (default 1). */
  retries?: number;
}

type Json = Record<string, unknown>;

export class OpenAICloudClient implements CloudClient {
  private readonly endpoint: URL;

  constructor(private readonly opts: OpenAICloudOptions) {
    const base = opts.url.endsWith('/') ? opts.url : `${opts.url}/`;
    this.endpoint = new URL(opts.api === 'chat' ? 'chat/completions' : 'completions', base);
  }

  get url(): string {
    return this.endpoint.href;
  }

  async *complete(req: CloudRequest, signal: AbortSignal): AsyncGenerator<CloudChunk, void, undefined> {
    const ac = new AbortController();
    const deadline = new Deadline(ac, this.opts.timeoutMs, this.endpoint);
    const onAbort = () => ac.abort(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    let streaming = false;
    try {
      const res = await this.send(this.body(req), ac, deadline);
      streaming = true;
      if (res.body === null) throw this.protocol('answered without a body');
      const source = { name: `cloud model ${this.endpoint.origin}`, protocolCode: 'E_CLOUD_PROTOCOL' };
      for await (const event of sseJson(deadline.watch(res.body), source)) {
        const chunk = this.chunk(event);
        if (chunk) yield chunk;
      }
    } catch (err) {
      throw deadline.expired ? deadline.error() : signal.aborted ? err : this.mapped(err, streaming);
    } finally {
      signal.removeEventListener('abort', onAbort);
      deadline.clear();
      // Ends the response (and the server's generation) when the consumer stopped early.
      ac.abort();
    }
  }

  /** The request body: standard fields only. */
  private body(req: CloudRequest): Json {
    // Token ids mean nothing to a server with another tokenizer: the site always sends the text too.
    if (req.text === undefined) throw new TypeError('the OpenAI cloud client needs the prompt as text');
    const text = req.text;
    const common: Json = {
      model: this.opts.model,
      max_tokens: req.maxTokens,
      temperature: req.sampling.temperature,
      ...(req.sampling.topP === undefined ? {} : { top_p: req.sampling.topP }),
      ...(req.seed === undefined ? {} : { seed: req.seed }),
      stream: true,
      stream_options: { include_usage: true },
      ...(req.responseFormat === undefined ? {} : { response_format: req.responseFormat as Json }),
    };
    if (this.opts.api === 'completions') return { ...common, prompt: text };
    const messages = req.messages ?? [{ role: 'user', content: text }];
    return { ...common, messages };
  }

  /** Sends the request, retrying 429/503 (the server did no work); non-2xx becomes a typed error. */
  private async send(body: Json, ac: AbortController, deadline: Deadline): Promise<Response> {
    const retries = this.opts.retries ?? 1;
    for (let n = 0; ; n++) {
      deadline.arm();
      const res = await fetch(this.endpoint, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'text/event-stream',
          ...(this.opts.apiKey === undefined ? {} : { authorization: `Bearer ${this.opts.apiKey}` }),
        },
        body: JSON.stringify(body),
        signal: ac.signal,
      });
      if (res.ok) return res;
      const text = await res.text().catch(() => '');
      if ((res.status === 429 || res.status === 503) && n < retries) {
        await delay(retryAfterMs(res.headers), ac.signal);
        continue;
      }
      throw this.statusError(res.status, text);
    }
  }

  /** A chunk of either API's stream; usage-only chunks carry the prompt count. */
  private chunk(event: Json): CloudChunk | undefined {
    const usage = event.usage as { prompt_tokens?: unknown } | null | undefined;
    const promptTokens = typeof usage?.prompt_tokens === 'number' ? usage.prompt_tokens : undefined;
    const choices = event.choices;
    if (choices !== undefined && !Array.isArray(choices))
      throw this.protocol('sent "choices" that is not a list');
    const choice = (choices as Json[] | undefined)?.[0];
    if (choice === undefined) return promptTokens === undefined ? undefined : this.of('', null, promptTokens);
    const raw = this.opts.api === 'chat' ? (choice.delta as Json | undefined)?.content : choice.text;
    if (raw !== undefined && raw !== null && typeof raw !== 'string') {
      throw this.protocol(`sent ${this.opts.api === 'chat' ? 'delta.content' : 'text'} that is not a string`);
    }
    return this.of(raw ?? '', choice.finish_reason, promptTokens);
  }

  private of(text: string, reason: unknown, promptTokens: number | undefined): CloudChunk {
    // `length` is the server's max_tokens; any other reason (stop, content_filter, …) ends the answer.
    const finish = reason === 'length' ? 'length' : typeof reason === 'string' ? 'stop' : undefined;
    return { text, tokens: undefined, finish, promptTokens };
  }

  private protocol(what: string): OperationalError {
    return new OperationalError(`cloud model ${this.endpoint.origin} ${what}`, { code: 'E_CLOUD_PROTOCOL' });
  }

  private statusError(status: number, text: string): EdgectlError {
    let message = text.slice(0, 200);
    try {
      const e = (JSON.parse(text) as { error?: { message?: unknown } }).error;
      if (typeof e?.message === 'string') message = e.message;
    } catch {
      // not JSON: the text itself says what went wrong
    }
    const what = `cloud model POST ${this.endpoint.href}: ${status} ${message || 'error'}`;
    const details = { status };
    if (status === 401 || status === 403) {
      const env = this.opts.apiKeyEnv;
      return new UserError(what, {
        code: 'E_CLOUD_AUTH',
        details,
        suggestion: env
          ? `Check the API key in ${env} (runtime.cloud.apiKeyEnv) for ${this.endpoint.origin}.`
          : `The server wants an API key: name its environment variable in runtime.cloud.apiKeyEnv.`,
      });
    }
    if (status === 429 || status === 503) {
      return new OperationalError(what, { code: 'E_CLOUD_OVERLOADED', details, suggestion: 'Retry later.' });
    }
    if (status >= 500) return new OperationalError(what, { code: 'E_CLOUD', details });
    return new UserError(what, { code: 'E_CLOUD_REJECTED', details });
  }

  /** Network failures as typed errors: before the answer (refused, reset), or a body cut mid-stream. */
  private mapped(err: unknown, streaming: boolean): unknown {
    if (err instanceof OperationalError || err instanceof UserError || err instanceof TimeoutError)
      return err;
    const cause = (err as { cause?: { code?: unknown } }).cause;
    const why =
      typeof cause?.code === 'string' ? cause.code : err instanceof Error ? err.message : String(err);
    if (streaming) {
      return new OperationalError(
        `cloud model ${this.endpoint.origin} closed the stream mid-answer (${why})`,
        {
          code: 'E_CLOUD_PROTOCOL',
          cause: err,
        },
      );
    }
    return new OperationalError(`cloud model ${this.endpoint.origin} is unreachable (${why})`, {
      code: 'E_CLOUD_UNREACHABLE',
      cause: err,
      suggestion: 'Check runtime.cloud.url and that the server is up.',
    });
  }
}

/** One deadline, re-armed before the request and at every read of the stream. */
class Deadline {
  private timer: NodeJS.Timeout | undefined;
  expired = false;

  constructor(
    private readonly ac: AbortController,
    private readonly ms: number,
    private readonly endpoint: URL,
  ) {}

  arm(): void {
    this.clear();
    this.timer = setTimeout(() => {
      this.expired = true;
      this.ac.abort(this.error());
    }, this.ms);
  }

  clear(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  error(): TimeoutError {
    return new TimeoutError(`cloud model ${this.endpoint.origin} sent nothing for ${this.ms} ms`, {
      suggestion: "Check the server's load, or raise the policy's verifier.timeoutMs.",
    });
  }

  /** The body's reads, each within the deadline (time the consumer takes between reads is not counted). */
  async *watch(body: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array, void, undefined> {
    const it = body[Symbol.asyncIterator]();
    try {
      for (;;) {
        this.arm();
        const n = await it.next();
        this.clear();
        if (n.done === true) return;
        yield n.value;
      }
    } finally {
      this.clear();
      // Cancels the body when the consumer stopped early; a body that already failed has nothing to cancel.
      await Promise.resolve(it.return?.()).catch(() => undefined);
    }
  }
}

function retryAfterMs(headers: Headers): number {
  const ms = Number(headers.get('retry-after-ms'));
  const s = Number(headers.get('retry-after'));
  const base = Number.isFinite(ms) && ms > 0 ? ms : Number.isFinite(s) && s > 0 ? s * 1000 : 100;
  return Math.min(2000, base);
}

function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        reject(signal.reason);
      },
      { once: true },
    );
  });
}
