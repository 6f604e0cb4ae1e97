/**
 * `DecodeState`: one sequence being decoded by one model — its tokens and the KV cache that covers
 * a prefix of them.
 *
 * Tokens may run ahead of the cache ("unfed" tokens: accepted drafts, a verifier's correction);
 * the next forward feeds them all in one pass. That single rule serves plain decoding (one unfed
 * token per step), drafting (the draft's own samples), verification (unfed + drafted tokens) and
 * rollback (truncate tokens and cache to the accepted length, O(1) until the next pass).
 *
 * The state frees a cache its own pass produced as soon as the next pass replaces it, unless the
 * cache was handed out through `cache` (see KvCache.release for why this matters); a cache given
 * to the constructor belongs to the caller and is never freed here.
 */
import type { KvCache } from './kv-cache.js';
import type { LoraFeeds } from './lora-slots.js';
import type { CausalLm, Logits } from './model-session.js';

export class DecodeState {
  private tokenList: number[];
  private kv: KvCache;
  /** Whether `kv` came from this state's own pass and was never handed out, so it may be freed. */
  private ownsCache = false;
  /** Logits after the last token, when the cache covers every token. */
  private lastRow: Float32Array | undefined;

  constructor(
    readonly model: CausalLm,
    tokens: readonly number[],
    cache?: KvCache,
  ) {
    this.tokenList = [...tokens];
    this.kv = cache ?? model.emptyCache();
    if (this.kv.length > this.tokenList.length) throw new RangeError('cache is longer than the token list');
  }

  get tokens(): readonly number[] {
    return this.tokenList;
  }

  get length(): number {
    return this.tokenList.length;
  }

  /** The cache; the caller may keep it, so the state no longer frees it. */
  get cache(): KvCache {
    this.ownsCache = false;
    return this.kv;
  }

  /** Tokens the cache covers (reading it does not hand the cache out). */
  get cacheLength(): number {
    return this.kv.length;
  }

  /** Tokens not yet in the cache. */
  get unfed(): number[] {
    return this.tokenList.slice(this.kv.length);
  }

  append(...tokens: number[]): void {
    if (tokens.length === 0) return;
    this.tokenList.push(...tokens);
    this.lastRow = undefined;
  }

  /** Keeps the first `length` tokens; the cache is cut to match (no copy until the next pass). */
  truncate(length: number): void {
    if (length > this.tokenList.length || length < 0)
      throw new RangeError(`cannot truncate ${this.length} tokens to ${length}`);
    if (length === this.tokenList.length) return;
    this.tokenList.length = length;
    if (this.kv.length > length) this.kv = this.kv.truncate(length);
    this.lastRow = undefined;
  }

  /** Drops every token and the cache (releases the cache's memory to the GC). */
  clear(): void {
    if (this.ownsCache) this.kv.release();
    this.ownsCache = false;
    this.tokenList = [];
    this.kv = this.model.emptyCache();
    this.lastRow = undefined;
  }

  /**
   * Feeds the unfed tokens plus `extra` in one pass and returns their logits; `extra` is appended
   * to the tokens. Returns undefined logits only when there is nothing to feed.
   */
  async feed(
    extra: readonly number[] = [],
    lora?: LoraFeeds,
  ): Promise<{ logits: Logits | undefined; unfedCount: number }> {
    const unfed = this.unfed;
    const input = extra.length > 0 ? [...unfed, ...extra] : unfed;
    if (input.length === 0) return { logits: undefined, unfedCount: 0 };
    // Tokens and cache change only after the pass succeeded, so a failed pass loses nothing.
    const { logits, cache } = await this.model.forward(input, this.kv, lora);
    this.append(...extra);
    if (this.ownsCache) this.kv.release();
    this.kv = cache;
    this.ownsCache = true;
    this.lastRow = logits.last();
    return { logits, unfedCount: unfed.length };
  }

  /** The logits of the token after the last one (runs a pass only when some tokens are unfed). */
  async nextLogits(lora?: LoraFeeds): Promise<Float32Array> {
    if (this.lastRow !== undefined && this.kv.length === this.tokenList.length) return this.lastRow;
    if (this.tokenList.length === 0) throw new RangeError('cannot decode from an empty sequence');
    // A cache that covers every token but came without its last logits (a shared prefix cache):
    // recompute the last position.
    if (this.kv.length === this.tokenList.length) this.kv = this.kv.truncate(this.kv.length - 1);
    await this.feed([], lora);
    return this.lastRow as Float32Array;
  }
}
