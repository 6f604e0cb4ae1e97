/**
 * Bounded concurrency for registry requests. `mapConcurrent` runs a function over a list with at most
 * `limit` calls in flight; `TaskGate` lets a producer (the publish pipeline) start tasks as it goes
 * while never holding more than `limit` in flight, which also bounds memory (each task holds a pack).
 * The first failure stops new work and is rethrown; written here because p-limit alone has no
 * producer back-pressure and fail-fast drain.
 */

export async function mapConcurrent<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (!failed && next < items.length) {
      const i = next++;
      try {
        results[i] = await fn(items[i] as T, i);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  const workers = Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker);
  const settled = await Promise.allSettled(workers);
  const rejected = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (rejected) throw rejected.reason;
  return results;
}

export class TaskGate {
  private readonly running = new Set<Promise<void>>();
  private error: { err: unknown } | undefined;

  constructor(private readonly limit: number) {}

  /** Waits for a free slot, then starts `task` (does not wait for it to finish). */
  async start(task: () => Promise<void>): Promise<void> {
    while (this.running.size >= Math.max(1, this.limit)) await Promise.race(this.running);
    if (this.error) throw this.error.err;
    const p: Promise<void> = task()
      .catch((err: unknown) => {
        this.error ??= { err };
      })
      .finally(() => this.running.delete(p));
    this.running.add(p);
  }

  /** Waits for every started task; throws the first failure. */
  async drain(): Promise<void> {
    while (this.running.size > 0) await Promise.race(this.running);
    if (this.error) throw this.error.err;
  }
}
