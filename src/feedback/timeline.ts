/**
 * The feedback index (docs/formats.md, "Feedback index"): next to every report
 * `feedback/<site>/<seq>.json` the uploader writes an empty marker
 * `feedback-index/<time>/<site>/<seq>`, where `<time>` is the report object's own modification time
 * as the registry recorded it (a HEAD after the create). One listing of `feedback-index/` after a
 * time therefore finds every report the whole fleet uploaded since then, so the rollout controller
 * pays for what is new (feed.ts) instead of one listing per site per tick.
 *
 * The time is the registry's, not the site's: a site whose clock is late (or early) still files its
 * reports at the moment the registry received them, so the controller's lookback only has to cover
 * the seconds between a report's create and its marker's, not clock skew. Markers carry no data and
 * no signature: a marker only tells the controller which report to GET, and the report is verified
 * against the site's declared key like any other. A report without a marker (an older uploader, a
 * crash between the two writes) is still found by the controller's per-site fallback.
 */
import { EdgectlError } from '../foundation/errors.js';
import { feedbackIndexKey, feedbackKey } from '../registry/layout.js';
import type { PutIfAbsentResult, Store } from '../registry/store.js';

export interface PutReportResult {
  status: PutIfAbsentResult['status'];
  key: string;
  indexKey: string;
  /**
   * Why the marker could not be written, when the registry refused it (credentials scoped to
   * `feedback/<site>/` only): the report is uploaded all the same, and the controller's per-site
   * fallback (feed.ts) still reads it, minutes later instead of at the next tick.
   */
  indexRefused?: string;
}

/**
 * Uploads a signed report create-only, then its index marker (3 requests: PUT, HEAD, PUT). A
 * ConflictError from the report's create (different bytes under that seq) is thrown before any
 * marker is written. `now` is the fallback time when the backend reports no modification time.
 */
export async function putReport(
  store: Store,
  site: string,
  seq: number,
  bytes: Buffer,
  now: () => number = Date.now,
): Promise<PutReportResult> {
  const key = feedbackKey(site, seq);
  const res = await store.putIfAbsent(key, bytes);
  const info = await store.head(key);
  const indexKey = feedbackIndexKey(info?.modified ?? new Date(now()), site, seq);
  try {
    await store.putIfAbsent(indexKey, Buffer.alloc(0));
  } catch (err) {
    // Access denied is a deployment choice (older site credentials), not a transient failure:
    // retrying it forever would pile reports up in the spool, so the report counts as uploaded.
    if (err instanceof EdgectlError && err.code === 'E_ACCESS_DENIED') {
      return { status: res.status, key, indexKey, indexRefused: err.message };
    }
    throw err;
  }
  return { status: res.status, key, indexKey };
}
