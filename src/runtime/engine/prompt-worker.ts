/**
 * The worker thread that prepares long prompts off the site's event loop (prompt-pool.ts is its
 * main-thread side; prompt-prep.ts the work itself). It keeps the tokenizers and policies it was
 * sent, compiled, under the keys the main thread gave them, so each is sent and compiled once per
 * worker, not per request; a job names them by key and carries them only the first time.
 * It also parses big JSON request bodies (json-body.ts), so their decoding never runs on the event
 * loop. Errors travel back as plain data: an HttpError keeps its status, a UserError (the client's
 * fault, e.g. control-token text) stays a 400 on the other side, anything else becomes a 500.
 */
import { parentPort } from 'node:worker_threads';
import { isEdgectlError, ExitCode } from '../../foundation/errors.js';
import { TextTokenizer } from '../../inference/tokenizer.js';
import { BlockRules } from '../../policy/block.js';
import { Redactor } from '../../policy/redact.js';
import type { Policy } from '../../policy/schema.js';
import { HttpError } from '../../http/http.js';
import { parseJsonBody } from '../serve/json-body.js';
import { preparePrompt, type PromptPrep } from './prompt-prep.js';

export type PrepPolicy = Pick<Policy, 'block' | 'redaction'>;

export interface PrepJob {
  kind: 'prep';
  id: number;
  tokenizerKey: number;
  /** Sent with the first job that names `tokenizerKey`. */
  tokenizer?: { json: object; config: object };
  policyKey: number;
  /** Sent with the first job that names `policyKey`. */
  policy?: PrepPolicy;
  text: string;
  maxPositions: number;
  encode: boolean;
}

/** A JSON request body to parse (the bytes are transferred, not copied). */
export interface JsonJob {
  kind: 'json';
  id: number;
  body: Uint8Array;
}

export interface WorkerError {
  message: string;
  code: string;
  /** 'http': an HttpError with `status`; 'usage': a UserError; 'other': a bug. */
  kind: 'http' | 'usage' | 'other';
  status?: number;
  suggestion?: string;
}

export type PrepReply =
  { id: number; prep: PromptPrep } | { id: number; json: unknown } | { id: number; error: WorkerError };

/** Compiled objects by key; generations come and go, so only the latest few are kept. */
class Cache<T> {
  private readonly items = new Map<number, T>();
  constructor(private readonly limit: number) {}
  get(key: number, make: (() => T) | undefined): T {
    let v = this.items.get(key);
    if (v === undefined) {
      if (!make) throw new Error(`prompt worker: unknown key ${key} (sent before it was defined)`);
      v = make();
      this.items.set(key, v);
      for (const old of this.items.keys()) if (this.items.size > this.limit) this.items.delete(old);
    }
    return v;
  }
}

const tokenizers = new Cache<TextTokenizer>(4);
const policies = new Cache<{ blockRules: BlockRules; redactor: Redactor }>(16);

function prepare(job: PrepJob): PromptPrep {
  const def = job.tokenizer;
  const policy = job.policy;
  const tokenizer = tokenizers.get(
    job.tokenizerKey,
    def ? () => TextTokenizer.fromJson(def.json, def.config) : undefined,
  );
  const compiled = policies.get(
    job.policyKey,
    policy ? () => ({ blockRules: new BlockRules(policy), redactor: new Redactor(policy) }) : undefined,
  );
  return preparePrompt(job.text, {
    ...compiled,
    tokenizer,
    maxPositions: job.maxPositions,
    encode: job.encode,
  });
}

function describe(err: unknown): WorkerError {
  const message = err instanceof Error ? err.message : String(err);
  if (err instanceof HttpError) return { message, code: err.code, kind: 'http', status: err.status };
  if (!isEdgectlError(err)) return { message, code: 'E_UNEXPECTED', kind: 'other' };
  return {
    message,
    code: err.code,
    kind: err.exitCode === ExitCode.Usage ? 'usage' : 'other',
    ...(err.suggestion ? { suggestion: err.suggestion } : {}),
  };
}

function run(job: PrepJob | JsonJob): PrepReply {
  try {
    if (job.kind === 'json') {
      return {
        id: job.id,
        json: parseJsonBody(
          Buffer.from(job.body.buffer, job.body.byteOffset, job.body.byteLength).toString('utf8'),
        ),
      };
    }
    return { id: job.id, prep: prepare(job) };
  } catch (err) {
    return { id: job.id, error: describe(err) };
  }
}

parentPort?.on('message', (job: PrepJob | JsonJob) => {
  const reply = run(job);
  const transfer =
    'prep' in reply && reply.prep.kind === 'ready' ? [reply.prep.ids.buffer as ArrayBuffer] : [];
  parentPort?.postMessage(reply, transfer);
});
