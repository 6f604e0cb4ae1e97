/**
 * What the cloud route needs from a server that generates the whole answer (issue #18 item 5): a
 * streamed completion as chunks of text, with the token ids only where the server can give them in
 * the site's own vocabulary. Two implementations: `VerifierCloudClient` (edgectl's own verifier, its
 * `/v1/completions` with the `token_ids` extension, so the site's tokens are exact) and
 * `OpenAICloudClient` (openai-cloud-client.ts: any OpenAI-compatible server, standard fields only,
 * text only). The route executor (src/runtime/engine) sees only this interface, so it does not
 * branch on which server answers.
 */
import { hasRepetitionPenalty, type SamplingParams } from '../../inference/sampling.js';
import type { CompletionLogprobs, CompletionRequest } from '../protocol.js';
import type { HttpVerifier } from './http-verifier.js';

/** A chat message as a chat completions server takes it (content already redacted). */
export interface CloudMessage {
  role: string;
  content: string;
  name?: string;
}

export interface CloudRequest {
  /** The prompt as token ids of the site's tokenizer (only a server that shares it can use them). */
  ids?: readonly number[];
  /** The prompt as text: what the site's model would read (a chat rendered by its template). */
  text?: string;
  /** A chat's messages, for a chat completions server. */
  messages?: readonly CloudMessage[];
  /** Stops for the server to match (text prompts of `edgectl generate`; the site matches its own). */
  stop?: readonly string[];
  maxTokens: number;
  sampling: SamplingParams;
  seed: number | undefined;
  ignoreEos: boolean;
  /**
   * OpenAI's `response_format` for a grammar-constrained request (issue #18): edgectl's verifier
   * decodes under the same grammar; another server is asked for it, and the site validates the answer.
   */
  responseFormat?: Record<string, unknown>;
  /** OpenAI completions `logprobs` (top alternatives per token); edgectl's verifier only. */
  logprobs?: number;
}

export interface CloudChunk {
  /** Text generated since the previous chunk (may be empty). */
  text: string;
  /** The generated token ids, when the server gives them in the site's vocabulary; else undefined. */
  tokens: readonly number[] | undefined;
  finish: 'stop' | 'length' | undefined;
  /** The server's count of prompt tokens (its usage chunk), when it sends one. */
  promptTokens: number | undefined;
  /** OpenAI completions logprobs of this chunk's tokens, when they were asked for. */
  logprobs?: CompletionLogprobs | undefined;
}

export interface CloudClient {
  /** Where the completions go (for messages and metrics). */
  readonly url: string;
  /** Streams one completion; throws typed errors (see each implementation). */
  complete(req: CloudRequest, signal: AbortSignal): AsyncGenerator<CloudChunk, void, undefined>;
}

/** edgectl's verifier as the cloud: exact token ids through its `token_ids` extension. */
export class VerifierCloudClient implements CloudClient {
  constructor(private readonly verifier: HttpVerifier) {}

  get url(): string {
    return this.verifier.url;
  }

  async *complete(req: CloudRequest, signal: AbortSignal): AsyncGenerator<CloudChunk, void, undefined> {
    const text = req.ids === undefined;
    if (text && req.text === undefined) throw new TypeError('a cloud request needs ids or text');
    if (req.responseFormat !== undefined) this.verifier.requireMaskSupport();
    const wire: CompletionRequest = {
      prompt: req.ids !== undefined ? [...req.ids] : (req.text as string),
      max_tokens: req.maxTokens,
      temperature: req.sampling.temperature,
      ...(req.sampling.topP === undefined ? {} : { top_p: req.sampling.topP }),
      ...(hasRepetitionPenalty(req.sampling)
        ? { repetition_penalty: req.sampling.repetitionPenalty as number }
        : {}),
      ...(req.seed === undefined ? {} : { seed: req.seed }),
      ...(req.ignoreEos && req.responseFormat === undefined ? { ignore_eos: true } : {}),
      ...(req.responseFormat === undefined
        ? {}
        : { response_format: req.responseFormat as CompletionRequest['response_format'] }),
      ...(text && req.stop !== undefined && req.stop.length > 0 ? { stop: [...req.stop] } : {}),
      ...(text ? { stream_options: { include_usage: true } } : {}),
      ...(req.logprobs === undefined ? {} : { logprobs: req.logprobs }),
    };
    for await (const c of this.verifier.complete(wire, signal)) {
      const choice = c.choices[0];
      yield {
        text: choice?.text ?? '',
        // An older or foreign server without the extension: text only, re-tokenised by the caller.
        tokens: Array.isArray(choice?.token_ids) ? choice.token_ids : undefined,
        finish: choice?.finish_reason ?? undefined,
        promptTokens: c.usage?.prompt_tokens,
        logprobs: choice?.logprobs ?? undefined,
      };
    }
  }
}
