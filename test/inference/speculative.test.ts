import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../../src/foundation/errors.js';
import { collect, generate, generateSpeculative, type DoneEvent } from '../../src/inference/generate.js';
import { K_MAX } from '../../src/inference/adaptive-k.js';
import { InProcessVerifier } from '../../src/inference/in-process-verifier.js';
import { createRng } from '../../src/inference/rng.js';
import { Drafter } from '../../src/inference/speculative.js';
import { loadLoraAdapter, type LoraAdapter } from '../../src/inference/lora.js';
import { LmSession } from '../../src/inference/model-session.js';
import { TextTokenizer } from '../../src/inference/tokenizer.js';
import {
  toSparse,
  type Verifier,
  type VerifierSession,
  type VerifierStartOptions,
  type VerifyRequest,
  type VerifyResult,
} from '../../src/inference/verifier.js';
import { DRAFT_DIR, prompts, SUPPORT_ADAPTER_DIR, VERIFIER_DIR } from './helpers.js';

let draft: LmSession;
let verifierModel: LmSession;
let verifier: InProcessVerifier;
let tok: TextTokenizer;
let support: LoraAdapter;

beforeAll(async () => {
  [draft, verifierModel] = await Promise.all([LmSession.load(DRAFT_DIR), LmSession.load(VERIFIER_DIR)]);
  verifier = new InProcessVerifier(verifierModel);
  tok = TextTokenizer.load(DRAFT_DIR);
  support = loadLoraAdapter(SUPPORT_ADAPTER_DIR, draft.inputs.lora);
});
afterAll(async () => Promise.all([draft.release(), verifierModel.release()]));

describe('greedy speculative decoding', () => {
  const TOKENS = 24;
  it('is token-identical to verifier-only greedy for k = 1..8, 8 prompts, with and without an adapter', async () => {
    const texts = [...prompts('general', 4), ...prompts('support', 4)];
    let rounds = 0;
    let accepted = 0;
    for (const text of texts) {
      const ids = tok.encode(text);
      // eos disabled so every run covers all 24 positions.
      const ref = await collect(generate(verifierModel, ids, { maxTokens: TOKENS, eosTokenIds: [] }));
      expect(ref.tokens).toHaveLength(TOKENS);
      for (const lora of [undefined, support.feeds]) {
        for (let k = 1; k <= 8; k++) {
          const spec = await collect(
            generateSpeculative(draft, verifier, ids, {
              maxTokens: TOKENS,
              eosTokenIds: [],
              k,
              ...(lora ? { lora } : {}),
            }),
          );
          expect(
            spec.tokens,
            `k=${k} adapter=${lora ? 'support' : 'none'} prompt=${JSON.stringify(text)}`,
          ).toEqual(ref.tokens);
          const s = spec.done.stats;
          expect(s.kPerRound.every((x) => x <= k)).toBe(true);
          expect(s.acceptedPerRound.reduce((a, b) => a + b, 0)).toBe(s.accepted);
          rounds += s.verifyRounds;
          accepted += s.accepted;
        }
      }
    }
    // Speculation has to be doing something: on average more than one token per verify round.
    expect(accepted / rounds).toBeGreaterThan(0.5);
  });

  it('adaptive k gives the same tokens and reports consistent statistics', async () => {
    const ids = tok.encode(prompts('support', 1)[0] as string);
    const ref = await collect(generate(verifierModel, ids, { maxTokens: 40, eosTokenIds: [] }));
    const spec = await collect(
      generateSpeculative(draft, verifier, ids, { maxTokens: 40, eosTokenIds: [], k: 'auto' }),
    );
    expect(spec.tokens).toEqual(ref.tokens);
    const s = spec.done.stats;
    expect(s.tokens).toBe(40);
    expect(s.drafted).toBe(s.kPerRound.reduce((a, b) => a + b, 0));
    expect(s.meanAcceptanceLength).toBeCloseTo(1 + s.accepted / s.verifyRounds, 10);
    // Adaptive k's bound is K_MAX; where in [0, K_MAX] it settles follows measured costs (the load).
    expect(s.kPerRound.every((k) => k >= 0 && k <= K_MAX)).toBe(true);
    expect(s.ttftMs).toBeGreaterThan(0);
  });

  it('a confidence stop shortens proposals and leaves greedy output unchanged', async () => {
    const texts = [...prompts('general', 3), ...prompts('support', 2)];
    for (const text of texts) {
      const ids = tok.encode(text);
      const ref = await collect(generate(verifierModel, ids, { maxTokens: 48, eosTokenIds: [] }));
      const run = (minDraftConfidence: number) =>
        collect(
          generateSpeculative(draft, verifier, ids, {
            maxTokens: 48,
            eosTokenIds: [],
            k: 'auto',
            adaptive: { min: 12, max: 12 },
            minDraftConfidence,
          }),
        );
      const [off, low, high] = await Promise.all([run(0), run(0.05), run(0.9)]);
      for (const r of [off, low, high]) expect(r.tokens).toEqual(ref.tokens);
      const perRound = (r: typeof off) => r.done.stats.drafted / r.done.stats.verifyRounds;
      // Without the stop, adaptive k pinned to 12 drafts 12 (less only where max tokens is near).
      expect(off.done.stats.kPerRound[0]).toBe(12);
      expect(perRound(high)).toBeLessThan(perRound(low));
      expect(perRound(low)).toBeLessThan(perRound(off));
    }
  });

  it('Drafter.propose stops below the confidence floor, after a prefix of the full proposal', async () => {
    const ids = tok.encode(prompts('support', 3)[2] as string);
    const propose = async (minConfidence: number) => {
      const drafter = new Drafter(draft, ids, { sampling: { temperature: 0 }, rng: createRng(1) });
      await drafter.prefill();
      return (await drafter.propose(12, minConfidence)).tokens;
    };
    const full = await propose(0);
    const short = await propose(0.999);
    expect(full).toHaveLength(12);
    expect(short.length).toBeGreaterThanOrEqual(1);
    expect(short.length).toBeLessThan(6);
    expect(full.slice(0, short.length)).toEqual(short);
  });

  it('rejects a confidence floor outside [0, 1)', async () => {
    const ids = tok.encode('Hello');
    for (const bad of [-0.1, 1, Number.NaN]) {
      await expect(
        collect(generateSpeculative(draft, verifier, ids, { maxTokens: 4, minDraftConfidence: bad })),
      ).rejects.toThrow(/minDraftConfidence/);
    }
  });

  it('stops at a stop string and at eos exactly like verifier-only decoding', async () => {
    const ids = tok.encode(prompts('general', 1)[0] as string);
    const free = await collect(generate(verifierModel, ids, { maxTokens: 40, tokenizer: tok }));
    const stop = free.text.slice(8, 12);
    const a = await collect(generate(verifierModel, ids, { maxTokens: 40, tokenizer: tok, stop: [stop] }));
    const b = await collect(
      generateSpeculative(draft, verifier, ids, { maxTokens: 40, tokenizer: tok, stop: [stop], k: 5 }),
    );
    expect(a.done.finishReason).toBe('stop');
    expect(a.text).toBe(free.text.slice(0, free.text.indexOf(stop)));
    expect(b.text).toBe(a.text);
    expect(b.done.finishReason).toBe('stop');
    const c = await collect(
      generateSpeculative(draft, verifier, ids, { maxTokens: 40, tokenizer: tok, k: 5 }),
    );
    expect(c.text).toBe(free.text);
    expect(c.done.finishReason).toBe(free.done.finishReason);
  });
});

describe('verifier sessions', () => {
  it('refuse bad drafts without changing the session', async () => {
    const ids = tok.encode(prompts('support', 2)[1] as string);
    const a = await verifier.start(ids);
    const b = await verifier.start(ids);
    await expect(a.verify({ draft: [5, 1024] })).rejects.toThrow(
      /draft\[1\]: token id 1024 is outside the vocabulary/,
    );
    await expect(a.verify({ draft: [5, -1] })).rejects.toBeInstanceOf(UserError);
    const sampling = await verifier.start(ids, { sampling: { temperature: 1 } });
    await expect(sampling.verify({ draft: [5] })).rejects.toThrow(/one draft distribution per drafted token/);
    await expect(sampling.verify({ draft: [5], draftDists: [{ ids: [6], probs: [1] }] })).rejects.toThrow(
      /probability 0/,
    );
    const ra = await a.verify({ draft: [5, 6, 7] });
    const rb = await b.verify({ draft: [5, 6, 7] });
    expect(ra).toMatchObject({ accepted: rb.accepted, nextToken: rb.nextToken, length: rb.length });
    await a.close();
    await expect(a.verify({ draft: [] })).rejects.toThrow(/closed/);
  });

  it('an empty draft is a plain verifier decoding step', async () => {
    const ids = tok.encode(prompts('general', 3)[2] as string);
    const ref = await collect(generate(verifierModel, ids, { maxTokens: 5, eosTokenIds: [] }));
    const s = await verifier.start(ids);
    const got: number[] = [];
    for (let i = 0; i < 5; i++) got.push((await s.verify({ draft: [] })).nextToken);
    expect(got).toEqual(ref.tokens);
  });
});

/** A Verifier whose requests and answers cross a JSON boundary, as they do over HTTP. */
class JsonVerifier implements Verifier {
  constructor(private readonly inner: InProcessVerifier) {}
  get vocabSize(): number {
    return this.inner.vocabSize;
  }
  async start(promptIds: readonly number[], opts?: VerifierStartOptions): Promise<VerifierSession> {
    // The first-token callback stays on the client side; only the token crosses the wire.
    const { onFirstToken, ...wire } = opts ?? {};
    const session = await this.inner.start(JSON.parse(JSON.stringify(promptIds)), {
      ...(JSON.parse(JSON.stringify(wire)) as VerifierStartOptions),
      ...(onFirstToken
        ? { onFirstToken: (t: number) => onFirstToken(JSON.parse(JSON.stringify(t)) as number) }
        : {}),
    });
    return {
      id: session.id,
      verify: async (req) => {
        const wire = JSON.stringify({
          draft: req.draft,
          ...(req.draftDists
            ? { draftDists: req.draftDists.map((d) => (d instanceof Float32Array ? toSparse(d) : d)) }
            : {}),
        });
        return JSON.parse(
          JSON.stringify(await session.verify(JSON.parse(wire) as VerifyRequest)),
        ) as VerifyResult;
      },
      close: () => session.close(),
    };
  }
}

/** A verifier that cannot return the first token with the session (as an older server). */
class NoFirstToken implements Verifier {
  starts = 0;
  verifies = 0;
  constructor(private readonly inner: Verifier) {}
  get vocabSize(): number {
    return this.inner.vocabSize;
  }
  async start(promptIds: readonly number[], opts?: VerifierStartOptions): Promise<VerifierSession> {
    this.starts++;
    const { onFirstToken: _dropped, ...rest } = opts ?? {};
    const session = await this.inner.start(promptIds, rest);
    return {
      id: session.id,
      verify: (req) => {
        this.verifies++;
        return session.verify(req);
      },
      close: () => session.close(),
    };
  }
}

describe('the first token with the session', () => {
  it('greedy: the same tokens with and without it, the first one before any verify round', async () => {
    for (const text of [...prompts('general', 2), ...prompts('support', 2)]) {
      const ids = tok.encode(text);
      const ref = await collect(generate(verifierModel, ids, { maxTokens: 20, eosTokenIds: [] }));
      let verifies = 0;
      let firstTokenAt = -1;
      const counting: Verifier = {
        vocabSize: verifier.vocabSize,
        start: async (p, o) => {
          const session = await verifier.start(p, o);
          return {
            id: session.id,
            verify: (req) => {
              verifies++;
              return session.verify(req);
            },
            close: () => session.close(),
          };
        },
      };
      const tokens: number[] = [];
      for await (const e of generateSpeculative(draft, counting, ids, {
        maxTokens: 20,
        eosTokenIds: [],
        k: 4,
      })) {
        if (e.type !== 'token') continue;
        if (tokens.length === 0) firstTokenAt = verifies;
        tokens.push(e.token);
      }
      expect(tokens).toEqual(ref.tokens);
      expect(firstTokenAt).toBe(0);
      const old = new NoFirstToken(verifier);
      const without = await collect(
        generateSpeculative(draft, old, ids, { maxTokens: 20, eosTokenIds: [], k: 4 }),
      );
      expect(without.tokens).toEqual(ref.tokens);
      expect(old.verifies).toBeGreaterThan(0);
    }
  });

  it('maxTokens 1 is answered by the session alone; a session asked for it holds the token', async () => {
    const ids = tok.encode(prompts('general', 1)[0] as string);
    const ref = await collect(generate(verifierModel, ids, { maxTokens: 3, eosTokenIds: [] }));
    const old = new NoFirstToken(verifier);
    const one = await collect(generateSpeculative(draft, verifier, ids, { maxTokens: 1, eosTokenIds: [] }));
    expect(one.tokens).toEqual(ref.tokens.slice(0, 1));
    expect(one.done.stats.verifyRounds).toBe(0);
    const viaOld = await collect(generateSpeculative(draft, old, ids, { maxTokens: 1, eosTokenIds: [] }));
    expect(viaOld.tokens).toEqual(ref.tokens.slice(0, 1));
    expect(viaOld.done.stats.verifyRounds).toBe(1);
    let first: number | undefined;
    const s = await verifier.start(ids, { onFirstToken: (t) => (first = t) });
    expect(first).toBe(ref.tokens[0]);
    expect(s.length).toBe(ids.length + 1);
    // The next round scores drafts after the first token.
    const r = await s.verify({ draft: ref.tokens.slice(1, 3) });
    expect(r.accepted).toBe(2);
    await s.close();
  });
});

describe('the Verifier interface', () => {
  it('works across a JSON boundary with sparse draft distributions (as the HTTP client will)', async () => {
    const ids = tok.encode(prompts('support', 3)[2] as string);
    const opts = { maxTokens: 30, sampling: { temperature: 0.8, topP: 0.95 }, seed: 7, k: 3 } as const;
    const local = await collect(generateSpeculative(draft, verifier, ids, opts));
    const remote = await collect(generateSpeculative(draft, new JsonVerifier(verifier), ids, opts));
    expect(remote.tokens).toEqual(local.tokens);
    expect(remote.done.stats.acceptedPerRound).toEqual(local.done.stats.acceptedPerRound);
    const again = await collect(generateSpeculative(draft, verifier, ids, opts));
    expect(again.tokens).toEqual(local.tokens); // seeded: reproducible
  });

  it('a seeded sampled request with adaptive k is reproducible whatever the timing', async () => {
    // Its draws depend on where rounds split, so its draft lengths may not follow the clock.
    const ids = tok.encode(prompts('support', 3)[1] as string);
    const opts = { maxTokens: 40, eosTokenIds: [], sampling: { temperature: 0.8, topP: 0.95 }, seed: 11 };
    let t = 0;
    const jittery = () => (t += 1 + ((t * 7919) % 37)); // a clock that makes every step look different
    const a = await collect(generateSpeculative(draft, verifier, ids, { ...opts, k: 'auto' }));
    const b = await collect(generateSpeculative(draft, verifier, ids, { ...opts, k: 'auto', now: jittery }));
    expect(b.tokens).toEqual(a.tokens);
    expect(b.done.stats.acceptedPerRound).toEqual(a.done.stats.acceptedPerRound);
    expect(a.done.stats.verifyRounds).toBeGreaterThan(2);
  });

  it('generation can be aborted and asked for zero tokens', async () => {
    const ids = tok.encode(prompts('general', 1)[0] as string);
    const ac = new AbortController();
    let n = 0;
    let done: DoneEvent | undefined;
    for await (const e of generateSpeculative(draft, verifier, ids, {
      maxTokens: 50,
      eosTokenIds: [],
      signal: ac.signal,
      k: 2,
    })) {
      if (e.type === 'token' && ++n === 3) ac.abort();
      if (e.type === 'done') done = e;
    }
    expect(done?.finishReason).toBe('aborted');
    expect(n).toBeLessThanOrEqual(5);
    const zero = await collect(generate(draft, ids, { maxTokens: 0 }));
    expect(zero.tokens).toEqual([]);
    expect(zero.done.finishReason).toBe('length');
  });
});
