/**
 * `logprobs` of the verifier's OpenAI `/v1/completions` (issue #18 item 3): each generated token's
 * logprob in the verifier's distribution (src/inference/logprobs.ts: log-softmax of the penalised
 * row when greedy, the adjusted sampling distribution otherwise) with the `logprobs` most likely
 * alternatives, in OpenAI's completions shape — token texts from token-bytes.ts, `top_logprobs` as
 * `{text: logprob}` objects, `text_offset` counting token-text characters from the start of the
 * completion. Streaming sends each chunk the tokens it carries; the offsets run on across chunks.
 */
import { tokenLogprob } from '../../inference/logprobs.js';
import type { SamplingParams } from '../../inference/sampling.js';
import { tokenPiece } from '../../inference/token-bytes.js';
import type { TextTokenizer } from '../../inference/tokenizer.js';
import type { CompletionLogprobs } from '../protocol.js';

export class CompletionLogprobsBuilder {
  private pending: CompletionLogprobs = empty();
  private offset = 0;

  constructor(
    private readonly tokenizer: TextTokenizer,
    private readonly sampling: SamplingParams,
    private readonly topN: number,
  ) {}

  /** Records `token`, produced from the (penalised) logits `row`. */
  add(row: Float32Array, token: number): void {
    const lp = tokenLogprob(row, token, this.sampling, this.topN);
    const text = tokenPiece(this.tokenizer, token).text;
    const p = this.pending;
    p.tokens.push(text);
    p.token_logprobs.push(lp.logprob);
    p.top_logprobs.push(
      Object.fromEntries(lp.top.map((t) => [tokenPiece(this.tokenizer, t.token).text, t.logprob])),
    );
    p.text_offset.push(this.offset);
    this.offset += text.length;
  }

  /** The tokens recorded since the last call. */
  take(): CompletionLogprobs {
    const out = this.pending;
    this.pending = empty();
    return out;
  }
}

function empty(): CompletionLogprobs {
  return { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] };
}
