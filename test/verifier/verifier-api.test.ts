import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import nacl from 'tweetnacl';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { memoryIo } from '../../src/foundation/output.js';
import { pae } from '../../src/registry/envelope.js';
import { generateKeyPair } from '../../src/registry/keys.js';
import type { CompletionResponse, VerifyResponse } from '../../src/verifier/protocol.js';
import { startVerifierServer, type RunningVerifier } from '../../src/verifier/server/server.js';
import type { VerifierStats } from '../../src/verifier/server/metrics.js';
import { VERIFIER_DIR, postJson, readSse, waitFor } from './helpers.js';

const PROMPT = 'The quick brown fox';

describe('verifier API over real HTTP', () => {
  let v: RunningVerifier;
  const key = generateKeyPair();
  /** Verifier-only greedy continuation of PROMPT, from /v1/completions. */
  let ref: number[];

  const stats = async (): Promise<VerifierStats> =>
    (await fetch(`${v.url}/v1/stats`)).json() as Promise<VerifierStats>;

  beforeAll(async () => {
    v = await startVerifierServer({
      modelDir: VERIFIER_DIR,
      host: '127.0.0.1',
      port: 0,
      threads: 1,
      sessionTtlMs: 60_000,
      identityKey: key,
      io: memoryIo(),
    });
    const r = await postJson<CompletionResponse>(`${v.url}/v1/completions`, {
      prompt: PROMPT,
      max_tokens: 12,
      temperature: 0,
      ignore_eos: true,
    });
    expect(r.status).toBe(200);
    ref = r.body.choices[0]?.token_ids ?? [];
    expect(ref).toHaveLength(12);
  });
  afterAll(async () => {
    await v?.close();
  });

  it('sessions: verify accepts, corrects, and rolls the cache back to the accepted prefix', async () => {
    const promptIds = v.model.encode(PROMPT);
    const created = await postJson<{ session_id: string; prompt_tokens: number }>(`${v.url}/v1/sessions`, {
      prompt: PROMPT,
    });
    expect(created.status).toBe(201);
    expect(created.body.prompt_tokens).toBe(promptIds.length);
    const id = created.body.session_id;
    const verify = (draft: number[]) =>
      postJson<VerifyResponse>(`${v.url}/v1/sessions/${id}/verify`, { draft_ids: draft });
    const wrong = (t: number | undefined) => ((t as number) + 1) % v.model.vocabSize;
    const before = await stats();

    // All four right: all accepted, plus the verifier's bonus token (scored against the prefill's logits).
    const r1 = await verify(ref.slice(0, 4));
    expect(r1.body).toMatchObject({ accepted: 4, drafted: 4, next_token: ref[4], positions: 4 });
    // One right, one wrong: the correction is the verifier's token, and the wrong one leaves the cache.
    const r2 = await verify([ref[5] as number, wrong(ref[6])]);
    expect(r2.body).toMatchObject({ accepted: 1, next_token: ref[6], positions: 3 });
    // First wrong: nothing accepted, and the answer still continues the reference (rollback worked).
    const r3 = await verify([wrong(ref[7])]);
    expect(r3.body).toMatchObject({ accepted: 0, next_token: ref[7], positions: 2 });
    // k = 0 is a plain decode step.
    const r4 = await verify([]);
    expect(r4.body).toMatchObject({ accepted: 0, drafted: 0, next_token: ref[8], positions: 1 });
    expect(r4.body.context_tokens).toBe(promptIds.length + 9);

    const after = await stats();
    expect(after.forwardCalls - before.forwardCalls).toBe(4);
    expect(after.positionsProcessed - before.positionsProcessed).toBe(4 + 3 + 2 + 1);
    expect(after.verifyRounds - before.verifyRounds).toBe(4);
    expect(after.acceptedTokens - before.acceptedTokens).toBe(5);

    const del = await fetch(`${v.url}/v1/sessions/${id}`, { method: 'DELETE' });
    expect(del.status).toBe(204);
    const gone = await verify([1]);
    expect(gone.status).toBe(404);
    expect(gone.body).toMatchObject({ error: { code: 'session_not_found', type: 'not_found_error' } });
    expect((await stats()).sessionsReleased.deleted).toBeGreaterThanOrEqual(1);
  });

  it('stateless verify re-reads the prefix and agrees with the session result', async () => {
    const promptIds = v.model.encode(PROMPT);
    const prefix = [...promptIds, ...ref.slice(0, 6)];
    const r = await postJson<VerifyResponse>(`${v.url}/v1/verify`, {
      prefix_ids: prefix,
      draft_ids: ref.slice(6, 9),
    });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ accepted: 3, next_token: ref[9], positions: prefix.length + 3 });
  });

  it('completions: JSON and SSE give the same greedy text; SSE ends with [DONE] and usage', async () => {
    const body = { prompt: PROMPT, max_tokens: 8, temperature: 0, ignore_eos: true };
    const plain = await postJson<CompletionResponse>(`${v.url}/v1/completions`, body);
    expect(plain.body.choices[0]).toMatchObject({ finish_reason: 'length', token_ids: ref.slice(0, 8) });
    expect(plain.body.usage?.completion_tokens).toBe(8);
    const res = await fetch(`${v.url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...body, stream: true, stream_options: { include_usage: true } }),
    });
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const events = await readSse(res);
    expect(events.at(-1)).toBe('[DONE]');
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e) as CompletionResponse);
    expect(chunks.map((c) => c.choices[0]?.text).join('')).toBe(plain.body.choices[0]?.text);
    expect(chunks.flatMap((c) => c.choices[0]?.token_ids ?? [])).toEqual(ref.slice(0, 8));
    expect(chunks.at(-1)?.choices[0]?.finish_reason).toBe('length');
    expect(chunks.at(-1)?.usage?.completion_tokens).toBe(8);
  });

  it('identity: digests of the model files and tokenizer, signed with the verifier key', async () => {
    const id = (await (await fetch(`${v.url}/v1/identity`)).json()) as {
      model: { files: Record<string, string>; digest: string };
      tokenizer: { sha256: string };
      signed: { payloadType: string; payload: string; signatures: { keyid: string; sig: string }[] };
    };
    const sha = (f: string) =>
      createHash('sha256')
        .update(readFileSync(join(VERIFIER_DIR, f)))
        .digest('hex');
    expect(id.tokenizer.sha256).toBe(sha('tokenizer.json'));
    expect(id.model.files['model.onnx']).toBe(sha('model.onnx'));
    expect(id.model.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    const sig = id.signed.signatures[0];
    expect(sig?.keyid).toBe(key.keyid);
    const payload = Buffer.from(id.signed.payload, 'base64');
    expect(JSON.parse(payload.toString()).tokenizer.sha256).toBe(id.tokenizer.sha256);
    const ok = nacl.sign.detached.verify(
      pae(id.signed.payloadType, payload),
      Buffer.from(sig?.sig ?? '', 'base64'),
      key.publicKey,
    );
    expect(ok).toBe(true);
  });

  it('metrics: Prometheus text with the verifier counters', async () => {
    const res = await fetch(`${v.url}/metrics`);
    const text = await res.text();
    for (const name of [
      'edgectl_verifier_forward_calls_total',
      'edgectl_verifier_positions_processed_total',
      'edgectl_verifier_cpu_seconds_total',
      'edgectl_verifier_sessions_live',
      'edgectl_verifier_queue_depth',
      'edgectl_verifier_request_duration_seconds_bucket',
    ]) {
      expect(text).toContain(name);
    }
    expect((await fetch(`${v.url}/healthz`)).status).toBe(200);
    const s = await stats();
    expect(s.cpuSeconds).toBeGreaterThan(0);
  });

  it('bad input: 404 unknown session, 400 out-of-vocabulary, context too long, malformed JSON, bad fields', async () => {
    const unknown = await postJson(`${v.url}/v1/sessions/sess_nope/verify`, { draft_ids: [1] });
    expect(unknown.status).toBe(404);

    const vocab = v.model.vocabSize;
    const oov = await postJson(`${v.url}/v1/sessions`, { prompt_ids: [1, vocab] });
    expect(oov.status).toBe(400);
    expect(oov.body).toMatchObject({ error: { code: 'token_out_of_vocab', type: 'invalid_request_error' } });
    expect(JSON.stringify(oov.body)).toContain('prompt_ids[1]');

    const tooLong = await postJson(`${v.url}/v1/sessions`, {
      prompt_ids: new Array(v.model.maxContext + 1).fill(1),
    });
    expect(tooLong.status).toBe(400);
    expect(tooLong.body).toMatchObject({ error: { code: 'context_length_exceeded' } });

    const malformed = await fetch(`${v.url}/v1/sessions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"prompt": "unterminated',
    });
    expect(malformed.status).toBe(400);
    expect(await malformed.json()).toMatchObject({ error: { code: 'invalid_json' } });

    const both = await postJson(`${v.url}/v1/sessions`, { prompt: 'a', prompt_ids: [1] });
    expect(both.status).toBe(400);
    expect(both.body).toMatchObject({ error: { code: 'invalid_body', param: 'prompt_ids' } });

    const badTemp = await postJson(`${v.url}/v1/completions`, { prompt: 'a', temperature: -1 });
    expect(badTemp.status).toBe(400);
    expect(JSON.stringify(badTemp.body)).toContain('temperature');

    const route = await fetch(`${v.url}/v1/nothing`);
    expect(route.status).toBe(404);
  });

  it('a port already in use is a clear operational error, and the model is released', async () => {
    const err = (await startVerifierServer({
      modelDir: VERIFIER_DIR,
      host: '127.0.0.1',
      port: v.port,
      threads: 1,
      io: memoryIo(),
    }).catch((e: unknown) => e)) as { code: string; message: string; exitCode: number };
    expect(err).toMatchObject({ code: 'E_LISTEN', exitCode: 1 });
    expect(err.message).toContain('EADDRINUSE');
  });

  it('a session is released after its idle TTL', async () => {
    const short = await startVerifierServer({
      modelDir: VERIFIER_DIR,
      host: '127.0.0.1',
      port: 0,
      threads: 1,
      sessionTtlMs: 150,
      io: memoryIo(),
    });
    try {
      const created = await postJson<{ session_id: string }>(`${short.url}/v1/sessions`, { prompt: PROMPT });
      expect(short.context.sessions.size).toBe(1);
      await waitFor(() => short.context.sessions.size === 0, 5000);
      expect(short.context.sessions.released.expired).toBe(1);
      const late = await postJson(`${short.url}/v1/sessions/${created.body.session_id}/verify`, {
        draft_ids: [],
      });
      expect(late.status).toBe(404);
    } finally {
      await short.close();
    }
  });
});

describe('verifier overload and disconnects', () => {
  let v: RunningVerifier;
  beforeAll(async () => {
    v = await startVerifierServer({
      modelDir: VERIFIER_DIR,
      host: '127.0.0.1',
      port: 0,
      threads: 1,
      maxConcurrency: 1,
      queueLimit: 1,
      io: memoryIo(),
    });
  });
  afterAll(async () => {
    await v?.close();
  });

  it('refuses work past the queue with 429 and Retry-After, and serves the rest', async () => {
    const results = await Promise.all(
      Array.from({ length: 8 }, () =>
        fetch(`${v.url}/v1/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ prompt: PROMPT, max_tokens: 4, temperature: 0 }),
        }),
      ),
    );
    const codes = results.map((r) => r.status);
    expect(codes.filter((c) => c === 429).length).toBeGreaterThan(0);
    expect(codes.filter((c) => c === 200).length).toBeGreaterThan(0);
    expect(codes.every((c) => c === 200 || c === 429)).toBe(true);
    const refused = results.find((r) => r.status === 429);
    expect(Number(refused?.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(await refused?.json()).toMatchObject({ error: { code: 'queue_full', type: 'overloaded_error' } });
    await Promise.all(results.filter((r) => r !== refused).map((r) => r.arrayBuffer()));
    expect(v.context.metrics.snapshot().rejections).toBe(codes.filter((c) => c === 429).length);
  });

  it('a client that disconnects from an SSE stream stops its generation and frees it', async () => {
    const ac = new AbortController();
    const res = await fetch(`${v.url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        prompt: PROMPT,
        max_tokens: 100_000,
        temperature: 0,
        stream: true,
        ignore_eos: true,
      }),
      signal: ac.signal,
    });
    const reader = res.body!.getReader();
    await reader.read(); // the first token arrived: generation is running
    expect(v.context.metrics.snapshot().generationsLive).toBe(1);
    ac.abort();
    await waitFor(() => v.context.metrics.snapshot().generationsLive === 0, 5000);
    const s = v.context.metrics.snapshot();
    expect(s.generationsAborted).toBe(1);
    // It stopped well before the context limit it was allowed to run to.
    expect(s.completionTokens).toBeLessThan(v.model.maxContext - 10);
  });
});
