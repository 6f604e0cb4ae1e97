/**
 * Admission control for the site runtime's generations (issue #5 item 6): at most `maxConcurrent`
 * generations run, at most `maxQueue` wait, and a request past that is refused at once with 429, an
 * OpenAI-style error and a Retry-After estimated from recent generation times. A waiter whose client
 * went away leaves the queue without running. Unlike the verifier's AdmissionQueue (which admits one
 * forward pass at a time), a slot here is held for a whole generation, so `enter` returns the
 * release function instead of wrapping a job.
 */
import { HttpError } from '../../http/http.js';

interface Waiter {
  start: () => void;
}

export class GenerationAdmission {
  private activeCount = 0;
  private readonly waiters: Waiter[] = [];
  /** Exponential moving average of a generation's duration, for Retry-After. */
  private avgServiceMs = 1000;
  rejected = 0;

  constructor(
    private readonly maxConcurrent: number,
    private readonly maxQueue: number,
  ) {
    if (!(Number.isInteger(maxConcurrent) && maxConcurrent >= 1))
      throw new TypeError(`maxConcurrent must be an integer >= 1, not ${maxConcurrent}`);
    if (!(Number.isInteger(maxQueue) && maxQueue >= 0))
      throw new TypeError(`maxQueue must be an integer >= 0, not ${maxQueue}`);
  }

  get active(): number {
    return this.activeCount;
  }

  get queued(): number {
    return this.waiters.length;
  }

  /** Seconds a refused client should wait: the time for the work ahead of it to drain. */
  retryAfterSeconds(): number {
    const ahead = this.activeCount + this.waiters.length;
    return Math.max(1, Math.ceil((this.avgServiceMs * ahead) / this.maxConcurrent / 1000));
  }

  /** Waits for a slot; the returned function frees it (idempotent). 429 HttpError when full. */
  async enter(signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted) throw clientGone();
    if (this.activeCount < this.maxConcurrent) {
      this.activeCount++;
      return this.leaver();
    }
    if (this.waiters.length >= this.maxQueue) {
      this.rejected++;
      const seconds = this.retryAfterSeconds();
      throw new HttpError(
        429,
        `the site is busy: ${this.activeCount} generations running and ${this.waiters.length} waiting; retry in ${seconds} s`,
        'rate_limit_exceeded',
        'overloaded_error',
        { 'retry-after': String(seconds) },
      );
    }
    await new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        start: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      const onAbort = () => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(clientGone());
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
    });
    return this.leaver();
  }

  private leaver(): () => void {
    const t0 = performance.now();
    let left = false;
    return () => {
      if (left) return;
      left = true;
      this.avgServiceMs = 0.8 * this.avgServiceMs + 0.2 * (performance.now() - t0);
      const next = this.waiters.shift();
      // The slot passes straight to the next waiter, so a burst cannot overtake the queue.
      if (next) next.start();
      else this.activeCount--;
    };
  }
}

function clientGone(): HttpError {
  return new HttpError(499, 'client closed the request', 'client_closed');
}
