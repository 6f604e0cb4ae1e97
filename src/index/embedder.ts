/**
 * The sentence encoder an index is built with: an ONNX graph run with the project's engine
 * (onnxruntime-node, CPU) and its Hugging Face `tokenizer.json` (src/inference/tokenizer.ts).
 * The directory holds `model.onnx` (inputs `input_ids`, `attention_mask`, optionally
 * `token_type_ids`; output `sentence_embedding` [batch, dim], already pooled, or `last_hidden_state`
 * [batch, seq, dim], mean-pooled here over the mask, like sentence-transformers exports),
 * `tokenizer.json` and `config.json` (`hidden_size` = dim, `max_position_embeddings` = context).
 * Vectors are L2-normalized, so dot product is cosine similarity. Text longer than the context is
 * truncated to its first `maxTokens` tokens (a warning says so; the query result says `truncated`).
 * Identity is the digest of the directory's file list (embedderFilesDigest), the same value a
 * published model artifact's manifest gives, so lint can tie an index to its embedder.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { InferenceSession, Tensor } from 'onnxruntime-node';
import { z } from 'zod';
import { digestOf, sha256Hex } from '../foundation/digest.js';
import { UserError } from '../foundation/errors.js';
import { TextTokenizer } from '../inference/tokenizer.js';
import type { EmbedderInfo } from './manifest.js';

export const EMBEDDER_GRAPH = 'model.onnx';

export interface EmbedderFile {
  path: string;
  size: number;
  /** `sha256:<hex>` of the file's bytes. */
  sha256: string;
}

/**
 * The embedder's identity from its files (path, size, sha256), sorted by path: a directory and the
 * manifest of the model artifact published from it (`manifest.files`) give the same digest.
 */
export function embedderFilesDigest(files: readonly EmbedderFile[]): string {
  const rows = [...files]
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
    .map((f) => [f.path, f.size, f.sha256]);
  return digestOf(JSON.stringify(rows));
}

/** The files publish would take from a directory: hidden entries and the top-level artifact.yaml left out. */
export function embedderDirFiles(dir: string, rel = ''): EmbedderFile[] {
  const out: EmbedderFile[] = [];
  for (const name of readdirSync(join(dir, rel)).sort()) {
    const child = rel === '' ? name : `${rel}/${name}`;
    if (name.startsWith('.') || (rel === '' && name === 'artifact.yaml')) continue;
    const abs = join(dir, child);
    if (statSync(abs).isDirectory()) out.push(...embedderDirFiles(dir, child));
    else {
      const bytes = readFileSync(abs);
      out.push({ path: child, size: bytes.length, sha256: `sha256:${sha256Hex(bytes)}` });
    }
  }
  return out;
}

const configSchema = z
  .object({
    hidden_size: z.number().int().min(1),
    max_position_embeddings: z.number().int().min(2),
    name: z.string().optional(),
  })
  .passthrough();

export interface EmbedResult {
  vectors: Float32Array[];
  /** Indexes of the texts cut to the context length. */
  truncated: number[];
}

export class Embedder {
  private constructor(
    readonly info: EmbedderInfo,
    private readonly session: InferenceSession,
    private readonly tokenizer: TextTokenizer,
    private readonly output: 'sentence_embedding' | 'last_hidden_state',
  ) {}

  static async open(dir: string): Promise<Embedder> {
    const cfgPath = join(dir, 'config.json');
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(cfgPath, 'utf8'));
    } catch (err) {
      throw new UserError(`${cfgPath}: cannot read the embedder's config (${(err as Error).message})`, {
        code: 'E_EMBEDDER',
        suggestion: 'An embedder directory holds model.onnx, tokenizer.json and config.json.',
        details: { file: cfgPath },
      });
    }
    const cfg = configSchema.safeParse(raw);
    if (!cfg.success) {
      const issue = cfg.error.issues[0];
      const field = issue?.path.join('.') ?? '';
      throw new UserError(`${cfgPath}: ${field}: ${issue?.message ?? 'invalid'}`, {
        code: 'E_EMBEDDER',
        details: { file: cfgPath, field },
      });
    }
    const tokenizer = TextTokenizer.load(dir);
    const graph = join(dir, EMBEDDER_GRAPH);
    let session: InferenceSession;
    try {
      session = await InferenceSession.create(graph, {
        executionProviders: ['cpu'],
        intraOpNumThreads: 1,
        interOpNumThreads: 1,
        graphOptimizationLevel: 'all',
      });
    } catch (err) {
      throw new UserError(`${graph}: cannot load the encoder (${(err as Error).message})`, {
        code: 'E_EMBEDDER',
        details: { file: graph },
      });
    }
    const output = session.outputNames.includes('sentence_embedding')
      ? 'sentence_embedding'
      : session.outputNames.includes('last_hidden_state')
        ? 'last_hidden_state'
        : undefined;
    if (
      !output ||
      !session.inputNames.includes('input_ids') ||
      !session.inputNames.includes('attention_mask')
    )
      throw new UserError(`${graph}: not a sentence encoder (outputs ${session.outputNames.join(', ')})`, {
        code: 'E_EMBEDDER',
        suggestion:
          'The graph needs inputs input_ids and attention_mask and an output sentence_embedding or last_hidden_state.',
        details: { file: graph },
      });
    const info: EmbedderInfo = {
      name: cfg.data.name ?? basename(dir),
      digest: embedderFilesDigest(embedderDirFiles(dir)),
      dim: cfg.data.hidden_size,
      maxTokens: cfg.data.max_position_embeddings,
    };
    return new Embedder(info, session, tokenizer, output);
  }

  /** Normalized vectors of `texts`, run in batches of `batch`. */
  async embed(texts: readonly string[], batch = 32): Promise<EmbedResult> {
    const vectors: Float32Array[] = [];
    const truncated: number[] = [];
    for (let s = 0; s < texts.length; s += batch) {
      const ids = texts.slice(s, s + batch).map((t, i) => {
        const all = this.tokenizer.encode(t, { addSpecialTokens: true });
        if (all.length > this.info.maxTokens) truncated.push(s + i);
        return all.length === 0 ? [0] : all.slice(0, this.info.maxTokens);
      });
      vectors.push(...(await this.run(ids)));
    }
    return { vectors, truncated };
  }

  private async run(rows: number[][]): Promise<Float32Array[]> {
    const b = rows.length;
    const len = Math.max(...rows.map((r) => r.length));
    const ids = new BigInt64Array(b * len);
    const mask = new BigInt64Array(b * len);
    rows.forEach((r, i) =>
      r.forEach((id, j) => {
        ids[i * len + j] = BigInt(id);
        mask[i * len + j] = 1n;
      }),
    );
    const feeds: Record<string, Tensor> = {
      input_ids: new Tensor('int64', ids, [b, len]),
      attention_mask: new Tensor('int64', mask, [b, len]),
    };
    if (this.session.inputNames.includes('token_type_ids'))
      feeds.token_type_ids = new Tensor('int64', new BigInt64Array(b * len), [b, len]);
    const out = (await this.session.run(feeds))[this.output];
    if (!out) throw new Error(`encoder returned no ${this.output}`);
    const data = out.data as Float32Array;
    const dim = this.info.dim;
    if (data.length !== (this.output === 'sentence_embedding' ? b * dim : b * len * dim))
      throw new UserError(
        `the encoder's ${this.output} does not have dimension ${dim} (config.json hidden_size)`,
        {
          code: 'E_EMBEDDER',
          details: { field: 'hidden_size' },
        },
      );
    const res: Float32Array[] = [];
    for (let i = 0; i < b; i++) {
      const v = new Float32Array(dim);
      if (this.output === 'sentence_embedding') v.set(data.subarray(i * dim, (i + 1) * dim));
      else meanPool(data, rows[i]?.length ?? 0, i * len * dim, dim, v);
      res.push(normalize(v));
    }
    return res;
  }

  async close(): Promise<void> {
    await this.session.release();
  }
}

function meanPool(data: Float32Array, n: number, base: number, dim: number, v: Float32Array): void {
  for (let t = 0; t < n; t++)
    for (let d = 0; d < dim; d++) v[d] = (v[d] ?? 0) + (data[base + t * dim + d] ?? 0);
  for (let d = 0; d < dim; d++) v[d] = (v[d] ?? 0) / Math.max(1, n);
}

export function normalize(v: Float32Array): Float32Array {
  let s = 0;
  for (const x of v) s += x * x;
  const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
  for (let i = 0; i < v.length; i++) v[i] = (v[i] ?? 0) * inv;
  return v;
}
