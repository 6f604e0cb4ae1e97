/**
 * Key builders for the registry layout (docs/formats.md, docs/operations.md "The registry on S3, MinIO or R2"). Every module names registry objects
 * through these functions, so the layout is defined once and every path component is validated
 * before it becomes part of a key.
 *
 *   trust/root/<version>.json                 DSSE(root)
 *   blobs/sha256/<hex>                        chunk or pack bytes
 *   artifacts/<kind>/<name>/<version>.json    DSSE(artifact manifest)
 *   fleet/log/<seq:012d>.json                 DSSE(fleet entry)
 *   fleet/snapshots/<seq:012d>.json           DSSE(snapshot)
 *   fleet/head.json                           DSSE(head), the only mutable object
 *   feedback/<site>/<seq:012d>.json           DSSE(feedback report)
 *   feedback-index/<time>/<site>/<seq:012d>   empty marker: a report, ordered by registry time
 */
import { digestHex } from '../foundation/digest.js';

export const TRUST_ROOT_PREFIX = 'trust/root/';
export const BLOB_PREFIX = 'blobs/sha256/';
export const ARTIFACT_PREFIX = 'artifacts/';
export const FLEET_LOG_PREFIX = 'fleet/log/';
export const SNAPSHOT_PREFIX = 'fleet/snapshots/';
export const HEAD_KEY = 'fleet/head.json';
export const FEEDBACK_PREFIX = 'feedback/';
/** Outside `feedback/` so that no site name (a `feedback/<site>/` prefix) can collide with it. */
export const FEEDBACK_INDEX_PREFIX = 'feedback-index/';

/** Path components: letters, digits and `._+-`, not starting with a dot (so never `.` or `..`). */
const SEGMENT_RE = /^[A-Za-z0-9_+-][A-Za-z0-9._+-]*$/;

function segment(value: string, what: string): string {
  if (!SEGMENT_RE.test(value) || value.length > 200) {
    throw new TypeError(`invalid ${what} for a registry key: ${JSON.stringify(value)}`);
  }
  return value;
}

function seqPart(seq: number, what: string): string {
  if (!Number.isSafeInteger(seq) || seq < 0 || seq > 999_999_999_999) {
    throw new TypeError(`invalid ${what}: ${seq}`);
  }
  return String(seq).padStart(12, '0');
}

export function blobKey(digest: string): string {
  return `${BLOB_PREFIX}${digestHex(digest)}`;
}

export function artifactKey(kind: string, name: string, version: string): string {
  return `${ARTIFACT_PREFIX}${segment(kind, 'kind')}/${segment(name, 'name')}/${segment(version, 'version')}.json`;
}

export function trustRootKey(version: number): string {
  if (!Number.isSafeInteger(version) || version < 1)
    throw new TypeError(`invalid trust root version: ${version}`);
  return `${TRUST_ROOT_PREFIX}${version}.json`;
}

export function fleetLogKey(seq: number): string {
  return `${FLEET_LOG_PREFIX}${seqPart(seq, 'fleet log seq')}.json`;
}

export function snapshotKey(seq: number): string {
  return `${SNAPSHOT_PREFIX}${seqPart(seq, 'snapshot seq')}.json`;
}

export function feedbackPrefix(site: string): string {
  return `${FEEDBACK_PREFIX}${segment(site, 'site name')}/`;
}

export function feedbackKey(site: string, seq: number): string {
  return `${feedbackPrefix(site)}${seqPart(seq, 'feedback seq')}.json`;
}

/** `20261206T084641.123Z`: fixed width, so keys sort by time (years 0000-9999). */
function compactTime(t: Date): string {
  const ms = t.getTime();
  if (!Number.isFinite(ms) || t.getUTCFullYear() < 0 || t.getUTCFullYear() > 9999) {
    throw new TypeError(`invalid feedback index time: ${String(t)}`);
  }
  return t.toISOString().replace(/[-:]/g, '');
}

/** Start of every index key at or after `t` (a `startAfter` for listing from `t` on). */
export function feedbackIndexFrom(t: Date): string {
  return `${FEEDBACK_INDEX_PREFIX}${compactTime(t)}`;
}

/** The index marker of report `seq` of `site`, stored at registry time `t`. */
export function feedbackIndexKey(t: Date, site: string, seq: number): string {
  return `${feedbackIndexFrom(t)}/${segment(site, 'site name')}/${seqPart(seq, 'feedback seq')}`;
}

/** Time, site and seq of a `feedback-index/<time>/<site>/<seq:012d>` key, or undefined. */
export function parseFeedbackIndexKey(key: string): { time: Date; site: string; seq: number } | undefined {
  const m =
    /^feedback-index\/([0-9]{4})([0-9]{2})([0-9]{2})T([0-9]{2})([0-9]{2})([0-9]{2}\.[0-9]{3})Z\/([^/]+)\/([0-9]{12})$/.exec(
      key,
    );
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, site, seq] = m as unknown as string[];
  const time = new Date(`${y}-${mo}-${d}T${h}:${mi}:${s}Z`);
  if (Number.isNaN(time.getTime()) || !SEGMENT_RE.test(site as string)) return undefined;
  return { time, site: site as string, seq: Number(seq) };
}

/** Version of a `trust/root/<version>.json` key, or undefined for any other key. */
export function parseTrustRootKey(key: string): number | undefined {
  const m = /^trust\/root\/([1-9][0-9]*)\.json$/.exec(key);
  return m?.[1] === undefined ? undefined : Number(m[1]);
}

/** Seq of a `<prefix><seq:012d>.json` key (fleet log, snapshots, feedback), or undefined. */
export function parseSeqKey(key: string, prefix: string): number | undefined {
  if (!key.startsWith(prefix)) return undefined;
  const m = /^([0-9]{12})\.json$/.exec(key.slice(prefix.length));
  return m?.[1] === undefined ? undefined : Number(m[1]);
}
