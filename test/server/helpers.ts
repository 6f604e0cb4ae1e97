// Shared helpers for the verifier tests: fixture model paths, an in-process verifier, JSON POST,
// SSE reading, polling.
import { resolve } from 'node:path';
import { memoryIo } from '../../src/cli/output.js';
import {
  startVerifierServer,
  type RunningVerifier,
  type VerifierServerOptions,
} from '../../src/server/verifier/server.js';

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
