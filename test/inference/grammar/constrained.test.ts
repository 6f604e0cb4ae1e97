/**
 * Grammar-constrained decoding on the fixture pair (issue #18 item 1): edge generation under an
 * xgrammar mask gives schema-valid JSON, speculative decoding with per-position masks is
 * token-identical to constrained verifier-only decoding (greedy) for several k, and the faults
 * (an invalid schema, a schema xgrammar aborts on) are clear UserErrors after which the engine
 * still compiles and serves.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../../../src/foundation/errors.js';
import { collect, generate, generateSpeculative } from '../../../src/inference/generate.js';
import {
  GrammarEngine,
  countAllowed,
  decodeMask,
  encodeMask,
  isAllowed,
  maskOf,
} from '../../../src/inference/grammar/index.js';
import type { GrammarConstraint } from '../../../src/inference/grammar/index.js';
import { InProcessVerifier } from '../../../src/inference/in-process-verifier.js';
import { LmSession } from '../../../src/inference/model-session.js';
import { TextTokenizer } from '../../../src/inference/tokenizer.js';
import { DRAFT_DIR, prompts, VERIFIER_DIR } from '../helpers.js';

let draft: LmSession;
let verifierModel: LmSession;
let tok: TextTokenizer;
const engine = new GrammarEngine();

/** A schema the random fixture models can finish: enums, bounded integers, short strings. */
export const EXTRACTION: GrammarConstraint = {
  kind: 'json_schema',
  schema: {
    type: 'object',
    properties: {
      intent: { enum: ['refund', 'billing', 'other'] },
      priority: { type: 'integer', minimum: 1, maximum: 5 },
      urgent: { type: 'boolean' },
      note: { type: 'string', maxLength: 8 },
    },
    required: ['intent', 'priority', 'urgent', 'note'],
    additionalProperties: false,
  },
};

beforeAll(async () => {
  [draft, verifierModel] = await Promise.all([LmSession.load(DRAFT_DIR), LmSession.load(VERIFIER_DIR)]);
  tok = TextTokenizer.load(DRAFT_DIR);
});
afterAll(async () => Promise.all([draft.release(), verifierModel.release()]));

const compileFor = (model: LmSession, c: GrammarConstraint) =>
  engine.compile(tok, c, { vocabSize: model.vocabSize, eosTokenIds: model.config.eosTokenIds });

describe('constrained decoding', () => {
  it('edge generation under a JSON schema gives valid JSON that ends with end-of-sequence', async () => {
    const compiled = await compileFor(draft, EXTRACTION);
    for (const text of prompts('support', 3)) {
      const out = await collect(
        generate(draft, tok.encode(text), {
          maxTokens: 120,
          tokenizer: tok,
          constraint: await compiled.matcher(),
        }),
      );
      expect(out.done.finishReason, out.text).toBe('eos');
      expect(compiled.check(out.text), out.text).toEqual({ valid: true });
    }
  });

  it('json_object gives a JSON object or runs out of tokens; never special tokens inside', async () => {
    const compiled = await compileFor(draft, { kind: 'json_object' });
    const out = await collect(
      generate(draft, tok.encode('Reply in JSON:'), {
        maxTokens: 60,
        tokenizer: tok,
        constraint: await compiled.matcher(),
      }),
    );
    expect(out.tokens.some((t) => tok.isSpecial(t))).toBe(false);
    if (out.done.finishReason === 'eos') expect(compiled.check(out.text)).toEqual({ valid: true });
    else expect(out.done.finishReason).toBe('length');
  });

  it('greedy speculative under masks is token-identical to constrained verifier-only decoding', async () => {
    const onVerifier = await compileFor(verifierModel, EXTRACTION);
    const onDraft = await compileFor(draft, EXTRACTION);
    const verifier = new InProcessVerifier(verifierModel);
    let compared = 0;
    for (const text of [...prompts('support', 2), ...prompts('general', 2)]) {
      const ids = tok.encode(text);
      const ref = await collect(
        generate(verifierModel, ids, {
          maxTokens: 100,
          tokenizer: tok,
          constraint: await onVerifier.matcher(),
        }),
      );
      expect(onVerifier.check(ref.text)).toEqual({ valid: true });
      for (const k of [1, 3, 6]) {
        const spec = await collect(
          generateSpeculative(draft, verifier, ids, {
            maxTokens: 100,
            k,
            tokenizer: tok,
            constraint: await onDraft.matcher(),
          }),
        );
        expect(spec.tokens, `k=${k} ${text}`).toEqual(ref.tokens);
        expect(spec.done.finishReason).toBe(ref.done.finishReason);
        compared++;
      }
    }
    expect(compared).toBe(12);
  });

  it('sampled speculative under masks stays inside the grammar', async () => {
    const compiled = await compileFor(draft, EXTRACTION);
    const verifier = new InProcessVerifier(verifierModel);
    for (const seed of [1, 2, 3]) {
      const out = await collect(
        generateSpeculative(draft, verifier, tok.encode('Ticket:'), {
          maxTokens: 100,
          k: 4,
          seed,
          sampling: { temperature: 1 },
          tokenizer: tok,
          constraint: await compiled.matcher(),
        }),
      );
      if (out.done.finishReason === 'eos')
        expect(compiled.check(out.text), out.text).toEqual({ valid: true });
      else expect(out.done.finishReason).toBe('length');
    }
  });
});

describe('the matcher', () => {
  it('allows end-of-sequence only where the grammar can end, and rolls back', async () => {
    const compiled = await compileFor(draft, { kind: 'json_schema', schema: { enum: ['ab'] } });
    const m = await compiled.matcher();
    const eos = draft.config.eosTokenIds[0] as number;
    expect(isAllowed(await m.mask(), eos)).toBe(false);
    const ids = tok.encode('"ab"', { addSpecialTokens: false });
    for (const id of ids) expect(m.accept(id)).toBe(true);
    const end = await m.mask();
    expect(countAllowed(end)).toBe(1);
    expect(isAllowed(end, eos)).toBe(true);
    m.rollBack(ids.length);
    expect(isAllowed(await m.mask(), eos)).toBe(false);
    expect(m.accept(eos)).toBe(false);
    for (const id of ids) m.accept(id);
    expect(m.accept(eos)).toBe(true);
    expect(m.isTerminated()).toBe(true);
    m.dispose();
  });

  it('special tokens are never allowed inside JSON', async () => {
    const compiled = await compileFor(draft, { kind: 'json_object' });
    const m = await compiled.matcher();
    for (const id of tok.encode('{"a": "', { addSpecialTokens: false })) m.accept(id);
    const inString = await m.mask();
    const specials = Array.from({ length: tok.vocabSize }, (_, i) => i).filter((i) => tok.isSpecial(i));
    expect(specials.length).toBeGreaterThan(0);
    for (const id of specials) expect(isAllowed(inString, id)).toBe(false);
    m.dispose();
  });

  it('structural tags: free text until a trigger, then the tag schema', async () => {
    const compiled = await compileFor(draft, {
      kind: 'structural_tag',
      tags: [
        {
          begin: '<f=a>',
          schema: { type: 'object', properties: { n: { type: 'integer' } }, required: ['n'] },
          end: '</f>',
        },
      ],
      triggers: ['<f='],
    });
    const m = await compiled.matcher();
    const free = countAllowed(await m.mask());
    expect(free).toBeGreaterThan(900);
    for (const id of tok.encode('hi <f=a>', { addSpecialTokens: false })) expect(m.accept(id)).toBe(true);
    expect(countAllowed(await m.mask())).toBeLessThan(20);
    m.dispose();
  });
});

describe('faults', () => {
  it('an invalid schema is a UserError naming the JSON path', async () => {
    const bad: GrammarConstraint = {
      kind: 'json_schema',
      schema: { type: 'object', properties: { age: { type: 'integr' } } },
    };
    await expect(compileFor(draft, bad)).rejects.toThrow(UserError);
    await expect(compileFor(draft, bad)).rejects.toThrow(/schema\/properties\/age\/type/);
    const missing: GrammarConstraint = { kind: 'json_schema', schema: { $ref: '#/definitions/missing' } };
    await expect(compileFor(draft, missing)).rejects.toThrow(/#\/definitions\/missing/);
  });

  it('a schema xgrammar aborts on is a UserError with its reason; a fresh instance serves the next one', async () => {
    const before = engine.reloads;
    const lookbehind: GrammarConstraint = {
      kind: 'json_schema',
      schema: { type: 'object', properties: { a: { type: 'string', pattern: '(?<=x)y' } }, required: ['a'] },
    };
    await expect(compileFor(draft, lookbehind)).rejects.toThrow(/cannot compile this schema: .*Lookbehind/);
    expect(engine.reloads).toBe(before + 1);
    const compiled = await compileFor(draft, EXTRACTION);
    const out = await collect(
      generate(draft, tok.encode('Ticket:'), {
        maxTokens: 100,
        tokenizer: tok,
        constraint: await compiled.matcher(),
      }),
    );
    expect(compiled.check(out.text)).toEqual({ valid: true });
  });
});

describe('mask wire form', () => {
  it('round-trips as an id list when sparse and as base64 when dense', () => {
    const sparse = maskOf([3, 40, 1000], 1024);
    const w1 = encodeMask(sparse, 1024);
    expect(w1).toEqual({ allow: [3, 40, 1000] });
    expect(decodeMask(w1, 1024, 'm')).toEqual(sparse);
    const dense = maskOf(
      Array.from({ length: 900 }, (_, i) => i),
      1024,
    );
    const w2 = encodeMask(dense, 1024);
    expect('bitmask' in w2).toBe(true);
    expect(decodeMask(w2, 1024, 'm')).toEqual(dense);
    expect(() => decodeMask({ allow: [2000] }, 1024, 'masks[0]')).toThrow(/masks\[0\]\.allow: token id 2000/);
    const all = maskOf(
      Array.from({ length: 1024 }, (_, i) => i),
      1024,
    );
    expect(() => decodeMask(encodeMask(all, 1024), 1000, 'masks[1]')).toThrow(/past the vocabulary/);
  });
});
