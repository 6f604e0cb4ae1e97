import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../../src/foundation/errors.js';
import { StreamDetokenizer, TextTokenizer } from '../../src/inference/tokenizer.js';
import { DRAFT_DIR } from './helpers.js';

const SAMPLES = [
  'Sam: see you at 7:30 at the usual place :)',
  'Agent: Your order #48213 ships with UPS tomorrow.',
  'naïve café — 日本語のテキスト, emoji 🚀👩‍💻 and ünïcödé',
  '  leading spaces,\ttabs\nand newlines\n\n',
];

describe('TextTokenizer', () => {
  let tok: TextTokenizer;
  beforeAll(() => {
    tok = TextTokenizer.load(DRAFT_DIR);
  });

  it('round-trips text, including multibyte characters', () => {
    expect(tok.vocabSize).toBe(1024);
    for (const text of SAMPLES) {
      const ids = tok.encode(text);
      expect(ids.every((id) => Number.isInteger(id) && id >= 0 && id < tok.vocabSize)).toBe(true);
      expect(tok.decode(ids)).toBe(text);
    }
  });

  it('knows its special tokens', () => {
    expect(tok.tokenId('<|endoftext|>')).toBe(0);
    expect(tok.isSpecial(0)).toBe(true);
    expect(tok.decode([...tok.encode('hi'), 0])).toBe('hi');
    expect(tok.decode([...tok.encode('hi'), 0], { skipSpecialTokens: false })).toBe('hi<|endoftext|>');
  });

  it('streams text token by token without ever emitting a broken character', () => {
    for (const text of SAMPLES) {
      const ids = tok.encode(text);
      const stream = tok.streamDecoder();
      let out = '';
      for (const id of ids) {
        const piece = stream.push(id);
        expect(piece).not.toContain('\uFFFD');
        expect(/[\uD800-\uDBFF]$/.test(piece)).toBe(false); // no dangling high surrogate
        out += piece;
      }
      out += stream.flush();
      expect(out).toBe(text);
    }
  });

  it('multibyte characters really are split across tokens (so the streaming test means something)', () => {
    const ids = tok.encode('🚀');
    expect(ids.length).toBeGreaterThan(1);
    expect(tok.decode(ids.slice(0, 1))).toContain('\uFFFD');
  });

  it('decodes a continuation in the context of its prompt', () => {
    const prompt = tok.encode('Alex: hello');
    const cont = tok.encode(' there, friend');
    const stream = tok.streamDecoder(prompt);
    const text = cont.map((id) => stream.push(id)).join('') + stream.flush();
    expect(text).toBe(' there, friend');
  });

  it('flush releases an incomplete trailing character', () => {
    const ids = tok.encode('é');
    const stream = new StreamDetokenizer((x) => tok.decode(x));
    expect(stream.push(ids[0] as number)).toBe('');
    expect(stream.flush()).toBe('\uFFFD');
  });

  it('refuses a missing or invalid tokenizer.json with the file name', () => {
    const dir = mkdtempSync(join(tmpdir(), 'edgectl-tok-'));
    expect(() => TextTokenizer.load(dir)).toThrow(/tokenizer\.json: cannot read file/);
    writeFileSync(join(dir, 'tokenizer.json'), '{"version": "1.0",');
    expect(() => TextTokenizer.load(dir)).toThrow(UserError);
    writeFileSync(join(dir, 'tokenizer.json'), '{"version": "1.0"}');
    expect(() => TextTokenizer.load(dir)).toThrow(/no "model" field/);
    rmSync(dir, { recursive: true, force: true });
  });
});
