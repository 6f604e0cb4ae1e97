/**
 * The feedback reporter: what the site daemon holds. It feeds request outcomes to the accumulator,
 * closes a window every `windowMs` into the spool, uploads on its own schedule (right after each
 * window, and on the spool's backoff while the registry is unreachable), and on graceful shutdown
 * flushes the open window into the spool and makes one last upload attempt. Anything not uploaded
 * stays spooled for the next start. Timers are unref'd so they never keep a process alive.
 */
import {
  FeedbackAccumulator,
  type FeedbackContext,
  type RequestOutcome,
  type ShadowOutcome,
} from './accumulator.js';
import type { FeedbackSpool, UploadResult } from './spool.js';

export interface ReporterOptions {
  spool: FeedbackSpool;
  context: FeedbackContext;
  /** Window length (default 60 s). */
  windowMs?: number;
  now?: () => number;
  /** Reports a failure of a background window close or upload (the daemon logs it). */
  onError?: (err: unknown) => void;
}

export interface ShutdownResult {
  /** Seqs spooled from the window that was open. */
  spooled: number[];
  upload: UploadResult;
}

export class FeedbackReporter {
  readonly accumulator: FeedbackAccumulator;
  private readonly spool: FeedbackSpool;
  private readonly windowMs: number;
  private readonly now: () => number;
  private windowTimer: NodeJS.Timeout | undefined;
  private uploadTimer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly opts: ReporterOptions) {
    this.spool = opts.spool;
    this.windowMs = opts.windowMs ?? 60_000;
    this.now = opts.now ?? Date.now;
    this.accumulator = new FeedbackAccumulator(opts.context, this.now());
  }

  record(outcome: RequestOutcome): void {
    this.accumulator.record(outcome);
  }

  recordShadow(outcome: ShadowOutcome, context?: FeedbackContext): void {
    this.accumulator.recordShadow(outcome, context);
  }

  setContext(context: FeedbackContext): void {
    this.accumulator.setContext(context, this.now());
  }

  /** Closes the open window and spools its segments; returns their seqs. */
  async closeWindow(): Promise<number[]> {
    const seqs: number[] = [];
    for (const w of this.accumulator.closeWindow(this.now())) seqs.push(await this.spool.enqueue(w));
    return seqs;
  }

  upload(): Promise<UploadResult> {
    return this.spool.upload();
  }

  /** Starts the window and upload timers; uploads what an earlier run left in the spool. */
  start(): void {
    this.stopped = false;
    this.windowTimer = setInterval(() => {
      void this.closeWindow()
        .then(() => this.scheduleUpload(0))
        .catch((err: unknown) => this.opts.onError?.(err));
    }, this.windowMs);
    this.windowTimer.unref();
    this.scheduleUpload(0);
  }

  /** Stops the timers, spools the open window and tries one upload (bounded by `uploadTimeoutMs`). */
  async shutdown(opts: { uploadTimeoutMs?: number } = {}): Promise<ShutdownResult> {
    this.stopped = true;
    clearInterval(this.windowTimer);
    clearTimeout(this.uploadTimer);
    const spooled = await this.closeWindow();
    const timeoutMs = opts.uploadTimeoutMs ?? 5_000;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<UploadResult>((resolve) => {
      timer = setTimeout(
        () =>
          void this.spool
            .pending()
            .then((pending) =>
              resolve({ uploaded: [], pending, error: `upload timed out after ${timeoutMs} ms` }),
            ),
        timeoutMs,
      );
      timer.unref();
    });
    const upload = await Promise.race([this.spool.upload(), timedOut]);
    clearTimeout(timer);
    return { spooled, upload };
  }

  private scheduleUpload(delayMs: number): void {
    if (this.stopped) return;
    clearTimeout(this.uploadTimer);
    this.uploadTimer = setTimeout(() => {
      void this.spool
        .upload()
        .then((r) => {
          if (r.nextAttemptAt !== undefined) this.scheduleUpload(Math.max(0, r.nextAttemptAt - this.now()));
        })
        .catch((err: unknown) => this.opts.onError?.(err));
    }, delayMs);
    this.uploadTimer.unref();
  }
}
