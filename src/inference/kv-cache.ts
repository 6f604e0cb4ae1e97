/**
 * The key/value cache of one sequence: per layer a key and a value tensor of shape
 * [1, num_key_value_heads, length, head_dim] (float32, the Optimum `present` layout).
 *
 * A KvCache is immutable. Extending it is free (a forward pass's `present` outputs already hold
 * past + new positions and become the new cache), cloning is free (share the object), and
 * truncating — rolling back rejected draft tokens — only records a shorter logical length; the
 * copy into compact tensors happens once, lazily, when the truncated cache is next fed to the
 * model. Several holders (a verifier session and its retry, a fork for tree drafting) can therefore
 * share one cache without defensive copies.
 *
 * The one exception to immutability is `release()`: a holder that knows it is the only one (a
 * decode state moving past a cache its own pass produced) frees the buffers at once instead of
 * leaving them to the garbage collector. Every pass returns a fresh copy of the whole cache from
 * ONNX Runtime (hundreds of KiB), and V8 counts that external memory towards starting a full
 * mark-compact: left to the GC, a verifier spends about a third of its CPU in collections (measured:
 * 0.88 vs 0.60 ms per one-token pass, docs/benchmarks.md). A pass reading the cache holds it
 * (`hold`/`unhold`, done by the model session), and a release during that pass waits for its end,
 * so ONNX Runtime never reads freed memory.
 */
import { Tensor } from 'onnxruntime-node';

/** The tensors one cache and its truncations share, and the passes reading them right now. */
class KvStorage {
  holds = 0;
  released = false;
  /** Tensors to free when the last hold ends (a release came during a pass). */
  private pending: Tensor[] = [];

  constructor(readonly tensors: readonly Tensor[]) {}

  free(extra: readonly Tensor[]): void {
    const all = this.released ? [...extra] : [...this.tensors, ...extra];
    this.released = true;
    if (this.holds > 0) this.pending.push(...all);
    else all.forEach(freeTensorData);
  }

  unhold(): void {
    this.holds--;
    if (this.holds === 0 && this.pending.length > 0) {
      const due = this.pending;
      this.pending = [];
      due.forEach(freeTensorData);
    }
  }
}

export interface KvShape {
  numLayers: number;
  numKeyValueHeads: number;
  headDim: number;
}

export class KvCache {
  /** Key and value tensors interleaved ([layer0.key, layer0.value, layer1.key, ...]), shared with truncations. */
  private readonly storage: KvStorage;
  /** Positions held by the storage's tensors (>= length). */
  private readonly physicalLength: number;
  private compact: readonly Tensor[] | undefined;

  private constructor(
    readonly shape: KvShape,
    storage: KvStorage,
    physicalLength: number,
    /** Tokens this cache covers. */
    readonly length: number,
  ) {
    this.storage = storage;
    this.physicalLength = physicalLength;
    if (physicalLength === length) this.compact = storage.tensors;
  }

  private get tensors(): readonly Tensor[] {
    return this.storage.tensors;
  }

  static empty(shape: KvShape): KvCache {
    const empty = new Tensor('float32', new Float32Array(0), [1, shape.numKeyValueHeads, 0, shape.headDim]);
    return new KvCache(shape, new KvStorage(new Array<Tensor>(shape.numLayers * 2).fill(empty)), 0, 0);
  }

  /** Wraps `present` tensors of shape [1, heads, length, headDim] (interleaved key, value per layer). */
  static fromTensors(shape: KvShape, tensors: readonly Tensor[], length: number): KvCache {
    if (tensors.length !== shape.numLayers * 2) {
      throw new RangeError(`KV cache needs ${shape.numLayers * 2} tensors, got ${tensors.length}`);
    }
    for (const t of tensors) {
      const [b, h, len, d] = t.dims;
      if (b !== 1 || h !== shape.numKeyValueHeads || len !== length || d !== shape.headDim) {
        throw new RangeError(
          `KV tensor has shape [${t.dims.join(', ')}], expected [1, ${shape.numKeyValueHeads}, ${length}, ${shape.headDim}]`,
        );
      }
    }
    return new KvCache(shape, new KvStorage(tensors), length, length);
  }

  /** A cache covering only the first `length` tokens. O(1); the copy is deferred to the next use. */
  truncate(length: number): KvCache {
    if (!Number.isInteger(length) || length < 0 || length > this.length) {
      throw new RangeError(`cannot truncate a KV cache of length ${this.length} to ${length}`);
    }
    if (length === this.length) return this;
    return new KvCache(this.shape, this.storage, this.physicalLength, length);
  }

  /** Bytes held (shared tensors counted once per cache). */
  get bytes(): number {
    return this.tensors.length * this.shape.numKeyValueHeads * this.physicalLength * this.shape.headDim * 4;
  }

  /**
   * Frees the memory of this cache's tensors (and of its compacted copy): now, or when the passes
   * reading it end. Only for the sole holder: every KvCache over the same tensors (this one's
   * earlier or truncated versions) is unusable afterwards.
   */
  release(): void {
    const own = this.compact !== undefined && this.compact !== this.tensors ? this.compact : [];
    this.compact = undefined;
    this.storage.free(own);
  }

  /** Marks the cache as read by a running pass until `unhold`; a `release` meanwhile waits. */
  hold(): void {
    this.storage.holds++;
  }

  unhold(): void {
    this.storage.unhold();
  }

  /** The tensors to feed as `past_key_values`, compacted to `length` positions (copied once). */
  pastTensors(): readonly Tensor[] {
    if (this.storage.released) throw new Error('KV cache used after release()');
    if (this.compact === undefined) {
      this.compact = this.tensors.map((t) => this.slice(t, 0, this.length));
    }
    return this.compact;
  }

  private slice(t: Tensor, from: number, to: number): Tensor {
    const data = this.copyRange(t.data as Float32Array, this.physicalLength, from, to);
    return new Tensor('float32', data, [1, this.shape.numKeyValueHeads, to - from, this.shape.headDim]);
  }

  private copyRange(src: Float32Array, srcLength: number, from: number, to: number): Float32Array {
    const { numKeyValueHeads: h, headDim: d } = this.shape;
    const n = to - from;
    const out = new Float32Array(h * n * d);
    for (let head = 0; head < h; head++) {
      const start = (head * srcLength + from) * d;
      out.set(src.subarray(start, start + n * d), head * n * d);
    }
    return out;
  }
}

/** `ArrayBuffer.prototype.transfer` (ES2024, Node >= 21), not in the ES2023 lib this project compiles against. */
interface TransferableBuffer {
  readonly detached: boolean;
  transfer(newLength: number): ArrayBuffer;
}

/**
 * Detaches the buffer behind a tensor's data, which frees its memory now and tells V8 it is gone.
 * Only a typed array that spans its whole buffer is freed (never a view into someone else's).
 */
function freeTensorData(t: Tensor): void {
  const data = t.data;
  if (!(data instanceof Float32Array) || data.byteLength === 0 || data.byteOffset !== 0) return;
  const buffer = data.buffer as ArrayBuffer & Partial<TransferableBuffer>;
  if (buffer.byteLength !== data.byteLength || typeof buffer.transfer !== 'function' || buffer.detached)
    return;
  try {
    buffer.transfer(0);
  } catch {
    // A buffer that cannot be detached is left to the garbage collector.
  }
}
