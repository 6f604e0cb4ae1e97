/**
 * Runs prompt preparation (prompt-prep.ts: block rules, redaction, bound, tokenization) where it
 * cannot stall the site (issue #14 item 6): prompts up to INLINE_MAX_CHARS inline (a few
 * milliseconds, and no thread hop on the latency path of ordinary requests), longer ones in one
 * worker thread (prompt-worker.ts), so `/healthz`, `/readyz` and streaming answers keep flowing
 * while a multi-megabyte prompt is scanned. Jobs queue in the worker in arrival order; admission
 * (admission.ts) already bounds how many requests can be waiting here.
 *
 * The worker is started on first use and restarted after a crash (pending jobs fail with a 500).
 * A tokenizer or policy is sent to it once, under a key of this pool (WeakMap by object, so a
 * generation that is gone leaves no entry here). Tests import src/*.ts directly (vitest), where the
 * worker's compiled file is only in dist/ (built by the test setup); the pool looks there too and,
 * with no worker file at all, prepares inline rather than failing.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { UserError } from '../../foundation/errors.js';
import { RedactionMap } from '../../policy/redact.js';
import { HttpError } from '../../http/http.js';
import type { LoadedGeneration } from './generation.js';
import { parseJsonBody } from '../serve/json-body.js';
import { preparePrompt, type PromptPrep } from './prompt-prep.js';
import type { JsonJob, PrepJob, PrepReply, WorkerError } from './prompt-worker.js';

/** Prompts up to this many UTF-16 units (at most ~24 KiB) are prepared inline (~ms of work). */
export const INLINE_MAX_CHARS = 8192;

/** A prepared prompt on the main thread: ids as a plain array, the redaction map rebuilt. */
export type PreparedPrompt =
  | Exclude<PromptPrep, { kind: 'ready' }>
  | { kind: 'ready'; modelText: string; ids: number[]; map: RedactionMap | undefined; redactions: number };

interface Pending {
  resolve: (reply: PrepReply) => void;
  reject: (err: Error) => void;
}

/** The error a worker reported, as the kind of error it was on the other side. */
function rebuild(e: WorkerError): Error {
  if (e.kind === 'http') return new HttpError(e.status ?? 400, e.message, e.code);
  if (e.kind === 'usage') {
    return new UserError(e.message, { code: e.code, ...(e.suggestion ? { suggestion: e.suggestion } : {}) });
  }
  return new Error(`prompt worker: ${e.message}`);
}

function workerFile(): URL | undefined {
  const here = new URL('./prompt-worker.js', import.meta.url);
  const path = fileURLToPath(here);
  if (existsSync(path)) return here;
  const i = path.lastIndexOf('/src/');
  const built = i < 0 ? undefined : `${path.slice(0, i)}/dist${path.slice(i)}`;
  return built !== undefined && existsSync(built) ? pathToFileURL(built) : undefined;
}

export class PromptPool {
  private worker: Worker | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private nextKey = 1;
  private readonly keys = new WeakMap<object, number>();
  /** Keys the current worker has been sent (reset with each new worker). */
  private sent = new Set<number>();
  private closed = false;

  constructor(
    private readonly inlineMaxChars = INLINE_MAX_CHARS,
    private readonly file: URL | undefined = workerFile(),
  ) {}

  /**
   * Prepares `text` for generation `g`: inline when short, else in the worker. `encode: false`
   * (chats, which the template encodes) stops after the block rules, redaction and bound.
   */
  async prepare(g: LoadedGeneration, text: string, encode = true): Promise<PreparedPrompt> {
    const tools = { blockRules: g.blockRules, redactor: g.redactor, tokenizer: g.tokenizer, encode };
    const prep =
      text.length <= this.inlineMaxChars || this.file === undefined
        ? preparePrompt(text, { ...tools, maxPositions: g.maxPositions })
        : await this.inWorker(g, text, encode);
    if (prep.kind !== 'ready') return prep;
    return {
      kind: 'ready',
      modelText: prep.modelText,
      ids: Array.from(prep.ids),
      map: g.redactor.enabled ? new RedactionMap(prep.entries) : undefined,
      redactions: prep.redactions,
    };
  }

  close(): void {
    this.closed = true;
    this.stop(new Error('the site runtime is shutting down'));
  }

  private key(o: object): number {
    let k = this.keys.get(o);
    if (k === undefined) {
      k = this.nextKey++;
      this.keys.set(o, k);
    }
    return k;
  }

  private async inWorker(g: LoadedGeneration, text: string, encode: boolean): Promise<PromptPrep> {
    if (this.closed) throw new HttpError(503, 'the site runtime is shutting down', 'shutting_down');
    const worker = this.start();
    const tokenizerKey = this.key(g.tokenizer);
    const policyKey = this.key(g.policy);
    const job: PrepJob = {
      kind: 'prep',
      id: this.nextId++,
      tokenizerKey,
      policyKey,
      text,
      maxPositions: g.maxPositions,
      encode,
    };
    if (!this.sent.has(tokenizerKey)) job.tokenizer = g.tokenizer.definition;
    if (!this.sent.has(policyKey)) job.policy = { block: g.policy.block, redaction: g.policy.redaction };
    this.sent.add(tokenizerKey).add(policyKey);
    const reply = await this.send(worker, job);
    if ('prep' in reply) return reply.prep;
    throw 'error' in reply ? rebuild(reply.error) : new Error('prompt worker: unexpected reply');
  }

  /** Parses a JSON request body in the worker (json-body.ts); its bytes are moved, not copied. */
  async parseJson(body: Buffer): Promise<unknown> {
    if (this.closed || this.file === undefined) return parseJsonBody(body.toString('utf8'));
    // A big body owns its ArrayBuffer and moves to the worker as is; one in a shared pool is copied.
    const owned = body.byteOffset === 0 && body.byteLength === body.buffer.byteLength;
    const bytes = owned ? new Uint8Array(body.buffer, 0, body.byteLength) : new Uint8Array(body);
    const job: JsonJob = { kind: 'json', id: this.nextId++, body: bytes };
    const reply = await this.send(this.start(), job, [bytes.buffer as ArrayBuffer]);
    if ('json' in reply) return reply.json;
    throw 'error' in reply ? rebuild(reply.error) : new Error('prompt worker: unexpected reply');
  }

  private send(worker: Worker, job: PrepJob | JsonJob, transfer: ArrayBuffer[] = []): Promise<PrepReply> {
    return new Promise<PrepReply>((resolve, reject) => {
      this.pending.set(job.id, { resolve, reject });
      worker.postMessage(job, transfer);
    });
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    const w = new Worker(this.file as URL);
    w.unref(); // never keeps the process alive on its own
    w.on('message', (reply: PrepReply) => {
      const p = this.pending.get(reply.id);
      this.pending.delete(reply.id);
      p?.resolve(reply);
    });
    // A replaced worker's late events must not touch its successor.
    w.on('error', (err) => this.worker === w && this.stop(err));
    w.on(
      'exit',
      (code) => this.worker === w && this.stop(new Error(`the prompt worker exited (code ${code})`)),
    );
    this.worker = w;
    this.sent = new Set();
    return w;
  }

  /** Fails every pending job and drops the worker; the next long prompt starts a new one. */
  private stop(err: Error): void {
    const w = this.worker;
    this.worker = undefined;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    if (w) void w.terminate();
  }
}
