/**
 * The model a verifier serves: the ONNX session (src/inference's LmSession), its tokenizer, the
 * limits requests are checked against (vocabulary, context length) and its identity — SHA-256 of
 * every file in the model directory and of the tokenizer, optionally signed with the verifier's
 * Ed25519 key so an edge site can check that the cloud runs the model pair it was drafted for.
 */
import { createHash } from 'node:crypto';
import { createReadStream, readdirSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { UserError } from '../../foundation/errors.js';
import { LmSession } from '../../inference/model-session.js';
import { TextTokenizer, TOKENIZER_FILE } from '../../inference/tokenizer.js';
import { signEnvelope } from '../../registry/envelope.js';
import type { KeyPair } from '../../registry/keys.js';
import { minTokens } from '../../inference/token-bounds.js';
import { modelDirCreated } from '../../http/openai-models.js';
import { badRequest, contextLengthExceeded } from '../../http/http.js';
import { VERIFIER_FEATURES, type IdentityPayload, type IdentityResponse } from '../protocol.js';

export const IDENTITY_PAYLOAD_TYPE = 'application/vnd.edgectl.verifier-identity.v1+json';

/** Used when config.json has no max_position_embeddings. */
const DEFAULT_MAX_CONTEXT = 2048;

export interface VerifierModelOptions {
  /** ONNX Runtime intra-op threads for each forward pass. */
  threads: number;
  /** Name reported by the API (default: the directory's base name). */
  name?: string;
  /** Graph file inside the directory (`--model-file`); default: model-files.ts's order. */
  modelFile?: string;
  /** Signs /v1/identity when given. */
  identityKey?: KeyPair;
}

export class VerifierModel {
  readonly eos: ReadonlySet<number>;
  readonly identity: IdentityResponse;
  /** OpenAI `created` of the model (stable: src/http/openai-models.ts). */
  readonly created: number;
  private closed = false;

  private constructor(
    readonly dir: string,
    readonly name: string,
    readonly lm: LmSession,
    readonly tokenizer: TextTokenizer,
    readonly maxContext: number,
    payload: IdentityPayload,
    identityKey: KeyPair | undefined,
  ) {
    this.eos = new Set(lm.config.eosTokenIds);
    this.created = modelDirCreated(dir);
    // Features sit beside the signed payload: they describe this server's protocol, not the model.
    this.identity = identityKey
      ? {
          ...payload,
          features: [...VERIFIER_FEATURES],
          signed: signEnvelope(IDENTITY_PAYLOAD_TYPE, payload, [identityKey]),
        }
      : { ...payload, features: [...VERIFIER_FEATURES] };
  }

  /** Loads and checks a model directory; every problem is a UserError naming the file. */
  static async load(dir: string, opts: VerifierModelOptions): Promise<VerifierModel> {
    const abs = resolve(dir);
    let isDir = false;
    try {
      isDir = statSync(abs).isDirectory();
    } catch {
      // reported below
    }
    if (!isDir) {
      throw new UserError(`model directory ${dir} does not exist`, {
        code: 'E_MODEL',
        suggestion: 'Pass --model <dir> holding model.onnx, config.json and tokenizer.json.',
      });
    }
    const tokenizer = TextTokenizer.load(abs);
    const lm = await LmSession.load(abs, { intraOpThreads: opts.threads, modelFile: opts.modelFile });
    if (tokenizer.vocabSize > lm.vocabSize) {
      await lm.release();
      throw new UserError(
        `${join(abs, TOKENIZER_FILE)}: the tokenizer has ${tokenizer.vocabSize} ids but the model's vocab_size is ${lm.vocabSize}`,
        { code: 'E_MODEL', suggestion: 'Use the tokenizer.json exported with this model.' },
      );
    }
    const maxContext = lm.config.maxPositions ?? DEFAULT_MAX_CONTEXT;
    const name = opts.name ?? basename(abs);
    let payload: IdentityPayload;
    try {
      payload = {
        model: { name, ...(await digestDir(abs)) },
        tokenizer: { sha256: await sha256File(join(abs, TOKENIZER_FILE)), vocab_size: lm.vocabSize },
        max_context: maxContext,
        eos_token_ids: [...lm.config.eosTokenIds],
      };
    } catch (err) {
      await lm.release();
      throw err;
    }
    return new VerifierModel(abs, name, lm, tokenizer, maxContext, payload, opts.identityKey);
  }

  get vocabSize(): number {
    return this.lm.vocabSize;
  }

  /** 400 for any id outside the vocabulary, naming the field and position. */
  checkIds(ids: readonly number[], field: string): void {
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i] as number;
      if (id >= this.vocabSize) {
        throw badRequest(
          `${field}[${i}]: token id ${id} is outside the vocabulary (0..${this.vocabSize - 1}); draft and verifier must share one tokenizer`,
          'token_out_of_vocab',
          `${field}[${i}]`,
        );
      }
    }
  }

  /**
   * 400 `context_length_exceeded` naming `param` (the site's code and shape for the same fault,
   * src/http/api-errors.ts) when a context of `tokens` would not fit the model's positions.
   */
  checkContext(tokens: number, what: string, param: string): void {
    if (tokens > this.maxContext) {
      throw contextLengthExceeded(
        `${what}: ${tokens} tokens exceed the model's context of ${this.maxContext}; shorten the prompt or generate fewer tokens`,
        param,
      );
    }
  }

  /**
   * Encodes a text prompt (control-token text stays text: tokenizer.ts). A prompt that certainly
   * cannot fit the context (bytes-per-token bound, token-bounds.ts) is refused before tokenizing,
   * so a multi-megabyte text never holds the event loop for seconds.
   */
  encode(prompt: string): number[] {
    const maxTokenBytes = this.tokenizer.maxTokenBytes;
    if (maxTokenBytes !== undefined)
      this.checkContext(minTokens(prompt, maxTokenBytes), 'prompt (at least)', 'prompt');
    return this.tokenizer.encode(prompt);
  }

  /** True from load until close (`/readyz`). */
  get loaded(): boolean {
    return !this.closed;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.lm.release();
  }
}

/** Hex SHA-256 of a file, streamed (model files can be larger than a Buffer may be). */
async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * 1024 * 1024 }))
    hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** SHA-256 of every file under `dir`, plus one digest over the sorted list. */
async function digestDir(dir: string): Promise<{ files: Record<string, string>; digest: string }> {
  const names = readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((p) => statSync(join(dir, p)).isFile())
    .map((p) => p.split('\\').join('/'))
    .sort();
  const files: Record<string, string> = {};
  for (const p of names) files[p] = await sha256File(join(dir, p));
  const listing = names.map((p) => `${files[p]}  ${p}\n`).join('');
  return { files, digest: `sha256:${createHash('sha256').update(listing).digest('hex')}` };
}
