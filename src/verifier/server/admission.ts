/**
 * Admission control for forward passes: at most `concurrency` run at once, at most `queueLimit`
 * wait, and anything past that is refused at once with 429 and a Retry-After estimated from recent
 * service times — a verifier that queues without bound only turns overload into timeouts for
 * everyone. Waiters whose client went away (AbortSignal) leave the queue without running.
 */
import { HttpError } from '../../http/http.js';

export interface AdmissionOptions {
  concurrency: number;
  queueLimit: number;
}

export interface AdmissionStats {
  active: number;
  queued: number;
  admitted: number;
  rejected: number;
}

interface Waiter {
  start: () => void;
  fail: (err: unknown) => void;
}

export class AdmissionQueue {
  private active = 0;
  private readonly waiters: Waiter[] = [];
  private admittedCount = 0;
  private rejectedCount = 0;
  /** Exponential moving average of one job's run time, for Retry-After. */
  private avgServiceMs = 50;

  constructor(private readonly opts: AdmissionOptions) {
    if (opts.concurrency < 1) throw new Error('admission concurrency must be >= 1');
    if (opts.queueLimit < 0) throw new Error('admission queue limit must be >= 0');
  }

  get stats(): AdmissionStats {
    return {
      active: this.active,
      queued: this.waiters.length,
      admitted: this.admittedCount,
      rejected: this.rejectedCount,
    };
  }

  /** Runs `job` when a slot frees up; throws HttpError 429 when the queue is full. */
  async run<T>(job: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    await this.enter(signal);
    const t0 = performance.now();
    try {
      return await job();
    } finally {
      this.avgServiceMs = 0.8 * this.avgServiceMs + 0.2 * (performance.now() - t0);
      this.leave();
    }
  }

  private enter(signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(clientGone());
    if (this.active < this.opts.concurrency) {
      this.active++;
      this.admittedCount++;
      return Promise.resolve();
    }
    if (this.waiters.length >= this.opts.queueLimit) {
      this.rejectedCount++;
      // Retry-After is whole seconds (RFC 9110); forward passes take milliseconds, so the estimate
      // also goes out in milliseconds for clients that understand it (ours do).
      const waitMs = Math.ceil(
        (this.avgServiceMs * (this.waiters.length + this.active)) / this.opts.concurrency,
      );
      throw new HttpError(
        429,
        `verifier overloaded: ${this.active} forward passes running and ${this.waiters.length} queued; retry later`,
        'queue_full',
        'overloaded_error',
        {
          'retry-after': String(Math.max(1, Math.ceil(waitMs / 1000))),
          'retry-after-ms': String(Math.max(1, waitMs)),
        },
      );
    }
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        start: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
        fail: reject,
      };
      const onAbort = () => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(clientGone());
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  private leave(): void {
    const next = this.waiters.shift();
    if (next) {
      this.admittedCount++;
      next.start();
    } else this.active--;
  }
}

function clientGone(): HttpError {
  return new HttpError(499, 'client closed the request', 'client_closed');
}
