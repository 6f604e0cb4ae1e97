/**
 * Helpers for the site runtime serve tests: a generation-like directory assembled from the committed
 * fixtures (`model` -> artifacts/models/draft, `adapters/<name>`, `policy/policy.yaml`), a counting
 * GenerationSource, a real verifier child process (`edgectl verifier up --foreground`), a recording
 * HTTP proxy in front of it (what the verifier received, optional per-request delay, an echo mode for
 * /v1/completions), and a runtime server started with test defaults.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import type { GenerationLease, GenerationSource, SiteRuntimeStatus } from '../../../src/runtime/contract.js';
import { loadGeneration, type LoadedGeneration } from '../../../src/runtime/engine/generation.js';
import { startRuntimeServer } from '../../../src/runtime/serve/server.js';
import type { RuntimeServer, RuntimeServerOptions } from '../../../src/runtime/contract.js';
import type { FeedbackContext, RequestOutcome } from '../../../src/feedback/accumulator.js';
import { NODE, REPO_ROOT, RUN_JS } from '../../helpers/cli.js';

export const DRAFT_DIR = join(REPO_ROOT, 'artifacts/models/draft');
export const VERIFIER_DIR = join(REPO_ROOT, 'artifacts/models/verifier');
export const ADAPTERS_DIR = join(REPO_ROOT, 'artifacts/adapters');

const DIGEST = (c: string) => `sha256:${c.repeat(64)}`;

export const TEST_CONTEXT: FeedbackContext = {
  fleetSeq: 7,
  refs: {
    model: { ref: 'model/draft@1.0.0', manifestDigest: DIGEST('a') },
    adapters: [{ ref: 'adapter/support@1.0.0', manifestDigest: DIGEST('b') }],
    policy: { ref: 'policy/test@1.0.0', manifestDigest: DIGEST('c') },
  },
};

/** A policy for the tests: speculative by default, every detector, block rules, edge fallback. */
export const TEST_POLICY = `version: 1
routing:
  default: speculative
  rules:
    - name: legal-to-cloud
      when: { keywords: [lawsuit] }
      route: cloud
redaction:
  enabled: true
  detectors: [email, phone, card, iban, ip, national_id]
  patterns:
    - name: employee_id
      regex: 'EMP-[0-9]{6}'
block:
  - name: credentials
    patterns: ['\\b(password|api[_ -]?key)\\s*[:=]']
    message: I can't help with sharing credentials.
verifier:
  fallback: edge-unverified
  timeoutMs: 1500
circuitBreaker:
  failureThreshold: 3
  openSeconds: 30
`;

export function tempDir(prefix = 'edgectl-serve-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** generations/<id>-like directory: model and adapters linked from artifacts/, a policy written. */
export function makeGenerationDir(opts: { policy?: string | null; adapters?: string[] } = {}): string {
  const dir = tempDir('edgectl-gen-');
  symlinkSync(DRAFT_DIR, join(dir, 'model'));
  mkdirSync(join(dir, 'adapters'));
  for (const a of opts.adapters ?? ['support']) symlinkSync(join(ADAPTERS_DIR, a), join(dir, 'adapters', a));
  if (opts.policy !== null) {
    mkdirSync(join(dir, 'policy'));
    writeFileSync(join(dir, 'policy', 'policy.yaml'), opts.policy ?? TEST_POLICY);
  }
  return dir;
}

/** A GenerationSource that counts leases, so tests can check acquire/release balance. */
export class CountingSource implements GenerationSource<LoadedGeneration> {
  acquired = 0;
  released = 0;
  doubleReleases = 0;
  constructor(public current: LoadedGeneration | undefined) {}

  acquire(): GenerationLease<LoadedGeneration> | undefined {
    const generation = this.current;
    if (!generation) return undefined;
    this.acquired++;
    let done = false;
    return {
      generation,
      release: () => {
        if (done) this.doubleReleases++;
        else this.released++;
        done = true;
      },
    };
  }

  get outstanding(): number {
    return this.acquired - this.released;
  }
}

export async function loadTestGeneration(
  dir: string,
  previous?: LoadedGeneration,
): Promise<LoadedGeneration> {
  return loadGeneration(dir, {
    id: 'a'.repeat(20),
    context: TEST_CONTEXT,
    ...(previous ? { previous } : {}),
  });
}

export interface TestRuntime {
  server: RuntimeServer;
  source: CountingSource;
  outcomes: RequestOutcome[];
  logs: string[];
  metrics: Registry;
}

export async function startTestRuntime(
  gen: LoadedGeneration,
  verifierUrl: string | undefined,
  overrides: Partial<RuntimeServerOptions<LoadedGeneration>> = {},
): Promise<TestRuntime> {
  const source = new CountingSource(gen);
  const outcomes: RequestOutcome[] = [];
  const logs: string[] = [];
  const metrics = new Registry();
  const server = await startRuntimeServer({
    host: '127.0.0.1',
    port: 0,
    generations: source,
    verifierUrl: () => verifierUrl,
    maxConcurrent: 4,
    maxQueue: 16,
    onOutcome: (o) => outcomes.push(o),
    daemonStatus: (): Omit<SiteRuntimeStatus, 'runtime' | 'url'> => ({
      site: 'store-test',
      pid: process.pid,
      startedAt: new Date(0).toISOString(),
      dataDir: '/nonexistent',
      registry: 'file:///nonexistent',
      generation: { id: gen.id, context: gen.context },
      sync: { state: 'ok', appliedSeq: 7, lastSyncAt: null, lastError: null },
      feedback: { spooled: 0, uploaded: 0, lastUploadAt: null, lastError: null },
    }),
    ready: () => true,
    metrics,
    log: (level, msg) => logs.push(`${level} ${msg}`),
    ...overrides,
  });
  return { server, source, outcomes, logs, metrics };
}

export interface VerifierProcess {
  url: string;
  child: ChildProcess;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** `edgectl verifier up --foreground` as a child process (needs dist/, built by the vitest setup). */
export async function startVerifierProcess(): Promise<VerifierProcess> {
  const runDir = tempDir('edgectl-verifier-run-');
  const child = spawn(
    NODE,
    [RUN_JS, 'verifier', 'up', '--model', VERIFIER_DIR, '--foreground', '--port', '0', '--run-dir', runDir],
    { cwd: REPO_ROOT, env: { ...process.env, CI: '1' }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stderr = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`verifier did not start:\n${stderr}`)), 30_000);
    child.stderr?.on('data', (b: Buffer) => {
      stderr += b.toString('utf8');
      const m = /verifier ready at (http:\/\/\S+)/.exec(stderr);
      if (m) {
        clearTimeout(timer);
        resolve(m[1] as string);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`verifier exited with ${code}:\n${stderr}`));
    });
  });
  return {
    url,
    child,
    kill: async (signal = 'SIGKILL') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
}

export interface Recorded {
  method: string;
  path: string;
  body: string;
}

export interface RecordingProxy {
  url: string;
  requests: Recorded[];
  /** Milliseconds added before forwarding each request. */
  delayMs: number;
  /** Answer /v1/completions by streaming the prompt's own ids back (one token per chunk). */
  echoCompletions: boolean;
  /** Cuts every connection and refuses new ones, like a verifier host that went away. */
  cut(): void;
  close(): Promise<void>;
}

/**
 * Everything the verifier received through `proxy`, as one text: each raw body, then its token-id
 * arrays decoded and its text prompt (`prompt_ids`, `draft_ids`, `prompt`), joined by NUL lines so
 * no match spans two of them. Tests assert on it what did and did not leave the site.
 */
export function verifierSawText(
  proxy: RecordingProxy,
  tokenizer: Pick<LoadedGeneration['tokenizer'], 'decode'>,
): string {
  const seen: string[] = [];
  for (const r of proxy.requests) {
    seen.push(r.body);
    if (!r.body) continue;
    const body = JSON.parse(r.body) as Record<string, unknown>;
    for (const key of ['prompt_ids', 'draft_ids', 'prompt']) {
      const ids = body[key];
      if (Array.isArray(ids) && ids.every((x) => typeof x === 'number'))
        seen.push(tokenizer.decode(ids as number[]));
      else if (typeof ids === 'string') seen.push(ids);
    }
  }
  return seen.join('\n\u0000\n');
}

/**
 * An HTTP proxy in front of the verifier that records every request (method, path, body). When
 * the verifier is gone, the client's connection is cut, as it would be by a dead verifier.
 */
export async function startRecordingProxy(target: string): Promise<RecordingProxy> {
  const base = new URL(target);
  const proxy: RecordingProxy = {
    url: '',
    requests: [],
    delayMs: 0,
    echoCompletions: false,
    cut: () => {
      down = true;
      server.closeAllConnections();
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  let down = false;
  const server: Server = createServer((req, res) => {
    if (down) {
      req.socket.destroy();
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      proxy.requests.push({ method: req.method ?? '', path: req.url ?? '', body: body.toString('utf8') });
      const forward = () => {
        if (down) return void res.destroy();
        if (proxy.echoCompletions && req.url === '/v1/completions') return echo(body, res);
        const up = httpRequest(
          {
            host: base.hostname,
            port: base.port,
            method: req.method,
            path: req.url,
            headers: { ...req.headers, host: base.host },
          },
          (upRes: IncomingMessage) => {
            res.writeHead(upRes.statusCode ?? 502, upRes.headers);
            upRes.pipe(res);
            upRes.on('error', () => res.destroy());
          },
        );
        up.on('error', () => res.destroy());
        up.end(body);
      };
      if (proxy.delayMs > 0) setTimeout(forward, proxy.delayMs);
      else forward();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const addr = server.address() as { port: number };
  proxy.url = `http://127.0.0.1:${addr.port}`;
  return proxy;
}

/** A verifier completion that repeats the prompt's ids, one per SSE chunk (placeholders split). */
function echo(body: Buffer, res: import('node:http').ServerResponse): void {
  const req = JSON.parse(body.toString('utf8')) as { prompt: number[]; max_tokens: number };
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  const ids = req.prompt.slice(0, req.max_tokens);
  for (const id of ids) {
    res.write(
      `data: ${JSON.stringify({ id: 'x', object: 'text_completion', created: 0, model: 'echo', choices: [{ index: 0, text: '', finish_reason: null, logprobs: null, token_ids: [id] }] })}\n\n`,
    );
  }
  res.write(
    `data: ${JSON.stringify({ id: 'x', object: 'text_completion', created: 0, model: 'echo', choices: [{ index: 0, text: '', finish_reason: 'length', logprobs: null, token_ids: [] }] })}\n\n`,
  );
  res.end('data: [DONE]\n\n');
}
