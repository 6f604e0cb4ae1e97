import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { collect, generate, generateSpeculative } from '../../src/inference/generate.js';
import { HttpVerifier, type HttpVerifierSession } from '../../src/verifier/client/http-verifier.js';
import { LmSession } from '../../src/inference/model-session.js';
import { TextTokenizer } from '../../src/inference/tokenizer.js';
import { readPromptsFile } from '../../src/bench/prompts.js';
import type { RunningVerifier } from '../../src/verifier/server/server.js';
import { DRAFT_DIR, ROOT, startTestVerifier, VERIFIER_DIR } from './helpers.js';

/** Opens a raw verify stream and returns a function that sends a frame and awaits the answer. */
async function rawStream(
  url: string,
): Promise<{ ask: (frame: string) => Promise<Record<string, unknown>>; ws: WebSocket }> {
  const ws = new WebSocket(url, { perMessageDeflate: false });
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  const ask = (frame: string) =>
    new Promise<Record<string, unknown>>((resolve) => {
      ws.once('message', (data) => resolve(JSON.parse(String(data)) as Record<string, unknown>));
      ws.send(frame);
    });
  return { ask, ws };
}

/** An HTTP forwarder to `target` that refuses every WebSocket upgrade, like a proxy without support. */
function upgradeRefusingProxy(target: string): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    const fwd = request(
      new URL(req.url ?? '/', target),
      { method: req.method, headers: req.headers },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    req.pipe(fwd);
  });
  server.on('upgrade', (_req, socket) =>
    socket.end('HTTP/1.1 426 Upgrade Required\r\ncontent-length: 0\r\n\r\n'),
  );
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server }),
    ),
  );
}

describe('verify rounds over the verify stream (kept-alive WebSockets)', () => {
  let server: RunningVerifier;
  let draft: LmSession;
  let local: LmSession;
  let tokenizer: TextTokenizer;
  let prompts: number[][];

  beforeAll(async () => {
    server = await startTestVerifier();
    draft = await LmSession.load(DRAFT_DIR);
    local = await LmSession.load(VERIFIER_DIR);
    tokenizer = TextTokenizer.load(DRAFT_DIR);
    prompts = [
      ...readPromptsFile(`${ROOT}/artifacts/prompts/general.jsonl`).slice(0, 3),
      ...readPromptsFile(`${ROOT}/artifacts/prompts/support.jsonl`).slice(0, 2),
    ].map((p) => tokenizer.encode(p));
  });
  afterAll(async () => {
    await server?.close();
    await draft?.release();
    await local?.release();
  });

  it('is announced, used, and gives the tokens of POST rounds and of verifier-only decoding', async () => {
    expect(server.model.identity.features).toContain('verify_stream');
    const streamed = await HttpVerifier.connect(server.url);
    const posted = await HttpVerifier.connect(server.url, { verifyStream: false });
    try {
      const before = server.context.metrics.snapshot().forwardCalls;
      for (const ids of prompts) {
        const reference = await collect(generate(local, ids, { maxTokens: 40 }));
        for (const remote of [streamed, posted]) {
          const spec = await collect(generateSpeculative(draft, remote, ids, { maxTokens: 40, k: 'auto' }));
          expect(spec.tokens).toEqual(reference.tokens);
          expect(spec.done.stats.verifyRounds).toBeGreaterThan(0);
        }
      }
      expect(server.context.metrics.snapshot().forwardCalls).toBeGreaterThan(before);
      // One kept-alive socket served every session, one after the other.
      expect(streamed.streamSockets).toBe(1);
      expect(posted.streamSockets).toBe(0);
      const a = (await streamed.start(prompts[0] as number[])) as HttpVerifierSession;
      const b = (await posted.start(prompts[0] as number[])) as HttpVerifierSession;
      const ra = await a.verify({ draft: [5, 6, 7] });
      const rb = await b.verify({ draft: [5, 6, 7] });
      expect({ ...ra, verifierMs: 0 }).toEqual({ ...rb, verifierMs: 0 });
      expect(a.lastTransport).toBe('stream');
      expect(b.lastTransport).toBe('post');
      await a.close();
      await b.close();
      expect(server.context.sessions.has(a.id)).toBe(false);
    } finally {
      streamed.close();
      posted.close();
    }
  });

  it('answers bad frames with the HTTP route status and error body, and the socket goes on', async () => {
    const remote = await HttpVerifier.connect(server.url);
    try {
      const session = await remote.start(prompts[1] as number[]);
      const { ask, ws } = await rawStream(`${server.url.replace('http', 'ws')}/v1/stream`);
      const sid = JSON.stringify(session.id);
      expect(await ask('not json')).toMatchObject({ status: 400, error: { code: 'invalid_json' } });
      expect(await ask('{"draft_ids":[1,2]}')).toMatchObject({ status: 400, error: { param: 'session_id' } });
      expect(await ask(`{"session_id":${sid},"draft_ids":[1,2],"extra":1}`)).toMatchObject({
        status: 400,
        session_id: session.id,
        error: { code: 'unknown_parameter', param: 'extra' },
      });
      expect(await ask(`{"session_id":${sid},"draft_ids":[1, 99999]}`)).toMatchObject({ status: 400 });
      expect(await ask('{"session_id":"nope","draft_ids":[1]}')).toMatchObject({
        status: 404,
        session_id: 'nope',
        error: { code: 'session_not_found' },
      });
      const ok = await ask(`{"session_id":${sid},"draft_ids":[1,2,3]}`);
      expect(ok).toMatchObject({ session_id: session.id, drafted: 3, positions: 3 });
      expect(typeof ok.next_token).toBe('number');
      expect(ok.status).toBeUndefined();
      ws.close();
      await session.close();
    } finally {
      remote.close();
    }
  });

  it('refuses an upgrade on any other path (404), and a deleted session is NotFound (exit 3)', async () => {
    const status = await new Promise<number>((resolve) => {
      const ws = new WebSocket(`${server.url.replace('http', 'ws')}/v1/sessions/nope/stream`);
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.on('error', () => undefined);
    });
    expect(status).toBe(404);
    const remote = await HttpVerifier.connect(server.url);
    try {
      const session = await remote.start([1, 2, 3]);
      await session.verify({ draft: [4] });
      expect(server.context.sessions.delete(session.id)).toBe(true);
      // The open stream meets the deleted session: 404 frame, the same typed error as a POST.
      await expect(session.verify({ draft: [4] })).rejects.toMatchObject({ exitCode: 3 });
    } finally {
      remote.close();
    }
  });

  it('retries rounds the verifier refused for overload on the stream (429 + retry_after_ms)', async () => {
    const tight = await startTestVerifier({ maxConcurrency: 1, queueLimit: 0 });
    const client = await HttpVerifier.connect(tight.url, { retries: 50 });
    try {
      const sessions = [];
      for (let i = 0; i < 6; i++) sessions.push(await client.start(prompts[i % prompts.length] as number[]));
      const draftIds = Array.from({ length: 8 }, (_, i) => 10 + i);
      for (let round = 0; round < 4; round++) {
        const results = await Promise.all(sessions.map((s) => s.verify({ draft: draftIds })));
        expect(results.every((r) => r.accepted >= 0 && r.accepted <= 8)).toBe(true);
      }
      expect(tight.context.metrics.snapshot().rejections).toBeGreaterThan(0);
      expect(sessions.every((s) => (s as HttpVerifierSession).lastTransport === 'stream')).toBe(true);
      await Promise.all(sessions.map((s) => s.close()));
    } finally {
      client.close();
      await tight.close();
    }
  });

  it('falls back to POST rounds where the upgrade is refused (a proxy without WebSocket support)', async () => {
    const proxy = await upgradeRefusingProxy(server.url);
    const remote = await HttpVerifier.connect(proxy.url);
    try {
      const ids = prompts[2] as number[];
      const reference = await collect(generate(local, ids, { maxTokens: 24 }));
      const spec = await collect(generateSpeculative(draft, remote, ids, { maxTokens: 24, k: 4 }));
      expect(spec.tokens).toEqual(reference.tokens);
      const session = (await remote.start(ids)) as HttpVerifierSession;
      await session.verify({ draft: [1] });
      expect(session.lastTransport).toBe('post');
      await session.close();
    } finally {
      remote.close();
      await new Promise((r) => proxy.server.close(r));
    }
  });

  it('a verifier that shuts down mid-session fails the next round quickly with a typed error', async () => {
    const own = await startTestVerifier();
    const remote = await HttpVerifier.connect(own.url, { timeoutMs: 10_000 });
    try {
      const session = await remote.start([1, 2, 3]);
      await session.verify({ draft: [4, 5] });
      await own.close();
      const t0 = performance.now();
      await expect(session.verify({ draft: [6] })).rejects.toMatchObject({ exitCode: 1 });
      expect(performance.now() - t0).toBeLessThan(5000);
    } finally {
      remote.close();
    }
  });
});
