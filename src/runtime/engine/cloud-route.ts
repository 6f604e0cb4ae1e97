/**
 * The cloud route's run (route-executor.ts calls it under its breaker and fallback): one streamed
 * completion from a `CloudClient` — edgectl's verifier or the site's OpenAI-compatible model
 * (src/verifier/client/cloud-client.ts) — turned into route events. Where the server gives token
 * ids in the site's vocabulary (edgectl's verifier), they are the answer, exactly as the draft
 * would have produced them. Where it gives text only (any other server), the text is the answer:
 * it goes to the consumer as `text` events, byte for byte, and the site's tokenizer re-tokenises it
 * only for what needs ids — the completion token count, metrics and feedback, and the context a
 * fallback to the draft continues from. Those are approximate (the hosted model's tokens are not
 * the site's, and a chunk boundary can split what one token would cover), which docs/running-sites.md
 * says; the whole answer is re-tokenised at once when the stream ends to keep the error small.
 */
import type { ChatTurn } from '../../inference/chat-template.js';
import type { TextTokenizer } from '../../inference/tokenizer.js';
import type { CloudClient, CloudMessage, CloudRequest } from '../../verifier/client/cloud-client.js';
import type { CloudAccess } from './cloud-access.js';
import { VerifierCallError } from './counting-verifier.js';
import { fromCompletionLogprobs } from './logprob-tokens.js';
import { responseFormatWire } from './structured.js';
import type { ExecFinish, RouteEvent, RouteRequest, RunState } from './route-executor.js';

export async function* runCloud(
  req: RouteRequest,
  state: RunState,
  client: CloudClient,
  retokenize: ((text: string) => number[]) | undefined,
): AsyncGenerator<RouteEvent, ExecFinish, undefined> {
  const ac = new AbortController();
  const onAbort = () => ac.abort();
  req.signal.addEventListener('abort', onAbort, { once: true });
  const textPrompt = !('ids' in req.prompt);
  let finish: ExecFinish | undefined;
  let answer = '';
  let textOnly = false;
  try {
    for await (const c of client.complete(cloudRequest(req), ac.signal)) {
      if (c.promptTokens !== undefined) state.promptTokens = c.promptTokens;
      // Before the tokens they describe, as the consumer renders them in order.
      if (c.logprobs)
        for (const token of fromCompletionLogprobs(c.logprobs, 'verifier')) yield { type: 'logprob', token };
      if (c.tokens !== undefined) {
        for (const token of c.tokens) {
          state.emitted.push(token);
          // One verifier pass per cloud token (what `edgectl generate` reports too).
          state.verifyRounds++;
          yield { type: 'token', token };
        }
        if (textPrompt && c.text !== '') yield { type: 'text', text: c.text };
      } else if (c.text !== '') {
        textOnly = true;
        answer += c.text;
        const ids = retokenize === undefined ? [] : (retokenizeSafely(retokenize, c.text) ?? []);
        state.emitted.push(...ids);
        state.verifyRounds += ids.length;
        yield { type: 'text', text: c.text };
      }
      if (c.finish !== undefined) finish = cloudFinish(c.finish, textPrompt);
    }
    return finish ?? 'length';
  } catch (err) {
    if (req.signal.aborted) return 'aborted';
    throw err instanceof VerifierCallError ? err : VerifierCallError.from(err);
  } finally {
    req.signal.removeEventListener('abort', onAbort);
    ac.abort();
    if (textOnly && retokenize !== undefined) {
      const ids = retokenizeSafely(retokenize, answer);
      if (ids !== undefined) state.emitted.splice(0, state.emitted.length, ...ids);
    }
  }
}

/** The request for either client: ids for a server that shares the tokenizer, text for any other. */
function cloudRequest(req: RouteRequest): CloudRequest {
  const p = req.prompt;
  const base = {
    maxTokens: req.maxTokens,
    sampling: req.sampling,
    seed: req.seed,
    ignoreEos: req.ignoreEos,
    ...(req.constraint ? { responseFormat: responseFormatWire(req.constraint.constraint) } : {}),
    ...(req.logprobs === undefined ? {} : { logprobs: req.logprobs }),
  };
  if (!('ids' in p)) return { ...base, text: p.text, stop: p.stop };
  const text = req.cloudPrompt;
  return {
    ...base,
    ids: p.ids,
    ...(text === undefined ? {} : { text: text.text }),
    ...(text?.messages === undefined ? {} : { messages: text.messages }),
  };
}

/** The per-chunk counts stand if the whole answer cannot be encoded (a control token's text). */
function retokenizeSafely(retokenize: (text: string) => number[], text: string): number[] | undefined {
  try {
    return retokenize(text);
  } catch {
    return undefined;
  }
}

/**
 * The server's finish reason: on a token-id prompt the runtime matches stops itself, so the
 * server's `stop` is end-of-sequence; on a text prompt (the server matched the stops) it is the
 * stop it says.
 */
function cloudFinish(reason: 'stop' | 'length', textPrompt: boolean): ExecFinish {
  if (reason === 'length') return 'length';
  return textPrompt ? 'stop' : 'eos';
}

/** What the site passes the route executor for its cloud model: the access and the re-tokeniser. */
export function cloudDeps(
  access: CloudAccess | undefined,
  tokenizer: TextTokenizer,
): { cloud?: CloudAccess; retokenize: (text: string) => number[] } {
  return {
    ...(access === undefined ? {} : { cloud: access }),
    // No BOS or other added tokens: the ids stand for generated text, not a new sequence.
    retokenize: (text) => tokenizer.encode(text, { addSpecialTokens: false }),
  };
}

/** A chat's turns as a chat completions server takes them (role, content, name only). */
export function cloudMessages(turns: readonly ChatTurn[]): CloudMessage[] {
  return turns.map((t) => ({
    role: t.role,
    content: t.content,
    ...(t.name === undefined ? {} : { name: t.name }),
  }));
}
