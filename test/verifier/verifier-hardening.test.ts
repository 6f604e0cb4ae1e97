/**
 * Issue #14 at the verifier, over real HTTP against an in-process verifier server: the session cap
 * holds under a burst (item 8), user text never becomes a control token (item 7), a bearer token
 * guards every route but /healthz and the verify stream (item 10a), and slow clients are cut off
 * with 408 (item 10b).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { isEdgectlError } from '../../src/foundation/errors.js';
import { HttpVerifier } from '../../src/verifier/client/http-verifier.js';
import { TextTokenizer } from '../../src/inference/tokenizer.js';
import type { RunningVerifier } from '../../src/verifier/server/server.js';
import { postJson, startTestVerifier, trickleRequest, VERIFIER_DIR } from './helpers.js';

const EOT = '<|endoftext|>';
const TOKEN = 'verifier-test-token';

describe('verifier session cap under a burst', () => {
  let v: RunningVerifier;
  beforeAll(async () => {
    v = await startTestVerifier({ maxSessions: 4, queueLimit: 64 });
  });
  afterAll(async () => v.close());

  it('creates at most --max-sessions sessions from 24 concurrent creations; the rest get 429', async () => {
    const prompt = 'Customer: my order has not arrived yet, can you check where it is?';
    const answers = await Promise.all(
      Array.from({ length: 24 }, () => postJson<{ session_id?: string }>(`${v.url}/v1/sessions`, { prompt })),
    );
    const created = answers.filter((a) => a.status === 201);
    const refused = answers.filter((a) => a.status === 429);
    expect(created.length).toBe(4);
    expect(refused.length).toBe(20);
    expect(v.context.sessions.size).toBe(4);
    // Deleting frees the slots for new sessions.
    for (const a of created) {
      const res = await fetch(`${v.url}/v1/sessions/${a.body.session_id}`, { method: 'DELETE' });
      expect(res.status).toBe(204);
    }
    expect((await postJson(`${v.url}/v1/sessions`, { prompt })).status).toBe(201);
  });
});

describe('verifier: control-token text in prompts', () => {
  let v: RunningVerifier;
  let tok: TextTokenizer;
  beforeAll(async () => {
    v = await startTestVerifier();
    tok = TextTokenizer.load(VERIFIER_DIR);
  });
  afterAll(async () => v.close());

  it('a session prompt containing <|endoftext|> is prefilled as text', async () => {
    const prompt = `hi ${EOT} there`;
    const r = await postJson<{ prompt_tokens: number }>(`${v.url}/v1/sessions`, { prompt });
    expect(r.status).toBe(201);
    expect(r.body.prompt_tokens).toBe(tok.encode(prompt).length);
    expect(r.body.prompt_tokens).toBeGreaterThan(tok.encode('hi  there').length + 1);
  });

  it('a multi-megabyte text prompt is refused by the bytes-per-token bound, without tokenizing', async () => {
    const prompt = 'Customer: where is my order? '.repeat(130_000); // 3.8 MB: seconds of BPE
    const t0 = performance.now();
    const r = await postJson<{ error: { code: string; message: string } }>(`${v.url}/v1/sessions`, {
      prompt,
    });
    const ms = performance.now() - t0;
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('context_length_exceeded');
    expect(r.body.error.message).toMatch(
      /^prompt \(at least\): \d+ tokens exceed the model's context of 512/,
    );
    expect(ms).toBeLessThan(1000); // tokenizing it took ~3 s before
  });

  it('a /v1/completions prompt of just <|endoftext|> is several text tokens, not id 0', async () => {
    const r = await postJson<{ usage: { prompt_tokens: number } }>(`${v.url}/v1/completions`, {
      prompt: EOT,
      max_tokens: 1,
      temperature: 0,
    });
    expect(r.status).toBe(200);
    expect(r.body.usage.prompt_tokens).toBe(tok.encode(EOT).length);
    expect(r.body.usage.prompt_tokens).toBeGreaterThan(1);
  });
});

describe('verifier bearer token', () => {
  let v: RunningVerifier;
  beforeAll(async () => {
    v = await startTestVerifier({ bearerToken: TOKEN });
  });
  afterAll(async () => v.close());

  it('refuses a non-loopback bind without a token, before loading the model', async () => {
    let caught: unknown;
    try {
      await startTestVerifier({ host: '0.0.0.0', modelDir: '/nonexistent' });
    } catch (err) {
      caught = err;
    }
    expect(isEdgectlError(caught) && caught.code).toBe('E_VERIFIER_TOKEN');
  });

  it('answers /healthz openly and 401 to everything else without the token', async () => {
    expect((await fetch(`${v.url}/healthz`)).status).toBe(200);
    for (const path of ['/v1/identity', '/metrics', '/v1/stats']) {
      const res = await fetch(`${v.url}${path}`);
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Bearer');
    }
    const wrong = await fetch(`${v.url}/v1/sessions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer nope' },
      body: JSON.stringify({ prompt: 'hi' }),
    });
    expect(wrong.status).toBe(401);
    expect(((await wrong.json()) as { error: { code: string } }).error.code).toBe('invalid_api_key');
    expect(v.context.sessions.size).toBe(0);
  });

  it('refuses a verify stream upgrade without the token', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const ws = new WebSocket(`${v.url.replace('http', 'ws')}/v1/stream`);
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.on('open', () => reject(new Error('upgrade accepted without a token')));
      ws.on('error', () => undefined);
    });
    expect(status).toBe(401);
  });

  it('a client with the token works over POST and the verify stream; without it, a clear error', async () => {
    const client = await HttpVerifier.connect(v.url, { token: TOKEN });
    try {
      const session = await client.start([5, 6, 7]);
      const r = await session.verify({ draft: [8, 9] });
      expect(r.accepted).toBeGreaterThanOrEqual(0);
      expect(client.streamSockets).toBe(1); // the round went over the authenticated stream
      await session.close();
    } finally {
      client.close();
    }
    let caught: unknown;
    try {
      await HttpVerifier.connect(v.url);
    } catch (err) {
      caught = err;
    }
    expect(isEdgectlError(caught) && caught.code).toBe('E_VERIFIER_AUTH');
  });
});

describe('verifier slow clients', () => {
  let v: RunningVerifier;
  beforeAll(async () => {
    v = await startTestVerifier({ requestTimeoutMs: 800, headersTimeoutMs: 400 });
  });
  afterAll(async () => v.close());

  it('a body trickled a byte at a time gets 408 and a closed connection at the request timeout', async () => {
    const r = await trickleRequest(v.port, '/v1/completions', { everyMs: 50, giveUpMs: 10_000 });
    expect(r.response).toMatch(/^HTTP\/1\.1 408 /);
    expect(r.response).toContain('"code":"request_timeout"');
    expect(r.closedAfterMs).toBeGreaterThanOrEqual(700);
    expect(r.closedAfterMs).toBeLessThan(5_000);
  });

  it('headers trickled a byte at a time get 408 at the headers timeout', async () => {
    const r = await trickleRequest(v.port, '/v1/completions', {
      everyMs: 50,
      giveUpMs: 10_000,
      slowHeaders: true,
    });
    expect(r.response).toMatch(/^HTTP\/1\.1 408 /);
    expect(r.closedAfterMs).toBeLessThan(5_000);
  });
});
