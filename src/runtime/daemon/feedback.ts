/**
 * The daemon's feedback pipeline: the crash-safe spool in `<data-dir>/feedback-spool` (signed with
 * the site key, uploaded create-only to the registry) and the reporter that closes a window every
 * `windowMs`. This module adds what the daemon needs around them: the status counters shown in
 * `/v1/status` and Prometheus (kept from the spool's events, so reading them never touches the
 * disk), and the rule for which context a finished request counts in: a request served by the
 * installed generation counts under the latest applied fleet seq (a fleet change that did not touch
 * this site moves the seq, not the refs), one that finished on a replaced generation under the
 * context that generation was loaded with.
 */
import type { KeyPair } from '../../registry/keys.js';
import type { Store } from '../../registry/store.js';
import {
  FeedbackReporter,
  FeedbackSpool,
  type FeedbackContext,
  type RequestOutcome,
  type ShadowOutcome,
  type ShutdownResult,
  type SpoolEvent,
} from '../../feedback/index.js';
import type { DaemonFeedbackStatus } from '../contract.js';
import type { DaemonLog } from './log.js';
import { sameRefs } from './site-config.js';

export interface DaemonFeedbackOptions {
  dir: string;
  site: string;
  key: KeyPair;
  store: Store;
  windowMs: number;
  context: FeedbackContext;
  log: DaemonLog;
  backoff?: { initialMs?: number; maxMs?: number };
}

export class DaemonFeedback {
  private pending = new Set<number>();
  private uploaded = 0;
  private recorded = 0;
  private shadowRuns = 0;
  private lastUploadAt: string | null = null;
  private lastError: string | null = null;
  private current: FeedbackContext;
  private constructor(
    readonly spool: FeedbackSpool,
    readonly reporter: FeedbackReporter,
    context: FeedbackContext,
  ) {
    this.current = context;
  }

  static async open(opts: DaemonFeedbackOptions): Promise<DaemonFeedback> {
    // The spool reports events from open() on, before the object that counts them exists.
    const holder: { self?: DaemonFeedback } = {};
    const early: SpoolEvent[] = [];
    const spool = await FeedbackSpool.open({
      dir: opts.dir,
      site: opts.site,
      key: opts.key,
      store: opts.store,
      ...(opts.backoff ? { backoff: opts.backoff } : {}),
      onEvent: (e) => (holder.self ? holder.self.onSpoolEvent(e, opts.log) : early.push(e)),
    });
    const reporter = new FeedbackReporter({
      spool,
      context: opts.context,
      windowMs: opts.windowMs,
      onError: (err) => opts.log('error', 'feedback: window close or upload failed', { error: err }),
    });
    const self = new DaemonFeedback(spool, reporter, opts.context);
    holder.self = self;
    for (const p of await spool.pending()) self.pending.add(p);
    for (const e of early) self.onSpoolEvent(e, opts.log);
    if (self.pending.size > 0)
      opts.log('info', 'feedback: reports left in the spool by an earlier run', {
        pending: self.pending.size,
      });
    return self;
  }

  start(): void {
    this.reporter.start();
  }

  /** The context requests on the installed generation count in (a switch or a new applied seq). */
  setContext(context: FeedbackContext): void {
    this.current = context;
    this.reporter.setContext(context);
  }

  record(outcome: RequestOutcome, servedBy: FeedbackContext): void {
    this.recorded++;
    this.reporter.record({ ...outcome, context: sameRefs(servedBy, this.current) ? this.current : servedBy });
  }

  /** A finished shadow run of a request served by `servedBy` (rollout shadow steps). */
  recordShadow(outcome: ShadowOutcome, servedBy: FeedbackContext): void {
    this.shadowRuns++;
    this.reporter.recordShadow(outcome, sameRefs(servedBy, this.current) ? this.current : servedBy);
  }

  /** Shadow runs recorded by this process (for tests). */
  get recordedShadowRuns(): number {
    return this.shadowRuns;
  }

  /** Requests recorded by this process (for tests and the benchmark). */
  get recordedRequests(): number {
    return this.recorded;
  }

  status(): DaemonFeedbackStatus {
    return {
      spooled: this.pending.size,
      uploaded: this.uploaded,
      lastUploadAt: this.lastUploadAt,
      lastError: this.lastError,
    };
  }

  shutdown(uploadTimeoutMs: number): Promise<ShutdownResult> {
    return this.reporter.shutdown({ uploadTimeoutMs });
  }

  private onSpoolEvent(e: SpoolEvent, log: DaemonLog): void {
    switch (e.kind) {
      case 'spooled':
        this.pending.add(e.seq);
        log('debug', 'feedback: report spooled', { seq: e.seq });
        break;
      case 'uploaded':
        this.pending.delete(e.seq);
        this.uploaded++;
        this.lastUploadAt = new Date().toISOString();
        this.lastError = null;
        log('info', 'feedback: report uploaded', { seq: e.seq, status: e.status });
        if (e.indexRefused) {
          log(
            'warn',
            'feedback: index marker refused; the controller reads this site by its slower fallback',
            {
              seq: e.seq,
              error: e.indexRefused,
              fix: 'let the site credentials write feedback-index/ (docs/operations.md)',
            },
          );
        }
        break;
      case 'renumbered':
        this.pending.delete(e.from);
        log('warn', 'feedback: report renumbered', { from: e.from, to: e.to, reason: e.reason });
        break;
      case 'upload-failed':
        this.lastError = e.error;
        log('warn', 'feedback: upload failed; kept in the spool', {
          seq: e.seq,
          error: e.error,
          retryInMs: e.retryInMs,
        });
        break;
      case 'counter-recovered':
        log('warn', 'feedback: spool counter recovered', { next: e.next, reason: e.reason });
        break;
      case 'rejected-file':
        this.pending.delete(Number(/([0-9]{12})\.json$/.exec(e.path)?.[1]));
        log('error', 'feedback: invalid spool file set aside', { path: e.path, reason: e.reason });
        break;
    }
  }
}
