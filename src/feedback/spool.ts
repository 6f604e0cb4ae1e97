/**
 * The feedback spool: a crash-safe on-disk queue between the site runtime and the registry
 * (docs/formats.md "Feedback reports"). Closed windows become signed reports in `<dir>/<seq:012d>.json` and are then
 * uploaded create-only to `feedback/<site>/<seq:012d>.json` (with its marker in the fleet-wide
 * index, timeline.ts); a spool file is deleted only after the
 * registry holds exactly its bytes. Offline, files stay and uploads are retried with exponential
 * backoff; after a restart the spool resumes from its files.
 *
 * No loss and no double counting:
 * - seq numbers are never reused: the next seq is persisted (`next-seq.json`, temp + fsync +
 *   rename) BEFORE the report file that uses it is written, and on open the counter is raised past
 *   every spool file;
 * - a report is signed once and its bytes are what is uploaded, again and again if need be
 *   (Ed25519 and canonical JSON are deterministic anyway), so an upload retried after a crash finds
 *   `exists` with the same bytes and is a no-op;
 * - if the registry holds DIFFERENT bytes under a seq (the data directory was restored from an old
 *   backup or wiped), the report is renumbered past the registry's highest seq, never dropped.
 * A crash between persisting the counter and writing the file leaves a gap in the seqs, which
 * readers tolerate. One process (the site daemon) owns a spool directory at a time.
 */
import { mkdir, readFile, readdir, rename, rm, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { ConflictError, UserError } from '../foundation/errors.js';
import { fsyncDir, writeFileAtomic } from '../foundation/atomic-file.js';
import { decodeEnvelope, encodeEnvelope } from '../registry/envelope.js';
import type { KeyPair } from '../registry/keys.js';
import { feedbackKey, feedbackPrefix, parseSeqKey } from '../registry/layout.js';
import type { Store } from '../registry/store.js';
import { putReport } from './timeline.js';
import {
  FEEDBACK_REPORT_VERSION,
  signReport,
  verifyReport,
  type FeedbackReport,
  type FeedbackWindow,
} from './report.js';

export const COUNTER_FILE = 'next-seq.json';
export const REJECTED_DIR = 'rejected';
const SPOOL_FILE_RE = /^([0-9]{12})\.json$/;

export type SpoolEvent =
  | { kind: 'spooled'; seq: number; path: string }
  | { kind: 'uploaded'; seq: number; key: string; status: 'created' | 'exists'; indexRefused?: string }
  | { kind: 'renumbered'; from: number; to: number; reason: string }
  | { kind: 'upload-failed'; seq: number; error: string; attempt: number; retryInMs: number }
  | { kind: 'counter-recovered'; path: string; next: number; reason: string }
  | { kind: 'rejected-file'; path: string; reason: string };

export interface SpoolOptions {
  /** The spool directory (the site daemon uses `<data-dir>/feedback-spool`). */
  dir: string;
  site: string;
  key: KeyPair;
  store: Store;
  /** Milliseconds since the epoch (Date.now by default). */
  now?: () => number;
  /** Upload retry backoff: initialMs doubling up to maxMs, with jitter in [50%, 100%]. */
  backoff?: { initialMs?: number; maxMs?: number };
  /** Random number in [0, 1) for the jitter (Math.random by default). */
  random?: () => number;
  onEvent?: (event: SpoolEvent) => void;
}

export interface UploadResult {
  uploaded: number[];
  /** Seqs still in the spool after this pass. */
  pending: number[];
  /** Why the pass stopped early (the store failed); the spool keeps everything. */
  error?: string;
  /** When the next attempt is due (ms since the epoch); undefined when nothing failed. */
  nextAttemptAt?: number;
}

export function spoolFileName(seq: number): string {
  return `${String(seq).padStart(12, '0')}.json`;
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export class FeedbackSpool {
  private next = 1;
  private failures = 0;
  private nextAttempt: number | undefined;
  /** Serializes seq allocation, writes and uploads (the runtime may close a window mid-upload). */
  private chain: Promise<unknown> = Promise.resolve();
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly initialMs: number;
  private readonly maxMs: number;

  private constructor(private readonly opts: SpoolOptions) {
    this.now = opts.now ?? Date.now;
    this.random = opts.random ?? Math.random;
    this.initialMs = opts.backoff?.initialMs ?? 1_000;
    this.maxMs = opts.backoff?.maxMs ?? 300_000;
  }

  /** Opens (creating) the spool directory and recovers its state after a crash. */
  static async open(opts: SpoolOptions): Promise<FeedbackSpool> {
    feedbackPrefix(opts.site); // validates the site name before anything is written
    const spool = new FeedbackSpool(opts);
    await mkdir(opts.dir, { recursive: true, mode: 0o700 });
    await spool.recover();
    return spool;
  }

  get dir(): string {
    return this.opts.dir;
  }

  /** The seq the next report will get. */
  get nextSeq(): number {
    return this.next;
  }

  /** When the next upload attempt is due after failures (undefined: any time). */
  get nextAttemptAt(): number | undefined {
    return this.nextAttempt;
  }

  /** Signs the window as report `seq` (allocated and persisted first) and writes it to the spool. */
  enqueue(window: FeedbackWindow): Promise<number> {
    return this.serial(async () => {
      const seq = this.next;
      await this.persistCounter(seq + 1);
      await this.writeReport({ ...window, version: FEEDBACK_REPORT_VERSION, site: this.opts.site, seq });
      return seq;
    });
  }

  /** Seqs waiting in the spool, ascending. */
  async pending(): Promise<number[]> {
    const names = await readdir(this.opts.dir);
    return names
      .map((n) => SPOOL_FILE_RE.exec(n)?.[1])
      .filter((s): s is string => s !== undefined)
      .map(Number)
      .sort((a, b) => a - b);
  }

  /**
   * Uploads every spooled report, oldest first; stops at the first store failure (offline) and
   * schedules the next attempt with backoff. Never throws for store failures.
   */
  upload(): Promise<UploadResult> {
    return this.serial(async () => {
      const uploaded: number[] = [];
      for (const seq of await this.pending()) {
        try {
          const done = await this.uploadOne(seq);
          if (done !== undefined) uploaded.push(done);
        } catch (err) {
          this.failures++;
          const delay = this.backoffMs(this.failures);
          this.nextAttempt = this.now() + delay;
          this.opts.onEvent?.({
            kind: 'upload-failed',
            seq,
            error: describe(err),
            attempt: this.failures,
            retryInMs: delay,
          });
          return {
            uploaded,
            pending: await this.pending(),
            error: describe(err),
            nextAttemptAt: this.nextAttempt,
          };
        }
      }
      this.failures = 0;
      this.nextAttempt = undefined;
      return { uploaded, pending: await this.pending() };
    });
  }

  /** Backoff before attempt `failures + 1`: initial * 2^(failures-1), capped, times a jitter in [0.5, 1]. */
  backoffMs(failures: number): number {
    const base = Math.min(this.maxMs, this.initialMs * 2 ** Math.min(30, Math.max(0, failures - 1)));
    return Math.round(base * (0.5 + this.random() / 2));
  }

  // -------------------------------------------------------------------------------------------

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn, fn);
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** Uploads one spool file; returns the seq it was stored under, or undefined if it was set aside. */
  private async uploadOne(seq: number): Promise<number | undefined> {
    const path = join(this.opts.dir, spoolFileName(seq));
    const bytes = await readFile(path);
    let report: FeedbackReport;
    try {
      report = verifyReport(
        decodeEnvelope(bytes, path),
        { [this.opts.site]: this.publicKey() },
        {
          what: path,
          expectSite: this.opts.site,
          expectSeq: seq,
        },
      );
    } catch (err) {
      await this.setAside(path, describe(err));
      return undefined;
    }
    const key = feedbackKey(this.opts.site, seq);
    try {
      // The report, then its marker in the fleet-wide index (timeline.ts): a crash between the two
      // keeps the spool file, and the retry finds the report `exists` and writes the marker.
      const res = await putReport(this.opts.store, this.opts.site, seq, bytes, this.now);
      this.opts.onEvent?.({
        kind: 'uploaded',
        seq,
        key,
        status: res.status,
        ...(res.indexRefused ? { indexRefused: res.indexRefused } : {}),
      });
    } catch (err) {
      if (!(err instanceof ConflictError)) throw err;
      return this.renumber(report, path, `the registry holds a different report under ${key}`);
    }
    await unlink(path);
    await fsyncDir(this.opts.dir);
    return seq;
  }

  /** Moves a report to a seq past both the counter and the registry's highest, then uploads it. */
  private async renumber(report: FeedbackReport, path: string, reason: string): Promise<number | undefined> {
    const listed = await this.opts.store.list(feedbackPrefix(this.opts.site));
    const registryMax = Math.max(
      0,
      ...listed.map((o) => parseSeqKey(o.key, feedbackPrefix(this.opts.site)) ?? 0),
    );
    const seq = Math.max(this.next, registryMax + 1);
    await this.persistCounter(seq + 1);
    await this.writeReport({ ...report, seq });
    await unlink(path);
    await fsyncDir(this.opts.dir);
    this.opts.onEvent?.({ kind: 'renumbered', from: report.seq, to: seq, reason });
    return this.uploadOne(seq);
  }

  private async writeReport(report: FeedbackReport): Promise<void> {
    const bytes = encodeEnvelope(signReport(report, this.opts.key));
    const name = spoolFileName(report.seq);
    await writeFileAtomic(join(this.opts.dir, name), bytes, 0o600);
    this.opts.onEvent?.({ kind: 'spooled', seq: report.seq, path: join(this.opts.dir, name) });
  }

  private async persistCounter(next: number): Promise<void> {
    await writeFileAtomic(
      join(this.opts.dir, COUNTER_FILE),
      `${JSON.stringify({ site: this.opts.site, next })}\n`,
      0o600,
    );
    this.next = next;
  }

  private publicKey(): { keyid: string; key: string } {
    return { keyid: this.opts.key.keyid, key: Buffer.from(this.opts.key.publicKey).toString('base64') };
  }

  private async setAside(path: string, reason: string): Promise<void> {
    const dir = join(this.opts.dir, REJECTED_DIR);
    await mkdir(dir, { recursive: true });
    await rename(path, join(dir, `${path.split('/').pop()}.${this.now()}`));
    await fsyncDir(this.opts.dir);
    this.opts.onEvent?.({ kind: 'rejected-file', path, reason });
  }

  private async recover(): Promise<void> {
    const dir = this.opts.dir;
    // Temp files of writes a crash interrupted: their content never became a spool file.
    for (const name of await readdir(dir)) {
      if (name.startsWith('.') && name.endsWith('.tmp')) await rm(join(dir, name), { force: true });
    }
    const counterPath = join(dir, COUNTER_FILE);
    let persisted: number | undefined;
    let problem: string | undefined;
    try {
      const doc = JSON.parse(await readFile(counterPath, 'utf8')) as { site?: unknown; next?: unknown };
      if (doc.site !== this.opts.site) {
        throw new UserError(
          `${counterPath}: this feedback spool belongs to site "${String(doc.site)}", not "${this.opts.site}"`,
          {
            code: 'E_SPOOL_SITE',
            suggestion: 'each site needs its own data directory; check --data-dir',
            details: { path: counterPath },
          },
        );
      }
      if (!Number.isSafeInteger(doc.next) || (doc.next as number) < 1)
        problem = `next is ${String(doc.next)}`;
      else persisted = doc.next as number;
    } catch (err) {
      if (err instanceof UserError) throw err;
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') problem = describe(err);
    }
    // Never below a spooled seq; a lost counter with an empty spool restarts at 1, and a clash
    // with reports already in the registry is then resolved by renumbering on upload.
    const files = await this.pending();
    const next = Math.max(persisted ?? 1, (files.at(-1) ?? 0) + 1);
    if (next !== persisted) await this.persistCounter(next);
    if (problem !== undefined || (persisted !== undefined && next !== persisted)) {
      const reason = problem ?? `spool files beyond the counter (${persisted})`;
      this.opts.onEvent?.({ kind: 'counter-recovered', path: counterPath, next, reason });
    }
    this.next = next;
  }
}
