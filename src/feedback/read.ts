/**
 * Reading feedback for the rollout controller (docs/rollouts.md, docs/formats.md "Feedback reports"): lists a site's
 * reports in the registry after the last one seen (`afterSeq` becomes the list's `startAfter`, so
 * a poll costs requests for what is new, not for the site's whole history), verifies each against
 * the key declared for that site and returns them in seq order. The rollout controller reads new
 * reports through the fleet-wide index instead (feed.ts) and uses this per-site read as a fallback. Reports that fail verification (another key, a report claiming another site or
 * seq, a malformed payload) are ignored as docs/formats.md "Feedback reports" requires, but listed in `rejected` with the
 * reason so the controller can show them; they never abort the read.
 */
import { VerificationError } from '../foundation/errors.js';
import { mapConcurrent } from '../artifact/concurrency.js';
import { decodeEnvelope } from '../registry/envelope.js';
import { feedbackKey, feedbackPrefix, parseSeqKey } from '../registry/layout.js';
import type { Store } from '../registry/store.js';
import { verifyReport, type DeclaredSiteKeys, type FeedbackReport } from './report.js';

export interface ReadFeedbackOptions {
  /** Only reports with a seq above this (incremental polling). */
  afterSeq?: number;
  /** Only reports whose window ends at or after this time. */
  since?: Date;
  /** Parallel GETs (default 8). */
  concurrency?: number;
}

export interface ReadFeedbackResult {
  reports: FeedbackReport[];
  rejected: { key: string; reason: string }[];
  /** Highest seq seen (valid or not), to pass as `afterSeq` next time; 0 when none. */
  lastSeq: number;
}

export interface ReadReportResult {
  /** The verified report; undefined when missing (deleted by gc) or rejected. */
  report?: FeedbackReport;
  rejected?: { key: string; reason: string };
}

/** GETs and verifies report `seq` of `site` (one request); a bad report is `rejected`, never thrown. */
export async function readReport(
  store: Store,
  site: string,
  seq: number,
  declared: DeclaredSiteKeys,
): Promise<ReadReportResult> {
  const key = feedbackKey(site, seq);
  let obj;
  try {
    obj = await store.get(key);
  } catch (err) {
    // Over the feedback cap, refused before reading (E_OBJECT_TOO_LARGE): rejected like a bad report.
    if (!(err instanceof VerificationError)) throw err;
    return { rejected: { key, reason: err.message } };
  }
  if (!obj) return {}; // deleted between list and get (registry gc)
  try {
    return {
      report: verifyReport(decodeEnvelope(obj.body, key), declared, {
        what: key,
        expectSite: site,
        expectSeq: seq,
      }),
    };
  } catch (err) {
    return { rejected: { key, reason: err instanceof Error ? err.message : String(err) } };
  }
}

export async function readFeedback(
  store: Store,
  site: string,
  declared: DeclaredSiteKeys,
  opts: ReadFeedbackOptions = {},
): Promise<ReadFeedbackResult> {
  const prefix = feedbackPrefix(site);
  const afterSeq = opts.afterSeq ?? 0;
  const listed = await store.list(prefix, afterSeq > 0 ? { startAfter: feedbackKey(site, afterSeq) } : {});
  // The seq filter stays: a store (or wrapper) may ignore startAfter, and keys that do not parse
  // as seqs sort anywhere.
  const keys = listed
    .map((o) => ({ key: o.key, seq: parseSeqKey(o.key, prefix) }))
    .filter((k): k is { key: string; seq: number } => k.seq !== undefined && k.seq > afterSeq)
    .sort((a, b) => a.seq - b.seq);
  const rejected: ReadFeedbackResult['rejected'] = [];
  const results = await mapConcurrent(keys, opts.concurrency ?? 8, async ({ seq }) => {
    const read = await readReport(store, site, seq, declared);
    if (read.rejected) rejected.push(read.rejected);
    return read.report;
  });
  const since = opts.since?.getTime();
  const reports = results.filter(
    (r): r is FeedbackReport => r !== undefined && (since === undefined || Date.parse(r.windowEnd) >= since),
  );
  rejected.sort((a, b) => (a.key < b.key ? -1 : 1));
  return { reports, rejected, lastSeq: keys.at(-1)?.seq ?? afterSeq };
}
