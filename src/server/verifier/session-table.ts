/**
 * The verifier's table of live sessions (each one a prompt's KV cache held between verify rounds).
 * It owns their lifetime: ids, idle TTL, a cap on how many may live at once, and exclusive use —
 * a session is leased to one request at a time, so a verify can never race a DELETE or the TTL
 * sweep into freeing a cache that a forward pass is still reading. Release happens exactly once,
 * through `dispose()`, when the session is deleted, expires, or the table closes.
 */
import { randomUUID } from 'node:crypto';
import { HttpError, notFound } from '../http.js';

export interface Disposable {
  dispose(): void;
}

export interface SessionTableOptions {
  /** Idle time after which a session is released. */
  ttlMs: number;
  /** Sessions that may live at once; creating one more is refused with 429. */
  maxSessions: number;
  /** Milliseconds clock; injected so tests can expire sessions without sleeping. */
  now?: () => number;
}

interface Entry<S> {
  value: S;
  lastUsed: number;
  leased: boolean;
  /** Deleted or expired while leased: dispose when the lease ends. */
  doomed: boolean;
}

export interface Lease<S> {
  readonly id: string;
  readonly value: S;
  /** Ends the lease and refreshes the idle timer. Idempotent. */
  release(): void;
}

export class SessionTable<S extends Disposable> {
  private readonly entries = new Map<string, Entry<S>>();
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;
  /** Sessions released since the table was made, by reason; tests and metrics read it. */
  readonly released = { deleted: 0, expired: 0, closed: 0 };

  constructor(private readonly opts: SessionTableOptions) {
    this.now = opts.now ?? Date.now;
  }

  get size(): number {
    return this.entries.size;
  }

  get ttlMs(): number {
    return this.opts.ttlMs;
  }

  /** Refuses before the caller does any work (prefill) when the table is full. */
  assertCapacity(): void {
    this.sweep();
    if (this.entries.size >= this.opts.maxSessions) {
      throw new HttpError(
        429,
        `too many live sessions (${this.opts.maxSessions}); delete finished sessions or retry later`,
        'too_many_sessions',
        'overloaded_error',
        { 'retry-after': String(Math.max(1, Math.ceil(this.opts.ttlMs / 1000))) },
      );
    }
  }

  /** Adds a session and returns it leased to the creator (who usually releases it at once). */
  add(value: S): Lease<S> {
    const id = `sess_${randomUUID().replaceAll('-', '')}`;
    const entry: Entry<S> = { value, lastUsed: this.now(), leased: true, doomed: false };
    this.entries.set(id, entry);
    return this.lease(id, entry);
  }

  /** Whether a session is live: known, not deleted, and leased or within its TTL. */
  has(id: string): boolean {
    const entry = this.entries.get(id);
    return entry !== undefined && !entry.doomed && (entry.leased || !this.expired(entry));
  }

  /** Leases a session for one request: 404 when unknown or expired, 409 when already in use. */
  acquire(id: string): Lease<S> {
    const entry = this.entries.get(id);
    if (!entry || entry.doomed || (!entry.leased && this.expired(entry))) {
      if (entry && !entry.leased) this.drop(id, entry, 'expired');
      throw notFound(`session ${id} not found (unknown, deleted or expired)`, 'session_not_found');
    }
    if (entry.leased) {
      throw new HttpError(
        409,
        `session ${id} is busy with another request; send one verify at a time per session`,
        'session_busy',
        'conflict_error',
      );
    }
    entry.leased = true;
    return this.lease(id, entry);
  }

  /** Deletes a session; a leased one is released when its request ends. False when unknown. */
  delete(id: string): boolean {
    const entry = this.entries.get(id);
    if (!entry || entry.doomed) return false;
    if (entry.leased) {
      entry.doomed = true;
      this.released.deleted++;
    } else this.drop(id, entry, 'deleted');
    return true;
  }

  /** Releases every idle session past its TTL. Returns how many went. */
  sweep(): number {
    let n = 0;
    for (const [id, entry] of this.entries) {
      if (!entry.leased && this.expired(entry)) {
        this.drop(id, entry, 'expired');
        n++;
      }
    }
    return n;
  }

  /** Sweeps on a timer (unref'd, so it never keeps a process alive). */
  startSweeper(intervalMs = Math.max(100, Math.min(this.opts.ttlMs / 2, 5000))): void {
    this.timer ??= setInterval(() => this.sweep(), intervalMs);
    this.timer.unref();
  }

  /** Releases everything; used on shutdown. */
  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    for (const [id, entry] of this.entries) this.drop(id, entry, 'closed');
  }

  private expired(entry: Entry<S>): boolean {
    return this.now() - entry.lastUsed > this.opts.ttlMs;
  }

  private drop(id: string, entry: Entry<S>, reason: keyof SessionTable<S>['released']): void {
    this.entries.delete(id);
    this.released[reason]++;
    entry.value.dispose();
  }

  private lease(id: string, entry: Entry<S>): Lease<S> {
    let done = false;
    return {
      id,
      value: entry.value,
      release: () => {
        if (done) return;
        done = true;
        entry.leased = false;
        entry.lastUsed = this.now();
        if (entry.doomed) {
          this.entries.delete(id);
          entry.value.dispose();
        }
      },
    };
  }
}
