/**
 * An independent, minimal OpenAI-compatible server for the cloud route's tests (issue #18 item 5),
 * written with plain node:http and no edgectl code, so the cloud client is tested against what the
 * OpenAI wire format says rather than against edgectl's own verifier. It serves streamed
 * `POST /v1/completions` and `POST /v1/chat/completions` with standard fields only (no `token_ids`,
 * no `edgectl`), frames every event with CRLF (legal SSE, what the old hand-written parser could not
 * read), writes one multi-byte UTF-8 character in two TCP writes (its bytes split between them),
 * and checks the bearer key. `mode` injects the faults: a 500, a connection closed mid-stream, an
 * event with malformed JSON, or a stream that stalls.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

export type MiniMode = 'ok' | 'error500' | 'close' | 'malformed' | 'stall';

export interface MiniRequest {
  path: string;
  authorization: string | undefined;
  body: Record<string, unknown>;
}

export interface MiniOpenAI {
  /** Base URL as OpenAI clients take it (ends with /v1). */
  url: string;
  requests: MiniRequest[];
  mode: MiniMode;
  close(): Promise<void>;
}

/** The answer, in pieces as streamed; "☕" (3 bytes) is the character split across two writes. */
export const MINI_PIECES = ['Bonjour', ', café ', '☕ prêt', ' — 日本語 ok.'] as const;
export const MINI_ANSWER = MINI_PIECES.join('');

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function startMiniOpenAI(apiKey: string): Promise<MiniOpenAI> {
  const sockets = new Set<import('node:net').Socket>();
  const mini: MiniOpenAI = {
    url: '',
    requests: [],
    mode: 'ok',
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void handle(mini, apiKey, req, res, Buffer.concat(chunks).toString('utf8')).catch(() => res.destroy());
    });
  });
  server.on('connection', (s) => {
    s.setNoDelay(true);
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  mini.url = `http://127.0.0.1:${(server.address() as { port: number }).port}/v1`;
  return mini;
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

async function handle(
  mini: MiniOpenAI,
  apiKey: string,
  req: IncomingMessage,
  res: ServerResponse,
  raw: string,
): Promise<void> {
  const path = req.url ?? '';
  const chat = path === '/v1/chat/completions';
  if (req.method !== 'POST' || (!chat && path !== '/v1/completions')) {
    return json(res, 404, {
      error: { message: `no route ${req.method} ${path}`, type: 'invalid_request_error' },
    });
  }
  const body = JSON.parse(raw) as Record<string, unknown>;
  mini.requests.push({ path, authorization: req.headers.authorization, body });
  if (req.headers.authorization !== `Bearer ${apiKey}`) {
    return json(res, 401, {
      error: { message: 'Incorrect API key provided', type: 'invalid_request_error' },
    });
  }
  if (mini.mode === 'error500')
    return json(res, 500, { error: { message: 'upstream exploded', type: 'server_error' } });
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  const base = chat
    ? { id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1, model: String(body.model) }
    : { id: 'cmpl-1', object: 'text_completion', created: 1, model: String(body.model) };
  const choice = (text: string, finish: string | null) =>
    chat
      ? { index: 0, delta: { content: text }, logprobs: null, finish_reason: finish }
      : { index: 0, text, logprobs: null, finish_reason: finish };
  const event = (payload: unknown) => Buffer.from(`data: ${JSON.stringify(payload)}\r\n\r\n`, 'utf8');
  if (chat)
    res.write(
      event({
        ...base,
        choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }],
      }),
    );
  for (const [i, piece] of MINI_PIECES.entries()) {
    const bytes = event({ ...base, choices: [choice(piece, null)] });
    const cup = bytes.indexOf(Buffer.from('☕'));
    if (cup >= 0) {
      // Two writes with a pause between: the client reads the character's first byte alone.
      res.write(bytes.subarray(0, cup + 1));
      await sleep(30);
      res.write(bytes.subarray(cup + 1));
    } else res.write(bytes);
    await sleep(5);
    if (i === 1 && mini.mode === 'close') return void res.socket?.destroy();
    if (i === 1 && mini.mode === 'malformed') {
      res.write('data: {"id": "cmpl-1", "choices": [\r\n\r\n');
      await sleep(5);
    }
    if (i === 1 && mini.mode === 'stall') {
      await sleep(10_000);
      return void res.destroy();
    }
  }
  res.write(event({ ...base, choices: [choice('', 'stop')] }));
  const usage = { prompt_tokens: 11, completion_tokens: 9, total_tokens: 20 };
  res.write(event({ ...base, choices: [], usage }));
  res.end('data: [DONE]\r\n\r\n');
}
