// SSE parsing of the cloud clients (issue #18 item 5), on the cases the old hand-written reader of
// HttpVerifier.complete failed: CRLF framing ("closed the completion stream before [DONE]"), a UTF-8
// character split across two reads (U+FFFD), and an edgectl-style stream without `token_ids` (it
// crashed the route executor). The HttpVerifier cases run against a plain node:http server that
// speaks the verifier's identity and completions routes in those ways.
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpVerifier } from '../../../src/verifier/client/http-verifier.js';
import { VerifierCloudClient } from '../../../src/verifier/client/cloud-client.js';
import { sseEvents, sseJson } from '../../../src/verifier/client/sse.js';
import { drainRoute, executeRoute } from '../../../src/runtime/engine/route-executor.js';
import { clientAccess } from '../../../src/runtime/engine/verifier-access.js';

const enc = (s: string) => Buffer.from(s, 'utf8');
async function* chunks(...parts: (Buffer | string)[]): AsyncGenerator<Uint8Array> {
  for (const p of parts) yield typeof p === 'string' ? enc(p) : p;
}
async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}
const SOURCE = { name: 'test server', protocolCode: 'E_TEST_PROTOCOL' };

describe('sseEvents / sseJson', () => {
  it('reads CRLF- and CR-framed events, and multi-line data', async () => {
    const crlf = await collect(sseEvents(chunks('data: a\r\n\r', '\ndata: b\r\n', '\r\n')));
    expect(crlf.map((e) => e.data)).toEqual(['a', 'b']);
    const cr = await collect(sseEvents(chunks('data: x\r\rdata: y\r\r')));
    expect(cr.map((e) => e.data)).toEqual(['x', 'y']);
    const multi = await collect(sseEvents(chunks(': comment\n', 'event: m\ndata: 1\ndata: 2\n\n')));
    expect(multi).toEqual([expect.objectContaining({ event: 'm', data: '1\n2' })]);
  });

  it('keeps a UTF-8 character split across two reads whole', async () => {
    const bytes = enc('data: {"t":"caf☕"}\n\n');
    const cut = bytes.indexOf(enc('☕')) + 1;
    const events = await collect(
      sseJson(chunks(bytes.subarray(0, cut), bytes.subarray(cut), 'data: [DONE]\n\n'), SOURCE),
    );
    expect(events).toEqual([{ t: 'caf☕' }]);
    // What the old per-chunk decoding produced:
    expect(bytes.subarray(0, cut).toString('utf8') + bytes.subarray(cut).toString('utf8')).toContain(
      '\uFFFD',
    );
  });

  it('ends at [DONE] and refuses a stream that ends before it, malformed JSON and error events', async () => {
    expect(
      await collect(
        sseJson(chunks('data: {"a":1}\r\n\r\ndata: [DONE]\r\n\r\ndata: {"b":2}\r\n\r\n'), SOURCE),
      ),
    ).toEqual([{ a: 1 }]);
    await expect(collect(sseJson(chunks('data: {"a":1}\n\n'), SOURCE))).rejects.toMatchObject({
      code: 'E_TEST_PROTOCOL',
      message: 'test server closed the completion stream before [DONE]',
    });
    await expect(collect(sseJson(chunks('data: {"a":\n\n'), SOURCE))).rejects.toMatchObject({
      code: 'E_TEST_PROTOCOL',
      message: expect.stringContaining('not JSON'),
    });
    await expect(collect(sseJson(chunks('data: {"error":{"message":"boom"}}\n\n'), SOURCE))).rejects.toThrow(
      'test server stream failed: boom',
    );
  });
});

describe('HttpVerifier.complete on the old failure cases (plain node:http server)', () => {
  let server: Server;
  let url = '';
  let withTokenIds = true;
  let eol = '\r\n';
  beforeAll(async () => {
    server = createServer((req, res) => {
      if (req.url === '/v1/identity') {
        res.writeHead(200, { 'content-type': 'application/json' });
        return res.end(
          JSON.stringify({
            model: { name: 'x', files: {}, digest: 'sha256:x' },
            tokenizer: { sha256: 'a'.repeat(64), vocab_size: 10 },
            max_context: 64,
            eos_token_ids: [0],
          }),
        );
      }
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        const chunk = (text: string, ids: number[], finish: string | null) =>
          `data: ${JSON.stringify({ id: 'c', object: 'text_completion', created: 0, model: 'x', choices: [{ index: 0, text, finish_reason: finish, logprobs: null, ...(withTokenIds ? { token_ids: ids } : {}) }] })}${eol}${eol}`;
        const first = enc(chunk('caf☕', [1, 2], null));
        const cut = first.indexOf(enc('☕')) + 2;
        res.write(first.subarray(0, cut));
        setTimeout(() => {
          res.write(first.subarray(cut));
          res.write(chunk(' ok', [3], 'stop'));
          res.end(`data: [DONE]${eol}${eol}`);
        }, 20);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });

  it('reads CRLF framing and a split character, token_ids included', async () => {
    withTokenIds = true;
    const v = await HttpVerifier.connect(url, { timeoutMs: 2000 });
    try {
      const got = await collect(v.complete({ prompt: 'hi', max_tokens: 4 }));
      expect(got.map((c) => c.choices[0]?.text).join('')).toBe('caf☕ ok');
      expect(got.flatMap((c) => c.choices[0]?.token_ids ?? [])).toEqual([1, 2, 3]);
    } finally {
      v.close();
    }
  });

  it('LF framing with a split character: the character arrives whole (the old reader made it U+FFFD)', async () => {
    withTokenIds = true;
    eol = '\n';
    const v = await HttpVerifier.connect(url, { timeoutMs: 2000 });
    try {
      const got = await collect(v.complete({ prompt: 'hi', max_tokens: 4 }));
      expect(got.map((c) => c.choices[0]?.text).join('')).toBe('caf☕ ok');
    } finally {
      v.close();
      eol = '\r\n';
    }
  });

  it('the cloud route on a verifier without token_ids: its text is the answer (the old executor crashed)', async () => {
    withTokenIds = false;
    eol = '\n';
    const v = await HttpVerifier.connect(url, { timeoutMs: 2000 });
    try {
      const run = executeRoute(
        {
          route: 'cloud',
          prompt: { ids: [1, 2, 3] },
          maxTokens: 4,
          sampling: { temperature: 0 },
          seed: undefined,
          ignoreEos: false,
          lora: undefined,
          cache: undefined,
          drafting: { k: 'auto' },
          signal: new AbortController().signal,
        },
        {
          model: undefined,
          verifier: clientAccess(v),
          retokenize: (t) => [...t].map((c) => c.charCodeAt(0)),
        },
      );
      let text = '';
      expect(await drainRoute(run, { text: (t) => (text += t) })).toBe('eos');
      expect(text).toBe('caf☕ ok');
    } finally {
      v.close();
      eol = '\r\n';
    }
  });

  it('a server without token_ids gives text-only cloud chunks (no crash)', async () => {
    withTokenIds = false;
    const v = await HttpVerifier.connect(url, { timeoutMs: 2000 });
    try {
      const client = new VerifierCloudClient(v);
      const got = await collect(
        client.complete(
          { text: 'hi', maxTokens: 4, sampling: { temperature: 0 }, seed: undefined, ignoreEos: false },
          new AbortController().signal,
        ),
      );
      expect(got.map((c) => c.text).join('')).toBe('caf☕ ok');
      expect(got.every((c) => c.tokens === undefined)).toBe(true);
      expect(got.at(-1)?.finish).toBe('stop');
    } finally {
      v.close();
    }
  });
});
