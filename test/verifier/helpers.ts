// Shared helpers for the verifier tests: fixture model paths, an in-process verifier, JSON POST,
// SSE reading, polling.
import { resolve } from 'node:path';
import { memoryIo } from '../../src/foundation/output.js';
import {
  startVerifierServer,
  type RunningVerifier,
  type VerifierServerOptions,
} from '../../src/verifier/server/server.js';

export const ROOT = resolve(import.meta.dirname, '../..');
export const VERIFIER_DIR = resolve(ROOT, 'artifacts/models/verifier');
export const DRAFT_DIR = resolve(ROOT, 'artifacts/models/draft');

/** The fixture verifier in this process on a random loopback port, one thread; `opts` override. */
export function startTestVerifier(opts: Partial<VerifierServerOptions> = {}): Promise<RunningVerifier> {
  return startVerifierServer({
    modelDir: VERIFIER_DIR,
    host: '127.0.0.1',
    port: 0,
    threads: 1,
    io: memoryIo(),
    ...opts,
  });
}

export async function postJson<T = unknown>(
  url: string,
  body: unknown,
): Promise<{ status: number; body: T; headers: Headers }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T, headers: res.headers };
}

/** The `data:` payloads of a Server-Sent Events response, in order. */
export async function readSse(res: Response): Promise<string[]> {
  const text = await res.text();
  return text
    .split('\n\n')
    .map((block) => block.trim())
    .filter((block) => block.startsWith('data: '))
    .map((block) => block.slice('data: '.length));
}

/** Polls `cond` until true; fails after `timeoutMs`. */
export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export interface TrickleResult {
  /** What the server wrote before closing (status line, headers, body). */
  response: string;
  /** Milliseconds from connecting to the server closing the connection. */
  closedAfterMs: number;
  /** Bytes of the body the client had sent when the server closed. */
  sentBodyBytes: number;
}

/**
 * A slow client on a raw socket: sends the request headers (or, with `slowHeaders`, only their
 * first line) and then one byte every `everyMs`, never finishing (the declared body is 1 MB). Resolves
 * when the server closes the connection; rejects if it has not within `giveUpMs`.
 */
export async function trickleRequest(
  port: number,
  path: string,
  opts: { everyMs: number; giveUpMs: number; slowHeaders?: boolean; headers?: Record<string, string> },
): Promise<TrickleResult> {
  const net = await import('node:net');
  const t0 = Date.now();
  const sock = net.connect(port, '127.0.0.1');
  let response = '';
  let sent = 0;
  sock.on('data', (d: Buffer) => (response += d.toString('utf8')));
  sock.on('error', () => undefined); // a reset after the server's answer is fine
  const extra = Object.entries(opts.headers ?? {}).map(([k, v]) => `${k}: ${v}\r\n`);
  const head =
    `POST ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n` +
    `${extra.join('')}content-length: 1000000\r\n\r\n`;
  if (opts.slowHeaders) sock.write(head.slice(0, head.indexOf('\r\n') + 2));
  else sock.write(`${head}{"prompt": "`);
  const timer = setInterval(() => {
    if (sock.destroyed || !sock.writable) return;
    sock.write(opts.slowHeaders ? 'x' : 'a');
    sent++;
  }, opts.everyMs);
  try {
    await new Promise<void>((resolve, reject) => {
      const giveUp = setTimeout(
        () => reject(new Error(`server kept a slow client for ${opts.giveUpMs} ms`)),
        opts.giveUpMs,
      );
      sock.once('close', () => {
        clearTimeout(giveUp);
        resolve();
      });
    });
  } finally {
    clearInterval(timer);
    sock.destroy();
  }
  return { response, closedAfterMs: Date.now() - t0, sentBodyBytes: sent };
}
