// The one route executor (issue #16 item 2) as `edgectl generate` and `bench speculative` use it:
// one connected verifier client, no fallback. Real fixture models and an in-process verifier
// server: speculative output equals edge-free cloud output token for token, a cloud run on a text
// prompt streams the verifier's text, a consumer's early stop counts as a verifier success, and a
// verifier that dies mid-run raises its own error (no silent edge answer) and opens the breaker's count.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { memoryIo } from '../../../src/foundation/output.js';
import { HttpVerifier } from '../../../src/verifier/client/http-verifier.js';
import { LmSession } from '../../../src/inference/model-session.js';
import { TextTokenizer } from '../../../src/inference/tokenizer.js';
import { CircuitBreaker } from '../../../src/policy/circuit-breaker.js';
import {
  drainRoute,
  executeRoute,
  newRunState,
  VerifierUnavailableError,
  type RouteRequest,
} from '../../../src/runtime/engine/route-executor.js';
import { clientAccess, noVerifierAccess } from '../../../src/runtime/engine/verifier-access.js';
import { startVerifierServer, type RunningVerifier } from '../../../src/verifier/server/server.js';
import { DRAFT_DIR, VERIFIER_DIR } from '../serve/helpers.js';

const PROMPT = 'Priya: how is it going?\nLeo:';

describe('route executor with one verifier client (real models, in-process verifier)', () => {
  let server: RunningVerifier;
  let verifier: HttpVerifier;
  let draft: LmSession;
  let ids: number[];

  const req = (route: RouteRequest['route'], extra: Partial<RouteRequest> = {}): RouteRequest => ({
    route,
    prompt: { ids },
    maxTokens: 16,
    sampling: { temperature: 0 },
    seed: undefined,
    ignoreEos: true,
    lora: undefined,
    cache: undefined,
    drafting: { k: 'auto' },
    signal: new AbortController().signal,
    ...extra,
  });

  beforeAll(async () => {
    server = await startVerifierServer({
      modelDir: VERIFIER_DIR,
      host: '127.0.0.1',
      port: 0,
      threads: 1,
      io: memoryIo(),
    });
    verifier = await HttpVerifier.connect(server.url, { timeoutMs: 2000 });
    draft = await LmSession.load(DRAFT_DIR, { intraOpThreads: 1 });
    ids = TextTokenizer.load(DRAFT_DIR).encode(PROMPT);
  }, 60_000);
  afterAll(async () => {
    verifier?.close();
    await draft?.release();
    await server?.close();
  });

  it('greedy speculative equals cloud token for token; edge needs no verifier', async () => {
    const spec = newRunState('speculative');
    const breaker = new CircuitBreaker({ failureThreshold: 1, openMs: 60_000, now: Date.now });
    const f1 = await drainRoute(
      executeRoute(req('speculative'), { model: draft, verifier: clientAccess(verifier, breaker) }, spec),
      {},
    );
    const cloud = newRunState('cloud');
    const f2 = await drainRoute(
      executeRoute(req('cloud'), { model: undefined, verifier: clientAccess(verifier) }, cloud),
      {},
    );
    expect([f1, f2]).toEqual(['length', 'length']);
    expect(spec.emitted).toEqual(cloud.emitted);
    expect(spec.emitted).toHaveLength(16);
    expect(spec.verifyRounds).toBeGreaterThan(0);
    expect(spec.draftTokens).toBeGreaterThanOrEqual(spec.acceptedTokens);
    expect(cloud.verifyRounds).toBe(16);
    const edge = newRunState('edge');
    await drainRoute(executeRoute(req('edge'), { model: draft, verifier: noVerifierAccess() }, edge), {});
    expect(edge.emitted).toHaveLength(16);
    expect(breaker.state).toBe('closed');
  });

  it('cloud on a text prompt streams the verifier text and its prompt token count', async () => {
    const state = newRunState('cloud');
    let text = '';
    const finish = await drainRoute(
      executeRoute(
        req('cloud', { prompt: { text: PROMPT, stop: [] }, maxTokens: 8 }),
        { model: undefined, verifier: clientAccess(verifier) },
        state,
      ),
      { text: (t) => (text += t) },
    );
    expect(finish).toBe('length');
    expect(state.emitted).toHaveLength(8);
    expect(state.promptTokens).toBe(ids.length);
    expect(text.length).toBeGreaterThan(0);
  });

  it('a consumer that stops early ends the run: finish stop, the breaker records a success', async () => {
    const breaker = new CircuitBreaker({ failureThreshold: 1, openMs: 60_000, now: Date.now });
    breaker.recordFailure(); // open: the next acquire after the cool-down would be a trial
    const fresh = new CircuitBreaker({ failureThreshold: 2, openMs: 60_000, now: Date.now });
    fresh.recordFailure();
    expect(fresh.consecutiveFailures).toBe(1);
    const state = newRunState('speculative');
    let seen = 0;
    const finish = await drainRoute(
      executeRoute(req('speculative'), { model: draft, verifier: clientAccess(verifier, fresh) }, state),
      {
        token: () => ++seen === 3,
      },
    );
    expect(finish).toBe('stop');
    expect(fresh.consecutiveFailures).toBe(0);
    // An open breaker refuses before any call; with no fallback the refusal is an error.
    await expect(
      drainRoute(
        executeRoute(req('speculative'), { model: draft, verifier: clientAccess(verifier, breaker) }),
        {},
      ),
    ).rejects.toThrow(/circuit breaker open/);
  });

  it('a verifier that dies mid-run raises its own error, never an edge answer', async () => {
    const other = await startVerifierServer({
      modelDir: VERIFIER_DIR,
      host: '127.0.0.1',
      port: 0,
      threads: 1,
      io: memoryIo(),
    });
    const client = await HttpVerifier.connect(other.url, { timeoutMs: 1000, retries: 0 });
    const breaker = new CircuitBreaker({ failureThreshold: 3, openMs: 60_000, now: Date.now });
    const state = newRunState('speculative');
    try {
      const run = drainRoute(
        executeRoute(
          req('speculative', { maxTokens: 64 }),
          { model: draft, verifier: clientAccess(client, breaker) },
          state,
        ),
        {
          token: () => {
            if (state.emitted.length === 2) void other.close();
          },
        },
      );
      const err = await run.catch((e: unknown) => e);
      expect(err).toBeInstanceOf(Error);
      expect(err).not.toBeInstanceOf(VerifierUnavailableError);
      expect(state.fallback).toBe(false);
      expect(state.emitted.length).toBeLessThan(64);
      expect(breaker.consecutiveFailures).toBe(1);
    } finally {
      client.close();
      await other.close().catch(() => undefined);
    }
  });

  it("logprobs: verified tokens carry the verifier's, tokens after a fallback the draft's; cloud the verifier's", async () => {
    const other = await startVerifierServer({
      modelDir: VERIFIER_DIR,
      host: '127.0.0.1',
      port: 0,
      threads: 1,
      io: memoryIo(),
    });
    const client = await HttpVerifier.connect(other.url, { timeoutMs: 1000, retries: 0 });
    const access = { ...clientAccess(client), fallback: () => ({ kind: 'edge-unverified' as const }) };
    const state = newRunState('speculative');
    const sources: (string | undefined)[] = [];
    try {
      const run = executeRoute(
        req('speculative', { maxTokens: 24, logprobs: 2 }),
        { model: draft, verifier: access },
        state,
      );
      for (;;) {
        const n = await run.next();
        if (n.done) break;
        if (n.value.type !== 'token') continue;
        expect(n.value.logprob?.top).toHaveLength(2);
        sources.push(n.value.source);
        if (sources.length === 2) await other.close();
      }
      expect(state.fallback).toBe(true);
      expect(sources).toHaveLength(24);
      expect(sources[0]).toBe('verifier');
      expect(sources.at(-1)).toBe('draft');
    } finally {
      client.close();
      await other.close().catch(() => undefined);
    }
    // The cloud route reads the verifier's /v1/completions logprobs: the same values as its sessions'.
    const collect = async (route: 'speculative' | 'cloud') => {
      const out: { logprob: number; source: string | undefined }[] = [];
      const run = executeRoute(req(route, { maxTokens: 8, logprobs: 1 }), {
        model: route === 'cloud' ? undefined : draft,
        verifier: clientAccess(verifier),
      });
      for (let n = await run.next(); !n.done; n = await run.next()) {
        const e = n.value;
        if (e.type === 'token' && e.logprob) out.push({ logprob: e.logprob.logprob, source: e.source });
        if (e.type === 'logprob') out.push({ logprob: e.token.logprob, source: e.token.source });
      }
      return out;
    };
    const [spec, cloud] = [await collect('speculative'), await collect('cloud')];
    expect(cloud).toHaveLength(8);
    cloud.forEach((c, i) => {
      expect(c.source).toBe('verifier');
      expect(c.logprob).toBeCloseTo(spec[i]?.logprob as number, 4);
    });
  });
  it('a verifier that does not announce logprobs is a verifier failure, never logprobs left out', async () => {
    const older = await HttpVerifier.connect(server.url);
    (older.identity as { features?: string[] }).features = ['first_token', 'verify_stream'];
    const state = newRunState('speculative');
    try {
      const err = await drainRoute(
        executeRoute(
          req('speculative', { logprobs: 0 }),
          { model: draft, verifier: clientAccess(older) },
          state,
        ),
        {},
      ).catch((e: unknown) => e);
      expect(String(err)).toMatch(/logprobs: the verifier does not return them/);
      expect(state.emitted).toEqual([]);
    } finally {
      older.close();
    }
  });
});
