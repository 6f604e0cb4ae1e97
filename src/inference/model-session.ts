/**
 * `LmSession`: one decoder-only ONNX language model loaded with onnxruntime-node, run step by step
 * with an explicit KV cache (docs/running-sites.md).
 *
 * It owns the Optimum I/O contract: which inputs the graph has is discovered from the session's
 * `inputNames` (position_ids, use_cache_branch for merged decoders, LoRA matrices for drafts), the
 * cache shape comes from config.json (grouped-query attention included) and is checked against the
 * graph, ids go in as int64. `forward` runs one sequence (the fast path: `present` outputs become
 * the next cache without copying); `forwardBatch` runs several sequences of different lengths in
 * one pass, left-padding their caches and right-padding their new tokens behind attention_mask.
 */
import { join } from 'node:path';
import { InferenceSession, Tensor } from 'onnxruntime-node';
import { UserError } from '../foundation/errors.js';
import { KvCache, type KvShape } from './kv-cache.js';
import { discoverLoraSlots, zeroLoraFeeds, type LoraFeeds, type LoraSlots } from './lora-slots.js';
import { loadModelConfig, type ModelConfig } from './model-config.js';
import { defaultModelFiles, modelChoiceFor, resolveModelFile } from './model-files.js';
import { ioVariantOf, toFloat32, toFloat32Tensor, toGraphType, type IoVariant } from './model-io.js';

/** Graph file names tried in order without a choice (model-files.ts: full precision first). */
export const MODEL_FILES = defaultModelFiles();

export interface LmSessionOptions {
  /** ONNX Runtime intra-op threads. Default 1: a draft model is latency-bound and shares the CPU. */
  intraOpThreads?: number;
  /**
   * Graph file inside the model directory (`--model-file`); default: artifact.yaml's `file:` or
   * `dtype:` when the directory has one, else the first of MODEL_FILES that exists.
   */
  modelFile?: string | undefined;
}

/** Row-major logits [rows, vocab] of one sequence. */
export class Logits {
  constructor(
    readonly data: Float32Array,
    readonly rows: number,
    readonly vocabSize: number,
  ) {}

  /** The logits after the input's `i`-th token (a view, not a copy). */
  row(i: number): Float32Array {
    if (i < 0 || i >= this.rows) throw new RangeError(`logits row ${i} out of range 0..${this.rows - 1}`);
    return this.data.subarray(i * this.vocabSize, (i + 1) * this.vocabSize);
  }

  last(): Float32Array {
    return this.row(this.rows - 1);
  }
}

export interface ForwardResult {
  /** One row per input token: the distribution of the token after it. */
  logits: Logits;
  /** The cache extended by the input tokens. */
  cache: KvCache;
}

export interface BatchItem {
  ids: readonly number[];
  cache?: KvCache;
}

/**
 * What decoding needs from a model. `LmSession` implements it, and so do wrappers such as
 * `ForwardBatcher`, so decode states, drafters and verifiers work with either.
 */
export interface CausalLm {
  readonly config: ModelConfig;
  readonly vocabSize: number;
  emptyCache(): KvCache;
  forward(ids: readonly number[], cache?: KvCache, lora?: LoraFeeds): Promise<ForwardResult>;
}

/** What the graph takes besides input_ids, attention_mask and the cache. */
export interface ModelInputs {
  positionIds: boolean;
  useCacheBranch: boolean;
  /** LoRA matrices the graph takes (draft models), or undefined. */
  lora: LoraSlots | undefined;
  /** float16 caches/logits, logits-to-keep input, position offset (model-io.ts). */
  io: IoVariant;
}

function i64(values: ArrayLike<number>, dims: number[]): Tensor {
  const data = new BigInt64Array(values.length);
  for (let i = 0; i < values.length; i++) data[i] = BigInt(values[i] as number);
  return new Tensor('int64', data, dims);
}

export class LmSession implements CausalLm {
  readonly shape: KvShape;
  private readonly pastNames: string[];
  private readonly presentNames: string[];
  private zeroLora: LoraFeeds | undefined;

  private constructor(
    private readonly session: InferenceSession,
    readonly dir: string,
    readonly modelFile: string,
    readonly config: ModelConfig,
    readonly inputs: ModelInputs,
  ) {
    this.shape = {
      numLayers: config.numLayers,
      numKeyValueHeads: config.numKeyValueHeads,
      headDim: config.headDim,
    };
    this.pastNames = [];
    this.presentNames = [];
    for (let i = 0; i < config.numLayers; i++) {
      for (const kv of ['key', 'value']) {
        this.pastNames.push(`past_key_values.${i}.${kv}`);
        this.presentNames.push(`present.${i}.${kv}`);
      }
    }
  }

  static async load(dir: string, opts: LmSessionOptions = {}): Promise<LmSession> {
    const config = loadModelConfig(dir);
    const modelFile = resolveModelFile(dir, modelChoiceFor(dir, opts.modelFile));
    const path = join(dir, modelFile);
    let session: InferenceSession;
    try {
      session = await InferenceSession.create(path, {
        executionProviders: ['cpu'],
        intraOpNumThreads: opts.intraOpThreads ?? 1,
        interOpNumThreads: 1,
        executionMode: 'sequential',
        graphOptimizationLevel: 'all',
      });
    } catch (err) {
      throw new UserError(
        `${path}: ONNX Runtime cannot load the model (${(err as Error).message.split('\n')[0]})`,
        {
          code: 'E_MODEL',
          suggestion:
            'Check that the file is a complete ONNX export (opset >= 14), not a Git LFS pointer, and that its external data (<file>.onnx_data) is complete.',
        },
      );
    }
    const inputs = checkGraph(session, config, path);
    return new LmSession(session, dir, modelFile, config, inputs);
  }

  /** The graph's input and output names (validation reports them). */
  ioNames(): { inputs: string[]; outputs: string[] } {
    return { inputs: [...this.session.inputNames], outputs: [...this.session.outputNames] };
  }

  get vocabSize(): number {
    return this.config.vocabSize;
  }

  emptyCache(): KvCache {
    return KvCache.empty(this.shape);
  }

  /** Runs `ids` after `cache` (empty when absent) for one sequence. */
  async forward(ids: readonly number[], cache?: KvCache, lora?: LoraFeeds): Promise<ForwardResult> {
    const past = cache ?? this.emptyCache();
    this.checkIds(ids, past.length);
    const seq = ids.length;
    const total = past.length + seq;
    const feeds: Record<string, Tensor> = {
      input_ids: i64(ids, [1, seq]),
      attention_mask: new Tensor('int64', new BigInt64Array(total).fill(1n), [1, total]),
    };
    if (this.inputs.positionIds) {
      const pos = new Array<number>(seq);
      for (let j = 0; j < seq; j++) pos[j] = past.length + j + this.inputs.io.positionOffset;
      feeds.position_ids = i64(pos, [1, seq]);
    }
    this.addCommonFeeds(feeds, past.length > 0, lora, seq);
    const pastTensors = past.pastTensors();
    const cacheType = this.inputs.io.cacheType;
    for (let i = 0; i < this.pastNames.length; i++)
      feeds[this.pastNames[i] as string] = toGraphType(pastTensors[i] as Tensor, cacheType);
    // ONNX Runtime reads the past tensors in place: a release meanwhile must wait for the pass.
    past.hold();
    let out: InferenceSession.OnnxValueMapType;
    try {
      out = await this.session.run(feeds);
    } finally {
      past.unhold();
    }
    const logits = out.logits as Tensor;
    const presents = this.presentNames.map((n) => toFloat32Tensor(out[n] as Tensor));
    return {
      logits: new Logits(toFloat32(logits), seq, this.vocabSize),
      cache: KvCache.fromTensors(this.shape, presents, total),
    };
  }

  /**
   * Runs several sequences in one pass. Caches are left-padded to the longest past and new tokens
   * right-padded to the longest input; attention_mask hides the padding, so each sequence's logits
   * equal its `forward` logits up to float rounding. All sequences share one LoRA setting.
   */
  async forwardBatch(items: readonly BatchItem[], lora?: LoraFeeds): Promise<ForwardResult[]> {
    if (items.length === 0) return [];
    if (items.length === 1) {
      const only = items[0] as BatchItem;
      return [await this.forward(only.ids, only.cache, lora)];
    }
    const batch = items.length;
    const pasts = items.map((it) => it.cache ?? this.emptyCache());
    items.forEach((it, b) => this.checkIds(it.ids, (pasts[b] as KvCache).length));
    const maxPast = Math.max(...pasts.map((c) => c.length));
    const maxSeq = Math.max(...items.map((it) => it.ids.length));
    const total = maxPast + maxSeq;
    const ids = new Array<number>(batch * maxSeq).fill(0);
    const pos = new Array<number>(batch * maxSeq).fill(0);
    const mask = new BigInt64Array(batch * total);
    items.forEach((it, b) => {
      const pastLen = (pasts[b] as KvCache).length;
      for (let j = 0; j < maxSeq; j++) {
        ids[b * maxSeq + j] = it.ids[j] ?? 0;
        pos[b * maxSeq + j] = pastLen + j + this.inputs.io.positionOffset;
      }
      mask.fill(1n, b * total + maxPast - pastLen, b * total + maxPast + it.ids.length);
    });
    const feeds: Record<string, Tensor> = {
      input_ids: i64(ids, [batch, maxSeq]),
      attention_mask: new Tensor('int64', mask, [batch, total]),
    };
    if (this.inputs.positionIds) feeds.position_ids = i64(pos, [batch, maxSeq]);
    this.addCommonFeeds(feeds, maxPast > 0, lora, maxSeq);
    const { numKeyValueHeads: h, headDim: d } = this.shape;
    const compact = pasts.map((c) => c.pastTensors());
    for (let t = 0; t < this.pastNames.length; t++) {
      const data = new Float32Array(batch * h * maxPast * d);
      for (let b = 0; b < batch; b++) {
        const len = (pasts[b] as KvCache).length;
        const src = ((compact[b] as readonly Tensor[])[t] as Tensor).data as Float32Array;
        for (let head = 0; head < h; head++) {
          const dst = ((b * h + head) * maxPast + (maxPast - len)) * d;
          data.set(src.subarray(head * len * d, (head + 1) * len * d), dst);
        }
      }
      const past = new Tensor('float32', data, [batch, h, maxPast, d]);
      feeds[this.pastNames[t] as string] = toGraphType(past, this.inputs.io.cacheType);
    }
    const out = await this.session.run(feeds);
    const logits = toFloat32(out.logits as Tensor);
    const presents = this.presentNames.map((n) => toFloat32(out[n] as Tensor));
    const vocab = this.vocabSize;
    return items.map((it, b) => {
      const seq = it.ids.length;
      const pastLen = (pasts[b] as KvCache).length;
      const rows = logits.slice(b * maxSeq * vocab, (b * maxSeq + seq) * vocab);
      const from = maxPast - pastLen;
      const len = pastLen + seq;
      const tensors = presents.map((src) => {
        const data = new Float32Array(h * len * d);
        for (let head = 0; head < h; head++) {
          const start = ((b * h + head) * total + from) * d;
          data.set(src.subarray(start, start + len * d), head * len * d);
        }
        return new Tensor('float32', data, [1, h, len, d]);
      });
      return { logits: new Logits(rows, seq, vocab), cache: KvCache.fromTensors(this.shape, tensors, len) };
    });
  }

  async release(): Promise<void> {
    await this.session.release();
  }

  private addCommonFeeds(
    feeds: Record<string, Tensor>,
    hasPast: boolean,
    lora: LoraFeeds | undefined,
    seq: number,
  ): void {
    // Every input token needs its logits row (speculative verification), so keep them all.
    const keep = this.inputs.io.logitsToKeep;
    if (keep !== undefined) feeds[keep] = new Tensor('int64', new BigInt64Array([BigInt(seq)]), []);
    if (this.inputs.useCacheBranch)
      feeds.use_cache_branch = new Tensor('bool', new Uint8Array([hasPast ? 1 : 0]), [1]);
    const slots = this.inputs.lora;
    if (slots !== undefined) {
      this.zeroLora ??= zeroLoraFeeds(slots);
      Object.assign(feeds, lora ?? this.zeroLora);
    }
  }

  private checkIds(ids: readonly number[], pastLength: number): void {
    if (ids.length === 0) throw new RangeError('forward needs at least one token');
    const vocab = this.vocabSize;
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= vocab) {
        throw new UserError(`token id ${id} is outside the vocabulary of ${this.dir} (0..${vocab - 1})`, {
          code: 'E_TOKEN_ID',
          suggestion: 'Draft and verifier must share one tokenizer; check the model pair.',
        });
      }
    }
    const max = this.config.maxPositions;
    if (max !== undefined && pastLength + ids.length > max) {
      throw new UserError(
        `context of ${pastLength + ids.length} tokens exceeds the model's ${max} positions`,
        {
          code: 'E_CONTEXT_LENGTH',
          suggestion: 'Shorten the prompt or lower max_tokens.',
        },
      );
    }
  }
}

const FED_INPUTS = new Set([
  'input_ids',
  'attention_mask',
  'position_ids',
  'use_cache_branch',
  'num_logits_to_keep',
  'logits_to_keep',
]);

function isFedInput(name: string): boolean {
  return FED_INPUTS.has(name) || /^past_key_values\.\d+\.(key|value)$/.test(name) || /^lora\./.test(name);
}

/** Checks the graph against config.json and discovers its optional inputs. */
function checkGraph(session: InferenceSession, config: ModelConfig, path: string): ModelInputs {
  const inputs = new Set(session.inputNames);
  const outputs = new Set(session.outputNames);
  const missing: string[] = [];
  for (const name of ['input_ids', 'attention_mask']) if (!inputs.has(name)) missing.push(`input ${name}`);
  if (!outputs.has('logits')) missing.push('output logits');
  for (let i = 0; i < config.numLayers; i++) {
    for (const kv of ['key', 'value']) {
      if (!inputs.has(`past_key_values.${i}.${kv}`)) missing.push(`input past_key_values.${i}.${kv}`);
      if (!outputs.has(`present.${i}.${kv}`)) missing.push(`output present.${i}.${kv}`);
    }
  }
  if (inputs.has(`past_key_values.${config.numLayers}.key`))
    missing.push(`(graph has more layers than num_hidden_layers)`);
  // An input the runtime would not feed fails every run: refuse it at load (and so at lint).
  const unknown = session.inputNames.filter((n) => !isFedInput(n));
  if (unknown.length > 0) {
    throw new UserError(
      `${path}: the graph takes input ${unknown.join(', ')}, which the runtime does not feed`,
      {
        code: 'E_MODEL',
        suggestion:
          'Export a decoder with the Optimum inputs (input_ids, attention_mask, position_ids, past_key_values.*).',
      },
    );
  }
  if (missing.length > 0) {
    throw new UserError(
      `${path}: the graph does not match config.json (num_hidden_layers ${config.numLayers}): missing ${missing.slice(0, 4).join(', ')}${missing.length > 4 ? ', ...' : ''}`,
      {
        code: 'E_MODEL',
        suggestion: 'Export the model with the Optimum decoder layout and matching config.json.',
      },
    );
  }
  for (const meta of session.inputMetadata) {
    if (!meta.isTensor || !meta.name.startsWith('past_key_values.')) continue;
    const [, heads, , dim] = meta.shape;
    const problem =
      typeof heads === 'number' && heads !== config.numKeyValueHeads
        ? `${heads} KV heads, config.json says num_key_value_heads ${config.numKeyValueHeads}`
        : typeof dim === 'number' && dim !== config.headDim
          ? `head size ${dim}, config.json implies ${config.headDim}`
          : undefined;
    if (problem !== undefined) {
      throw new UserError(`${path}: input ${meta.name} has ${problem}`, {
        code: 'E_MODEL',
        suggestion: 'Fix num_key_value_heads / head_dim in config.json (or its text_config).',
      });
    }
  }
  return {
    positionIds: inputs.has('position_ids'),
    useCacheBranch: inputs.has('use_cache_branch'),
    lora: discoverLoraSlots(session.inputMetadata, config, path),
    io: ioVariantOf(session, config.modelType, path),
  };
}
