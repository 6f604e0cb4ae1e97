/**
 * Hot swap: which loaded generation new requests get. The manager is the daemon's
 * `GenerationSource`: `acquire` hands out a counted lease on the installed generation, `install`
 * loads another one next to it (passing the installed one as `previous`, so an unchanged model
 * session is reused and only adapters or the policy load) and then swaps it in with one assignment,
 * so a request sees either the old or the new generation, never a mix. The old one is retired and
 * disposed when its last lease is released: in-flight streams finish on the artifacts they started
 * with. A generation that fails to load changes nothing (the installed one keeps serving) and the
 * failure is remembered, so a broken generation is not reloaded on every check.
 *
 * Loads are serialized; `reconcile(target)` is idempotent, so callers (the sync agent's `switched`
 * event, a poll of the `current` pointer that catches `site rollback`) may call it freely.
 */
import type { FeedbackContext } from '../../feedback/index.js';
import type { GenerationLease, GenerationSource, ServedGeneration } from '../contract.js';

export interface GenerationTarget {
  id: string;
  dir: string;
  /** The feedback context requests served by it report (applied seq and its refs). */
  context: FeedbackContext;
}

export type GenerationLoader<G extends ServedGeneration> = (
  target: GenerationTarget,
  previous: G | undefined,
) => Promise<G>;

interface Slot<G> {
  generation: G;
  leases: number;
  retired: boolean;
  disposed: boolean;
}

export interface InstallEvent {
  kind: 'installed' | 'load-failed' | 'disposed' | 'dispose-failed';
  id: string;
  from?: string | null;
  ms?: number;
  error?: string;
}

export interface GenerationManagerOptions<G extends ServedGeneration> {
  load: GenerationLoader<G>;
  onEvent?: (event: InstallEvent) => void;
  now?: () => number;
}

export class GenerationManager<G extends ServedGeneration> implements GenerationSource<G> {
  private installed: Slot<G> | undefined;
  private readonly retired = new Set<Slot<G>>();
  private chain: Promise<unknown> = Promise.resolve();
  private failed: { id: string; error: string } | undefined;
  private swaps = 0;
  private closed = false;

  constructor(private readonly opts: GenerationManagerOptions<G>) {}

  /** The installed generation (for status), without taking a lease. */
  get current(): G | undefined {
    return this.installed?.generation;
  }

  /** Generations replaced but still serving in-flight requests. */
  get draining(): { id: string; leases: number }[] {
    return [...this.retired].map((s) => ({ id: s.generation.id, leases: s.leases }));
  }

  get leases(): number {
    return (this.installed?.leases ?? 0) + [...this.retired].reduce((n, s) => n + s.leases, 0);
  }

  get swapCount(): number {
    return this.swaps;
  }

  /** The last generation that failed to load and is not being retried, if any. */
  get lastFailure(): { id: string; error: string } | undefined {
    return this.failed;
  }

  acquire(): GenerationLease<G> | undefined {
    const slot = this.installed;
    if (!slot || this.closed) return undefined;
    slot.leases++;
    let released = false;
    return {
      generation: slot.generation,
      release: () => {
        if (released) return;
        released = true;
        slot.leases--;
        if (slot.retired && slot.leases === 0) void this.dispose(slot);
      },
    };
  }

  /**
   * Makes `target` the installed generation unless it already is (or already failed to load and
   * `retryFailed` is not set). Resolves true when it is installed afterwards.
   */
  reconcile(target: GenerationTarget, opts: { retryFailed?: boolean } = {}): Promise<boolean> {
    const run = this.chain.then(() => this.installOne(target, opts.retryFailed === true));
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async installOne(target: GenerationTarget, retryFailed: boolean): Promise<boolean> {
    if (this.closed) return false;
    const before = this.installed;
    if (before?.generation.id === target.id) return true;
    if (!retryFailed && this.failed?.id === target.id) return false;
    const now = this.opts.now ?? (() => performance.now());
    const t0 = now();
    let generation: G;
    try {
      generation = await this.opts.load(target, before?.generation);
    } catch (err) {
      const error = err instanceof Error ? err.message : String(err);
      this.failed = { id: target.id, error };
      this.opts.onEvent?.({ kind: 'load-failed', id: target.id, error, ms: Math.round(now() - t0) });
      return false;
    }
    if (this.closed) {
      await generation.dispose().catch(() => undefined);
      return false;
    }
    this.failed = undefined;
    // The swap itself: one assignment. Requests that acquired `before` keep their lease on it.
    this.installed = { generation, leases: 0, retired: false, disposed: false };
    this.swaps++;
    this.opts.onEvent?.({
      kind: 'installed',
      id: target.id,
      from: before?.generation.id ?? null,
      ms: Math.round(now() - t0),
    });
    if (before) this.retire(before);
    return true;
  }

  private retire(slot: Slot<G>): void {
    slot.retired = true;
    this.retired.add(slot);
    if (slot.leases === 0) void this.dispose(slot);
  }

  private async dispose(slot: Slot<G>): Promise<void> {
    if (slot.disposed) return;
    slot.disposed = true;
    this.retired.delete(slot);
    try {
      await slot.generation.dispose();
      this.opts.onEvent?.({ kind: 'disposed', id: slot.generation.id });
    } catch (err) {
      const error = err instanceof Error ? err.message : String(err);
      this.opts.onEvent?.({ kind: 'dispose-failed', id: slot.generation.id, error });
    }
  }

  /**
   * Stops handing out leases, waits for pending loads, and disposes every generation once its
   * leases are released (or after `waitMs`, when the server has already been drained).
   */
  async close(waitMs = 0): Promise<void> {
    this.closed = true;
    await this.chain.catch(() => undefined);
    const deadline = performance.now() + waitMs;
    while (this.leases > 0 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const slots = [...this.retired];
    if (this.installed) slots.push(this.installed);
    this.installed = undefined;
    await Promise.all(slots.map((s) => this.dispose(s)));
  }
}
