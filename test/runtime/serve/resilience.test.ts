// The request path when things go wrong: a verifier that hangs (timeout -> edge fallback), a verifier
// process killed -9 mid-stream (the stream continues edge-only, marked unverified, within the
// deadline), the circuit breaker open (fallback at once, no verifier call), a policy without
// unverified answers (503 + Retry-After), overload (429 + Retry-After), bearer tokens, draining on
// close, and generation loading (model session shared across generations, no-policy defaults).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../../../src/foundation/errors.js';
import { loadGeneration, type LoadedGeneration } from '../../../src/runtime/engine/generation.js';
import {
  loadTestGeneration,
  makeGenerationDir,
  startRecordingProxy,
  startTestRuntime,
  startVerifierProcess,
  TEST_CONTEXT,
  TEST_POLICY,
  type RecordingProxy,
  type TestRuntime,
  type VerifierProcess,
} from './helpers.js';

interface Sse {
  status: number;
  headers: Headers;
  chunks: Record<string, unknown>[];
  text: string;
  done: boolean;
}

async function streamCompletion(
  url: string,
  body: Record<string, unknown>,
  onFirst?: () => void,
): Promise<Sse> {
  const res = await fetch(`${url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'draft', temperature: 0, stream: true, ...body }),
  });
  const out: Sse = { status: res.status, headers: res.headers, chunks: [], text: '', done: false };
  if (res.status !== 200) {
    out.chunks.push((await res.json()) as Record<string, unknown>);
    return out;
  }
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  let first = true;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    for (let i = buffer.indexOf('\n\n'); i >= 0; i = buffer.indexOf('\n\n')) {
      const block = buffer.slice(0, i);
      buffer = buffer.slice(i + 2);
      if (!block.startsWith('data: ')) continue;
      const data = block.slice(6);
      if (data === '[DONE]') {
        out.done = true;
        continue;
      }
      const chunk = JSON.parse(data) as { choices?: { text: string }[] };
      out.chunks.push(chunk);
      const t = chunk.choices?.[0]?.text ?? '';
      out.text += t;
      if (t && first) {
        first = false;
        onFirst?.();
      }
    }
  }
  return out;
}

const last = (s: Sse) =>
  s.chunks[s.chunks.length - 1] as { edgectl?: { route: string; unverified: boolean }; error?: unknown };

describe('verifier failures and fallbacks (real verifier process)', () => {
  let verifier: VerifierProcess;
  let proxy: RecordingProxy;
  let gen: LoadedGeneration;
  let rt: TestRuntime;

  beforeAll(async () => {
    verifier = await startVerifierProcess();
    proxy = await startRecordingProxy(verifier.url);
    gen = await loadTestGeneration(makeGenerationDir());
    rt = await startTestRuntime(gen, proxy.url);
  });
  afterAll(async () => {
    await rt?.server.close(1000);
    await gen?.dispose();
    await proxy?.close();
    await verifier?.kill();
  });

  it('a verifier that hangs costs one timeout, then the answer comes edge-only, marked unverified', async () => {
    // A separate runtime (own breaker) whose verifier answers only after 5 s; the policy timeout is 1.5 s.
    const slow = await startRecordingProxy(verifier.url);
    slow.delayMs = 5000;
    const own = await startTestRuntime(gen, slow.url);
    try {
      const t0 = performance.now();
      const r = await fetch(`${own.server.url}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-edgectl-route': 'speculative' },
        body: JSON.stringify({
          model: 'draft',
          prompt: 'Customer: hello\nAgent:',
          max_tokens: 8,
          temperature: 0,
        }),
      });
      const ms = performance.now() - t0;
      const body = (await r.json()) as { edgectl: { route: string; unverified: boolean } };
      expect(r.status).toBe(200);
      expect(body.edgectl).toMatchObject({ route: 'edge', unverified: true });
      expect(r.headers.get('x-edgectl-unverified')).toBe('true');
      expect(ms).toBeGreaterThan(1400);
      expect(ms).toBeLessThan(4500);
      expect(own.outcomes[0]).toMatchObject({ route: 'edge', fallback: true });
      expect(own.server.status().verifier.lastError).toMatch(/did not answer .* within 1500 ms/);
    } finally {
      await own.server.close(0);
      await slow.close();
    }
  });

  it('a verifier that stops answering mid-stream: the next round times out and the stream ends edge-only', async () => {
    const slow = await startRecordingProxy(verifier.url);
    const own = await startTestRuntime(gen, slow.url);
    try {
      let stalledAt = 0;
      const s = await streamCompletion(
        own.server.url,
        {
          prompt: 'Customer: tell me about your store\nAgent:',
          max_tokens: 100,
          edgectl: { route: 'speculative' },
        },
        () => {
          stalledAt = performance.now();
          slow.delayMs = 10_000;
        },
      );
      const afterStallMs = performance.now() - stalledAt;
      expect(s.done).toBe(true);
      expect(last(s).edgectl).toMatchObject({ route: 'speculative', unverified: true });
      expect(afterStallMs).toBeGreaterThan(1400); // one policy timeout (1.5 s)...
      expect(afterStallMs).toBeLessThan(4500); // ...not the verifier's 10 s
      expect(own.outcomes[0]).toMatchObject({ route: 'speculative', fallback: true });
    } finally {
      await own.server.close(0);
      await slow.close();
    }
  });

  it('with fallback "error", a verifier lost mid-stream ends the stream with an error event', async () => {
    const flaky = await startRecordingProxy(verifier.url);
    flaky.delayMs = 20;
    const strict = await loadGeneration(
      makeGenerationDir({ policy: TEST_POLICY.replace('fallback: edge-unverified', 'fallback: error') }),
      { id: 'd'.repeat(20), context: TEST_CONTEXT, previous: gen },
    );
    const own = await startTestRuntime(strict, flaky.url);
    try {
      const s = await streamCompletion(
        own.server.url,
        {
          prompt: 'Customer: tell me about your store\nAgent:',
          max_tokens: 100,
          edgectl: { route: 'speculative' },
        },
        () => flaky.cut(),
      );
      expect(s.status).toBe(200);
      expect(s.text.length).toBeGreaterThan(0);
      expect(s.done).toBe(true);
      expect(last(s).error).toMatchObject({ code: 'verifier_unavailable', type: 'server_error' });
      expect(own.outcomes[0]).toMatchObject({ route: 'speculative', error: true });
      expect(own.source.outstanding).toBe(0);
    } finally {
      await own.server.close(0);
      await strict.dispose();
      await flaky.close();
    }
  });

  it('the verifier killed -9 mid-stream: the stream continues edge-only within the deadline', async () => {
    proxy.delayMs = 25; // slow rounds so the kill lands mid-generation
    let killedAt = 0;
    const s = await streamCompletion(
      rt.server.url,
      {
        prompt: 'Customer: tell me about your store\nAgent:',
        max_tokens: 120,
        edgectl: { route: 'speculative' },
      },
      () => {
        killedAt = performance.now();
        void verifier.kill('SIGKILL');
      },
    );
    const afterKillMs = performance.now() - killedAt;
    proxy.delayMs = 0;
    expect(killedAt).toBeGreaterThan(0);
    expect(s.status).toBe(200);
    expect(s.headers.get('x-edgectl-route')).toBe('speculative');
    expect(s.done).toBe(true);
    const fin = last(s);
    expect(fin.edgectl).toMatchObject({ route: 'speculative', unverified: true });
    // Within the deadline: the policy timeout (1.5 s) plus generous room for the edge tail.
    expect(afterKillMs).toBeLessThan(5000);
    const outcome = rt.outcomes[rt.outcomes.length - 1]!;
    expect(outcome).toMatchObject({ route: 'speculative', fallback: true });
    // The verifier took part before it died (a session, maybe rounds), and the draft finished alone.
    expect(proxy.requests.some((r) => r.method === 'POST' && r.path === '/v1/sessions')).toBe(true);
    expect(outcome.outputTokens).toBeGreaterThan(1);
  });

  it('after repeated failures the breaker opens: fallback at once, without calling the verifier', async () => {
    // Failures until the breaker (threshold 3) opens; each fails fast (connection refused).
    for (let i = 0; i < 3 && rt.server.status().verifier.breaker !== 'open'; i++) {
      const r = await fetch(`${rt.server.url}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-edgectl-route': 'speculative' },
        body: JSON.stringify({
          model: 'draft',
          prompt: 'Customer: hi\nAgent:',
          max_tokens: 4,
          temperature: 0,
        }),
      });
      expect(r.status).toBe(200);
      expect(((await r.json()) as { edgectl: { unverified: boolean } }).edgectl.unverified).toBe(true);
    }
    expect(rt.server.status().verifier.breaker).toBe('open');
    const before = proxy.requests.length;
    const t0 = performance.now();
    const r = await fetch(`${rt.server.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-edgectl-route': 'cloud' },
      body: JSON.stringify({
        model: 'draft',
        messages: [{ role: 'user', content: 'hi' }],
        max_tokens: 4,
        temperature: 0,
      }),
    });
    const ms = performance.now() - t0;
    const body = (await r.json()) as { edgectl: { route: string; unverified: boolean; reason: string } };
    expect(r.status).toBe(200);
    expect(body.edgectl).toMatchObject({ route: 'edge', unverified: true });
    expect(proxy.requests.length).toBe(before);
    expect(ms).toBeLessThan(1000);
    const metrics = await (await fetch(`${rt.server.url}/metrics`)).text();
    expect(metrics).toMatch(/edgectl_runtime_verifier_errors_total\{kind="breaker_open"\} [1-9]/);
  });

  it('a policy without unverified answers gets 503 with Retry-After (hot-swapped generation)', async () => {
    const strict = await loadGeneration(
      makeGenerationDir({ policy: TEST_POLICY.replace('fallback: edge-unverified', 'fallback: error') }),
      { id: 'b'.repeat(20), context: TEST_CONTEXT, previous: gen },
    );
    expect(strict.sharesModelWith(gen)).toBe(true);
    rt.source.current = strict;
    try {
      const r = await fetch(`${rt.server.url}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          model: 'draft',
          prompt: 'Customer: where is my order?\nAgent:',
          max_tokens: 4,
        }),
      });
      expect(r.status).toBe(503);
      expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      const body = (await r.json()) as { error: { code: string; type: string; message: string } };
      expect(body.error).toMatchObject({ code: 'verifier_unavailable', type: 'server_error' });
      expect(rt.outcomes[rt.outcomes.length - 1]).toMatchObject({ error: true });
      // Edge-only requests are still served under the strict policy.
      const edge = await fetch(`${rt.server.url}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-edgectl-route': 'edge' },
        body: JSON.stringify({ model: 'draft', prompt: 'Customer: hi\nAgent:', max_tokens: 4 }),
      });
      expect(edge.status).toBe(200);
    } finally {
      rt.source.current = gen;
      await strict.dispose();
    }
  });

  it('leases stayed balanced through timeouts, kills, fallbacks and 503s', () => {
    expect(rt.source.outstanding).toBe(0);
    expect(rt.source.doubleReleases).toBe(0);
  });
});

describe('admission, auth, draining and generations (edge-only)', () => {
  let gen: LoadedGeneration;
  beforeAll(async () => {
    gen = await loadTestGeneration(makeGenerationDir());
  });
  afterAll(async () => {
    await gen?.dispose();
  });

  it('past maxConcurrent + maxQueue: 429 with Retry-After and an OpenAI-style error', async () => {
    const rt = await startTestRuntime(gen, undefined, { maxConcurrent: 1, maxQueue: 1 });
    try {
      const send = () =>
        fetch(`${rt.server.url}/v1/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-edgectl-route': 'edge' },
          body: JSON.stringify({
            model: 'draft',
            prompt: 'Customer: hello\nAgent:',
            max_tokens: 300,
            ignore_eos: true,
            temperature: 0,
          }),
        }).then(async (r) => ({
          status: r.status,
          retry: r.headers.get('retry-after'),
          body: (await r.json()) as Record<string, unknown>,
        }));
      const results = await Promise.all(Array.from({ length: 6 }, send));
      const ok = results.filter((r) => r.status === 200);
      const refused = results.filter((r) => r.status === 429);
      expect(ok.length).toBe(2);
      expect(refused.length).toBe(4);
      for (const r of refused) {
        expect(Number(r.retry)).toBeGreaterThanOrEqual(1);
        expect(r.body.error).toMatchObject({ type: 'overloaded_error', code: 'rate_limit_exceeded' });
      }
      expect(rt.server.status().requests.rejected).toBe(4);
      expect(rt.source.outstanding).toBe(0);
    } finally {
      await rt.server.close(0);
    }
  });

  it('a non-loopback address needs a token; with one, every route but the probes requires it', async () => {
    await expect(startTestRuntime(gen, undefined, { host: '0.0.0.0' })).rejects.toSatisfy(
      (e: unknown) =>
        e instanceof UserError &&
        e.code === 'E_RUNTIME_TOKEN' &&
        /--token|EDGECTL_SITE_TOKEN/.test(e.suggestion ?? ''),
    );
    const rt = await startTestRuntime(gen, undefined, { bearerToken: 's3cret-token' });
    try {
      const call = (auth?: string) =>
        fetch(`${rt.server.url}/v1/models`, { headers: auth ? { authorization: auth } : {} });
      const none = await call();
      expect(none.status).toBe(401);
      expect(((await none.json()) as { error: { code: string } }).error.code).toBe('invalid_api_key');
      expect((await call('Bearer wrong')).status).toBe(401);
      expect((await call('Bearer s3cret-token-and-more')).status).toBe(401);
      expect((await call('Bearer s3cret-token')).status).toBe(200);
      const post = await fetch(`${rt.server.url}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'draft', prompt: 'hi' }),
      });
      expect(post.status).toBe(401);
      expect((await fetch(`${rt.server.url}/healthz`)).status).toBe(200);
      expect((await fetch(`${rt.server.url}/readyz`)).status).toBe(200);
      expect((await fetch(`${rt.server.url}/metrics`)).status).toBe(401);
      expect(rt.source.acquired).toBe(rt.source.released);
    } finally {
      await rt.server.close(0);
    }
  });

  it('close(drainMs) refuses new requests and lets the in-flight stream finish', async () => {
    const rt = await startTestRuntime(gen, undefined);
    let closing: Promise<void> | undefined;
    let refusedStatus = 0;
    const stream = streamCompletion(
      rt.server.url,
      { prompt: 'Customer: hello\nAgent:', max_tokens: 150, ignore_eos: true, edgectl: { route: 'edge' } },
      () => {
        closing = rt.server.close(10_000);
        void fetch(`${rt.server.url}/v1/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ model: 'draft', prompt: 'hi' }),
        }).then(
          (r) => {
            refusedStatus = r.status;
          },
          () => {
            refusedStatus = -1;
          },
        );
      },
    );
    const s = await stream;
    await closing;
    expect(s.done).toBe(true);
    expect(s.text.length).toBeGreaterThan(0);
    expect(refusedStatus).toBe(503);
    expect(rt.source.outstanding).toBe(0);
  });

  it('no generation installed: 503; a generation without a policy serves edge-only and refuses other routes', async () => {
    const rt = await startTestRuntime(gen, undefined);
    const bare = await loadGeneration(makeGenerationDir({ policy: null, adapters: [] }), {
      id: 'c'.repeat(20),
      context: { fleetSeq: 1, refs: { adapters: [] } },
      previous: gen,
    });
    try {
      rt.source.current = undefined;
      const none = await fetch(`${rt.server.url}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'draft', prompt: 'hi' }),
      });
      expect(none.status).toBe(503);
      expect((await fetch(`${rt.server.url}/readyz`)).status).toBe(503);
      rt.source.current = bare;
      // No model ref in the context: the name comes from the model's artifact.yaml.
      expect(bare.modelName).toBe('draft');
      expect(bare.defaultPolicy).toBe(true);
      expect(bare.sharesModelWith(gen)).toBe(false); // no digest to match: loaded afresh
      const r = await fetch(`${rt.server.url}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-edgectl-route': 'cloud' },
        body: JSON.stringify({ model: 'draft', prompt: 'Customer: hi\nAgent:', max_tokens: 4 }),
      });
      const body = (await r.json()) as { edgectl: { route: string } };
      expect(r.status).toBe(200);
      expect(body.edgectl.route).toBe('edge');
    } finally {
      await rt.server.close(0);
      await bare.dispose();
    }
  });

  it('hot swap: new requests use the new generation while an in-flight stream finishes on the old', async () => {
    const a = await loadTestGeneration(makeGenerationDir({ adapters: ['support'] }));
    const b = await loadTestGeneration(makeGenerationDir({ adapters: ['support-bad'] }), a);
    expect(b.sharesModelWith(a)).toBe(true);
    const rt = await startTestRuntime(a, undefined);
    const ask = (model: string) =>
      fetch(`${rt.server.url}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-edgectl-route': 'edge' },
        body: JSON.stringify({ model, prompt: 'Customer: hi\nAgent:', max_tokens: 4 }),
      }).then((r) => r.status);
    try {
      const during: number[] = [];
      let swapped: Promise<void> | undefined;
      const s = await streamCompletion(
        rt.server.url,
        {
          model: 'draft:support',
          prompt: 'Customer: hello\nAgent:',
          max_tokens: 150,
          ignore_eos: true,
          edgectl: { route: 'edge' },
        },
        () => {
          rt.source.current = b;
          swapped = Promise.all([ask('draft:support-bad'), ask('draft:support')]).then((r) => {
            during.push(...r);
          });
        },
      );
      await swapped;
      expect(s.done).toBe(true);
      expect(last(s).edgectl?.route).toBe('edge');
      expect(during).toEqual([200, 404]); // the new generation answers; the old adapter is gone
      expect(rt.source.outstanding).toBe(0);
      await a.dispose(); // the daemon disposes the old generation after its last release
      expect(await ask('draft:support-bad')).toBe(200); // the shared session is still alive
    } finally {
      await rt.server.close(0);
      await b.dispose();
      await a.dispose();
    }
  });

  it('a generation with the same model digest shares the session; disposing the old one keeps it alive', async () => {
    const first = await loadTestGeneration(makeGenerationDir());
    const second = await loadTestGeneration(
      makeGenerationDir({ adapters: ['support', 'support-bad'] }),
      first,
    );
    expect(second.sharesModelWith(first)).toBe(true);
    expect(second.adapterNames).toEqual(['support', 'support-bad']);
    await first.dispose();
    await first.dispose(); // idempotent
    const rt = await startTestRuntime(second, undefined);
    try {
      const r = await fetch(`${rt.server.url}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          model: 'draft:support-bad',
          prompt: 'Customer: hi\nAgent:',
          max_tokens: 4,
          edgectl: { route: 'edge' },
        }),
      });
      expect(r.status).toBe(200);
    } finally {
      await rt.server.close(0);
      await second.dispose();
    }
  });
});
