/**
 * `ForwardBatcher`: micro-batching of concurrent forward passes on one model.
 *
 * A verifier serving many sessions, or a test running thousands of rounds, issues forward passes
 * concurrently; on CPU each small pass is dominated by per-run overhead, so passes that arrive
 * while another batch runs are gathered and sent as one `forwardBatch` call (left-padded caches,
 * right-padded inputs, results identical to one-by-one passes up to float rounding). At most one
 * batch runs at a time, so batches grow exactly when the model is busy. Passes with different LoRA
 * feeds never share a batch, since the adapter is an input of the whole batch.
 */
import type { KvCache } from './kv-cache.js';
import type { LoraFeeds } from './lora-slots.js';
import type { BatchItem, CausalLm, ForwardResult, LmSession } from './model-session.js';
import type { ModelConfig } from './model-config.js';

export interface ForwardBatcherOptions {
  /** Most sequences per pass (default 16). */
  maxBatch?: number;
}

interface Pending {
  item: BatchItem;
  lora: LoraFeeds | undefined;
  resolve: (r: ForwardResult) => void;
  reject: (e: unknown) => void;
}

export class ForwardBatcher implements CausalLm {
  private readonly maxBatch: number;
  private queue: Pending[] = [];
  private busy = false;
  /** Passes run and sequences served, for metrics (mean batch = sequences / passes). */
  readonly stats = { passes: 0, sequences: 0 };

  constructor(
    readonly model: LmSession,
    opts: ForwardBatcherOptions = {},
  ) {
    this.maxBatch = Math.max(1, opts.maxBatch ?? 16);
  }

  get config(): ModelConfig {
    return this.model.config;
  }

  get vocabSize(): number {
    return this.model.vocabSize;
  }

  emptyCache(): KvCache {
    return this.model.emptyCache();
  }

  forward(ids: readonly number[], cache?: KvCache, lora?: LoraFeeds): Promise<ForwardResult> {
    return new Promise<ForwardResult>((resolve, reject) => {
      this.queue.push({ item: cache ? { ids, cache } : { ids }, lora, resolve, reject });
      // Wait one macrotask so every caller that is ready in this turn joins the batch.
      if (!this.busy && this.queue.length === 1) setImmediate(() => this.flush());
    });
  }

  private flush(): void {
    if (this.busy || this.queue.length === 0) return;
    const lora = (this.queue[0] as Pending).lora;
    const batch: Pending[] = [];
    const rest: Pending[] = [];
    for (const p of this.queue) (p.lora === lora && batch.length < this.maxBatch ? batch : rest).push(p);
    this.queue = rest;
    this.busy = true;
    this.stats.passes++;
    this.stats.sequences += batch.length;
    this.model
      .forwardBatch(
        batch.map((p) => p.item),
        lora,
      )
      .then(
        (results) => batch.forEach((p, i) => p.resolve(results[i] as ForwardResult)),
        (err: unknown) => batch.forEach((p) => p.reject(err)),
      )
      .finally(() => {
        this.busy = false;
        this.flush();
      });
  }
}
