// The site engine without HTTP (issue #16): SiteEngine.run driven directly, on the committed fixture
// models (artifacts/models/draft in a generation directory) against a real verifier server in this
// process (artifacts/models/verifier): the events of a speculative answer (token-identical to the
// verifier's own greedy output), redaction, a block rule, an edge fallback when the verifier is
// gone, a refusal with the `error` fallback, validation, and lease and outcome accounting.
import { createServer } from 'node:net';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SiteEngine, type SiteEngineOptions } from '../../../src/runtime/engine/site-engine.js';
import type { EngineEvent, EngineRequest } from '../../../src/runtime/engine/types.js';
import type { LoadedGeneration } from '../../../src/runtime/engine/generation.js';
import { HttpError } from '../../../src/http/http.js';
import { startVerifierServer, type RunningVerifier } from '../../../src/verifier/server/server.js';
import type { RequestOutcome } from '../../../src/feedback/accumulator.js';
import { memoryIo } from '../../../src/foundation/output.js';
import {
  CountingSource,
  loadTestGeneration,
  makeGenerationDir,
  TEST_POLICY,
  VERIFIER_DIR,
} from '../serve/helpers.js';

type Finish = Extract<EngineEvent, { type: 'finish' }>;

async function drive(run: AsyncGenerator<EngineEvent, RequestOutcome>) {
  const events: EngineEvent[] = [];
  for (;;) {
    const n = await run.next();
    if (n.done) {
      const finish = events.find((e): e is Finish => e.type === 'finish');
      const text = events.map((e) => (e.type === 'text' ? e.text : '')).join('');
      return { events, outcome: n.value, finish: finish as Finish, text };
    }
    events.push(n.value);
  }
}

function request(prompt: string, extra: Partial<EngineRequest> = {}): EngineRequest {
  return {
    model: 'draft:support',
    prompt: { text: prompt },
    stops: [],
    maxTokens: 12,
    temperature: 0,
    topP: undefined,
    seed: undefined,
    ignoreEos: true,
    override: undefined,
    ...extra,
  };
}

/** A loopback URL where nothing listens (a verifier that is gone). */
async function deadUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((r) => server.close(() => r()));
  return `http://127.0.0.1:${port}`;
}

describe('site engine, driven without HTTP (real models, in-process verifier)', () => {
  let verifier: RunningVerifier;
  let gen: LoadedGeneration;
  let errorGen: LoadedGeneration;
  let source: CountingSource;
  let outcomes: RequestOutcome[];
  let url: string | undefined;
  let engine: SiteEngine;

  const makeEngine = (s: CountingSource, extra: Partial<SiteEngineOptions> = {}) =>
    new SiteEngine({
      generations: s,
      verifierUrl: () => url,
      maxConcurrent: 2,
      maxQueue: 4,
      onOutcome: (o) => outcomes.push(o),
      metrics: new Registry(),
      log: () => undefined,
      ...extra,
    });

  beforeAll(async () => {
    verifier = await startVerifierServer({
      modelDir: VERIFIER_DIR,
      host: '127.0.0.1',
      port: 0,
      threads: 1,
      io: memoryIo(),
    });
    gen = await loadTestGeneration(makeGenerationDir());
    errorGen = await loadTestGeneration(
      makeGenerationDir({ policy: TEST_POLICY.replace('fallback: edge-unverified', 'fallback: error') }),
    );
    source = new CountingSource(gen);
    outcomes = [];
    url = verifier.url;
    engine = makeEngine(source);
  }, 60_000);
  afterAll(async () => {
    await engine?.close();
    await gen?.dispose();
    await errorGen?.dispose();
    await verifier?.close();
  });

  it('answers speculatively: route, text, finish with statistics; output identical to the verifier alone', async () => {
    const prompt = 'Priya: how is it going?\nLeo:';
    const spec = await drive(engine.run(request(prompt), new AbortController().signal));
    expect(spec.events[0]).toMatchObject({ type: 'route', route: 'speculative', escalated: false });
    expect(spec.finish).toMatchObject({ reason: 'length', route: 'speculative', unverified: false });
    expect(spec.finish.completionTokens).toBe(12);
    expect(spec.finish.info.stats.verifyRounds).toBeGreaterThan(0);
    expect(spec.finish.info.stats.draftTokens).toBeGreaterThan(0);
    expect(spec.outcome).toMatchObject({ route: 'speculative', outputTokens: 12 });
    expect(spec.outcome.ttftMs).toBeGreaterThan(0);
    expect(outcomes.at(-1)).toEqual(spec.outcome);

    // Greedy speculative decoding is token-identical to the verifier's own greedy decoding.
    const cloud = await drive(
      engine.run(request(prompt, { override: 'cloud' }), new AbortController().signal),
    );
    expect(cloud.finish.route).toBe('cloud');
    expect(cloud.text).toBe(spec.text);
    expect(spec.text.length).toBeGreaterThan(0);
    expect(source.outstanding).toBe(0);
  });

  it('redacts before anything leaves the site and says how many values it replaced', async () => {
    const r = await drive(
      engine.run(request('Mail ana.lopez@example.com about EMP-123456.\nLeo:'), new AbortController().signal),
    );
    expect(r.events).toContainEqual({ type: 'redactions', count: 2 });
    expect(r.finish.info.redactions).toBe(2);
    expect(r.outcome.redactions).toBe(2);
    expect(r.text).not.toMatch(/<[A-Z_]+_\d+>/); // placeholders never reach the user
  });

  it('a block rule refuses without generating: blocked, the message, content_filter', async () => {
    const before = outcomes.length;
    const r = await drive(engine.run(request('my password: hunter2'), new AbortController().signal));
    expect(r.events.map((e) => e.type)).toEqual(['blocked', 'text', 'finish']);
    expect(r.text).toBe("I can't help with sharing credentials.");
    expect(r.finish).toMatchObject({ reason: 'content_filter', route: 'blocked', completionTokens: 0 });
    expect(r.finish.info.reason).toContain('block rule "credentials"');
    expect(outcomes.slice(before)).toEqual([r.outcome]);
    expect(r.outcome.route).toBe('blocked');
  });

  it('a verifier that is gone: a fallback event, the draft answers alone, marked unverified', async () => {
    url = await deadUrl();
    try {
      const r = await drive(engine.run(request('Priya: hi\nLeo:'), new AbortController().signal));
      const fallback = r.events.find((e) => e.type === 'fallback');
      expect(fallback).toMatchObject({ type: 'fallback', route: 'edge' });
      expect(r.finish).toMatchObject({ route: 'edge', unverified: true, completionTokens: 12 });
      expect(r.outcome).toMatchObject({ route: 'edge', fallback: true });
      expect(engine.status().verifier.lastError).not.toBeNull();
    } finally {
      url = verifier.url;
    }
  });

  it('with fallback "error" the refusal is a 503 with Retry-After, reported as a failed request', async () => {
    const s = new CountingSource(errorGen);
    const e = makeEngine(s);
    url = await deadUrl();
    try {
      const before = outcomes.length;
      const err = await drive(e.run(request('Priya: hi\nLeo:'), new AbortController().signal)).catch(
        (x) => x,
      );
      expect(err).toBeInstanceOf(HttpError);
      expect(err).toMatchObject({ status: 503, code: 'verifier_unavailable' });
      expect((err as HttpError).headers['retry-after']).toMatch(/^\d+$/);
      expect(outcomes.slice(before)).toEqual([expect.objectContaining({ error: true })]);
      expect(s.outstanding).toBe(0);
    } finally {
      url = verifier.url;
      await e.close();
    }
  });

  it('validation: an unknown adapter is a 404 naming the field; nothing is reported; the lease is released', async () => {
    const before = outcomes.length;
    const err = await drive(
      engine.run(request('hi', { model: 'draft:nope' }), new AbortController().signal),
    ).catch((x) => x);
    expect(err).toMatchObject({ status: 404, code: 'model_not_found', param: 'model' });
    expect(outcomes.length).toBe(before);
    expect(source.outstanding).toBe(0);
    expect(source.doubleReleases).toBe(0);
  });

  it('a stop string ends the answer and the route run (the verifier session is closed)', async () => {
    const r = await drive(
      engine.run(
        request('Priya: how is it going?\nLeo:', { stops: [' '], ignoreEos: false, maxTokens: 24 }),
        new AbortController().signal,
      ),
    );
    expect(r.finish.reason).toBe('stop');
    expect(r.text).not.toContain(' ');
    expect(r.finish.completionTokens).toBeLessThan(24);
    expect(engine.status().verifier.breaker).toBe('closed');
  });
});
