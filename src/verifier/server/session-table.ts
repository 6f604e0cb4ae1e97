/**
 * The verifier's table of live sessions (each one a prompt's KV cache held between verify rounds).
 * It owns their lifetime: ids, idle TTL, a cap on how many may live at once, and exclusive use —
 * a session is leased to one request at a time, so a verify can never race a DELETE or the TTL
 * sweep into freeing a cache that a forward pass is still reading. Release happens exactly once,
 * through `dispose()`, when the session is deleted, expires, or the table closes.
 *
 * The cap holds under bursts (issue #14 item 8): a creator first takes a `Reservation` (a slot
 * counted against the cap at once, synchronously), then does its awaited work (the prefill), then
 * fills the slot or cancels it. Checking capacity and adding later, with an await in between, let
 * every request of a burst pass the check before any of them was added.
 */
import { randomUUID } from 'node:crypto';
import { HttpError, notFound } from '../../http/http.js';

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

/** A slot held against the cap while its session is being built; fill or cancel it exactly once. */
export interface Reservation<S> {
  /** Adds the session in the reserved slot, leased to the creator. */
  fill(value: S): Lease<S>;
  /** Frees the slot unused (the prefill failed). Idempotent; a no-op after fill. */
  cancel(): void;
}

export class SessionTable<S extends Disposable> {
  private readonly entries = new Map<string, Entry<S>>();
  /** Slots reserved by creators still prefilling: they count against maxSessions. */
  private reserved = 0;
  private closed = false;
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

  /** Sessions live plus slots reserved by creators still prefilling. */
  get occupied(): number {
    return this.entries.size + this.reserved;
  }

  /**
   * Takes a slot before the caller does any work (prefill); 429 when live sessions plus pending
   * reservations already reach the cap. The check and the count happen in one synchronous step.
   */
  reserve(): Reservation<S> {
    this.sweep();
    if (this.closed) throw new HttpError(503, 'the verifier is shutting down', 'shutting_down');
    if (this.occupied >= this.opts.maxSessions) {
      throw new HttpError(
        429,
        `too many live sessions (${this.opts.maxSessions}); delete finished sessions or retry later`,
        'too_many_sessions',
        'overloaded_error',
        { 'retry-after': String(Math.max(1, Math.ceil(this.opts.ttlMs / 1000))) },
      );
    }
    this.reserved++;
    let open = true;
    const settle = (): void => {
      if (!open) throw new Error('session reservation already used');
      open = false;
      this.reserved--;
    };
    return {
      fill: (value) => {
        settle();
        if (this.closed) {
          value.dispose(); // built while the table closed: nobody will ever release it
          throw new HttpError(503, 'the verifier is shutting down', 'shutting_down');
        }
        return this.insert(value);
      },
      cancel: () => {
        if (open) settle();
      },
    };
  }

  /** Adds a session (within the cap) and returns it leased to the creator. */
  add(value: S): Lease<S> {
    return this.reserve().fill(value);
  }

  private insert(value: S): Lease<S> {
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
    this.closed = true;
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
