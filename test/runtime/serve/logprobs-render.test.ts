// OpenAI's logprobs shapes from the engine's logprob events (issue #18 item 3): completions offsets
// run on across stream chunks, and the edgectl field says which model produced them, per token
// when the answer mixes verifier and draft tokens (a fallback mid-answer).
import { describe, expect, it } from 'vitest';
import type { LogprobToken } from '../../../src/runtime/engine/logprob-tokens.js';
import { LogprobsRenderer } from '../../../src/runtime/serve/logprobs-render.js';

const tok = (token: string, source: LogprobToken['source']): LogprobToken => ({
  token,
  bytes: [...Buffer.from(token)],
  logprob: -0.5,
  top: [{ token, bytes: [...Buffer.from(token)], logprob: -0.5 }],
  source,
});

describe('LogprobsRenderer', () => {
  it('completions: tokens, token_logprobs, top_logprobs and text_offset across chunks', () => {
    const r = new LogprobsRenderer('completion');
    r.add(tok('He', 'verifier'));
    r.add(tok('llo', 'verifier'));
    expect(r.take()).toEqual({
      tokens: ['He', 'llo'],
      token_logprobs: [-0.5, -0.5],
      top_logprobs: [{ He: -0.5 }, { llo: -0.5 }],
      text_offset: [0, 2],
    });
    r.add(tok(' you', 'verifier'));
    expect(r.take()).toMatchObject({ text_offset: [5] });
    expect(r.hasPending).toBe(false);
    expect(r.info()).toEqual({ logprobs_source: 'verifier' });
  });

  it('chat: content entries with bytes and top_logprobs; mixed sources are listed per token', () => {
    const r = new LogprobsRenderer('chat');
    r.add(tok('Hi', 'verifier'));
    r.add(tok('!', 'draft'));
    expect(r.take()).toEqual({
      content: [
        {
          token: 'Hi',
          logprob: -0.5,
          bytes: [72, 105],
          top_logprobs: [{ token: 'Hi', logprob: -0.5, bytes: [72, 105] }],
        },
        {
          token: '!',
          logprob: -0.5,
          bytes: [33],
          top_logprobs: [{ token: '!', logprob: -0.5, bytes: [33] }],
        },
      ],
      refusal: null,
    });
    expect(r.info()).toEqual({ logprobs_source: 'mixed', logprobs_sources: ['verifier', 'draft'] });
    expect(new LogprobsRenderer('chat').info()).toBeUndefined();
  });
});
