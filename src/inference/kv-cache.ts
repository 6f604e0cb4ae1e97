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
 */
import { Tensor } from 'onnxruntime-node';

export interface KvShape {
  numLayers: number;
  numKeyValueHeads: number;
  headDim: number;
}

export class KvCache {
  /** Key and value tensors interleaved: [layer0.key, layer0.value, layer1.key, ...]. */
  private readonly tensors: readonly Tensor[];
  /** Positions held by `tensors` (>= length). */
  private readonly physicalLength: number;
  private compact: readonly Tensor[] | undefined;

  private constructor(
    readonly shape: KvShape,
    tensors: readonly Tensor[],
    physicalLength: number,
    /** Tokens this cache covers. */
    readonly length: number,
  ) {
    this.tensors = tensors;
    this.physicalLength = physicalLength;
    if (physicalLength === length) this.compact = tensors;
  }

  static empty(shape: KvShape): KvCache {
    const empty = new Tensor('float32', new Float32Array(0), [1, shape.numKeyValueHeads, 0, shape.headDim]);
    return new KvCache(shape, new Array<Tensor>(shape.numLayers * 2).fill(empty), 0, 0);
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
    return new KvCache(shape, tensors, length, length);
  }

  /** A cache covering only the first `length` tokens. O(1); the copy is deferred to the next use. */
  truncate(length: number): KvCache {
    if (!Number.isInteger(length) || length < 0 || length > this.length) {
      throw new RangeError(`cannot truncate a KV cache of length ${this.length} to ${length}`);
    }
    if (length === this.length) return this;
    return new KvCache(this.shape, this.tensors, this.physicalLength, length);
  }

  /** Bytes held (shared tensors counted once per cache). */
  get bytes(): number {
    return this.tensors.length * this.shape.numKeyValueHeads * this.physicalLength * this.shape.headDim * 4;
  }

  /** The tensors to feed as `past_key_values`, compacted to `length` positions (copied once). */
  pastTensors(): readonly Tensor[] {
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
