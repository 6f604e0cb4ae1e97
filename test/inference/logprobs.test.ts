// Logprobs of emitted tokens (issue #18 item 3): greedy rows give log-softmax with the top
// alternatives in order; sampled rows give the adjusted distribution (temperature, top-p), so a
// token outside the nucleus is never an alternative; token texts and bytes of a byte-level BPE
// vocabulary keep a split character's raw bytes.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LOGPROB_FLOOR, tokenLogprob } from '../../src/inference/logprobs.js';
import { tokenPiece } from '../../src/inference/token-bytes.js';
import { TextTokenizer } from '../../src/inference/tokenizer.js';
import { REPO_ROOT } from '../helpers/cli.js';

const row = Float32Array.from([1, 3, 2, 3, -1]);

function logSoftmax(values: number[], t = 1): number[] {
  const scaled = values.map((v) => v / t);
  const max = Math.max(...scaled);
  const lse = max + Math.log(scaled.reduce((s, v) => s + Math.exp(v - max), 0));
  return scaled.map((v) => v - lse);
}

describe('tokenLogprob', () => {
  it('greedy: log-softmax of the row, top alternatives most likely first, ties by lower id', () => {
    const expected = logSoftmax([...row]);
    const lp = tokenLogprob(row, 1, { temperature: 0 }, 3);
    expect(lp.logprob).toBeCloseTo(expected[1] as number, 6);
    expect(lp.top.map((t) => t.token)).toEqual([1, 3, 2]);
    lp.top.forEach((t) => expect(t.logprob).toBeCloseTo(expected[t.token] as number, 6));
    expect(tokenLogprob(row, 4, { temperature: 0 }, 0).top).toEqual([]);
  });

  it('sampling: the tempered, nucleus-restricted distribution tokens are drawn from', () => {
    const t = 0.5;
    const full = logSoftmax([...row], t);
    const plain = tokenLogprob(row, 2, { temperature: t }, 5);
    expect(plain.logprob).toBeCloseTo(full[2] as number, 5);
    expect(plain.top).toHaveLength(5);
    // top_p 0.9 keeps ids 1 and 3 (0.47 each at T=0.5): id 2 is outside, renormalised over the two.
    const nucleus = tokenLogprob(row, 1, { temperature: t, topP: 0.9 }, 5);
    expect(nucleus.top.map((x) => x.token)).toEqual([1, 3]);
    expect(nucleus.logprob).toBeCloseTo(Math.log(0.5), 5);
    expect(tokenLogprob(row, 2, { temperature: t, topP: 0.9 }, 0).logprob).toBe(LOGPROB_FLOOR);
  });
});

describe('tokenPiece', () => {
  it('byte-level BPE: a token holding one byte of a multi-byte character keeps its raw byte', () => {
    const tok = TextTokenizer.load(join(REPO_ROOT, 'artifacts/models/draft'));
    const id = tok.tokenId('Ã'); // GPT-2's symbol for byte 0xC3, the lead byte of "é" and others
    expect(id).toBeDefined();
    expect(tokenPiece(tok, id as number)).toEqual({ text: '\uFFFD', bytes: [0xc3] });
    const [hello] = tok.encode('hello', { addSpecialTokens: false });
    const piece = tokenPiece(tok, hello as number);
    expect(Buffer.from(piece.bytes).toString('utf8')).toBe(piece.text);
    expect('hello'.startsWith(piece.text)).toBe(true);
  });
});
