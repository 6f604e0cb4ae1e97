/**
 * `registry gc`: deletes blobs no manifest references. Mark: read every manifest under
 * `artifacts/` and collect the blobs it lists; if any manifest cannot be read, gc stops without
 * deleting anything (it cannot know what that manifest needs). Sweep: list `blobs/sha256/` and
 * delete each unreferenced blob older than the grace period.
 *
 * Why a grace period: a publish uploads its packs first and writes its manifest last, so for the
 * length of a publish its packs are unreferenced. gc lists blobs before manifests, and only deletes
 * blobs last modified more than `grace` (default 24 h) before it started, so a publish that takes
 * less than the grace period never loses a pack. A blob whose age the backend does not report is
 * kept unless the grace is zero. `--dry-run` reports what would go without deleting.
 */
import { OperationalError, VerificationError } from '../foundation/errors.js';
import type { Io } from '../foundation/output.js';
import { decodeEnvelope, peekPayload } from '../registry/envelope.js';
import { ARTIFACT_PREFIX, BLOB_PREFIX, blobKey } from '../registry/layout.js';
import type { ObjectInfo, Store } from '../registry/store.js';
import { mapConcurrent } from './concurrency.js';
import { parseManifest } from './manifest.js';

export const DEFAULT_GC_GRACE_MS = 24 * 60 * 60 * 1000;

export interface GcOptions {
  store: Store;
  dryRun: boolean;
  /** Unreferenced blobs younger than this are kept (default 24 h). */
  graceMs?: number;
  now?: () => Date;
  io: Io;
  concurrency?: number;
}

export interface GcResult {
  dryRun: boolean;
  graceSeconds: number;
  manifests: number;
  blobs: number;
  referenced: number;
  /** Unreferenced blobs deleted (or that would be, with --dry-run). */
  deleted: number;
  bytesFreed: number;
  /** Unreferenced blobs kept because they are younger than the grace period (or of unknown age). */
  keptYoung: number;
  /** Keys deleted (or to delete). */
  deletedKeys: string[];
  requests: number;
}

/** Blob digests every manifest in the registry references. */
export async function referencedBlobs(
  store: Store,
  concurrency = 8,
): Promise<{ blobs: Set<string>; manifests: number }> {
  const objects = (await store.list(ARTIFACT_PREFIX)).filter((o) => o.key.endsWith('.json'));
  const referenced = new Set<string>();
  await mapConcurrent(objects, concurrency, async (o) => {
    const refuse = (why: string) =>
      new OperationalError(`gc stopped, nothing deleted: cannot read manifest ${o.key}: ${why}`, {
        code: 'E_GC_MANIFEST',
        suggestion: `inspect ${o.key}; gc only runs when every manifest can be read`,
        details: { key: o.key },
      });
    // The store refuses a manifest over its cap before reading it (E_OBJECT_TOO_LARGE).
    const obj = await store.get(o.key).catch((err: unknown) => {
      throw err instanceof VerificationError ? refuse(err.message) : err;
    });
    if (!obj) return; // deleted meanwhile: it references nothing any more
    let manifest;
    try {
      manifest = parseManifest(peekPayload(decodeEnvelope(obj.body, o.key), o.key), o.key);
    } catch (err) {
      throw refuse((err as Error).message);
    }
    for (const b of manifest.blobs) referenced.add(b.digest);
  });
  return { blobs: referenced, manifests: objects.length };
}

export async function gcRegistry(opts: GcOptions): Promise<GcResult> {
  const { store, io } = opts;
  const start = store.stats.requests;
  const startedAt = (opts.now ?? (() => new Date()))();
  const graceMs = opts.graceMs ?? DEFAULT_GC_GRACE_MS;
  // Blobs first, manifests second: a manifest written after the blob listing can only reference
  // blobs that are either in the listing (then marked) or not (then not swept).
  const blobs = await store.list(BLOB_PREFIX);
  const { blobs: referenced, manifests } = await referencedBlobs(store, opts.concurrency);
  const doomed: ObjectInfo[] = [];
  let keptYoung = 0;
  for (const b of blobs) {
    const digest = `sha256:${b.key.slice(BLOB_PREFIX.length)}`;
    if (referenced.has(digest)) continue;
    const old =
      graceMs === 0 || (b.modified !== undefined && startedAt.getTime() - b.modified.getTime() > graceMs);
    if (old) doomed.push(b);
    else keptYoung++;
  }
  if (!opts.dryRun) {
    await mapConcurrent(doomed, opts.concurrency ?? 8, async (b) => {
      // Re-check against the key form so a listing bug can never delete something else.
      if (b.key !== blobKey(`sha256:${b.key.slice(BLOB_PREFIX.length)}`)) return;
      await store.delete(b.key);
      io.log('debug', `deleted ${b.key}`);
    });
  }
  return {
    dryRun: opts.dryRun,
    graceSeconds: Math.round(graceMs / 1000),
    manifests,
    blobs: blobs.length,
    referenced: blobs.length - doomed.length - keptYoung,
    deleted: doomed.length,
    bytesFreed: doomed.reduce((n, b) => n + b.size, 0),
    keptYoung,
    deletedKeys: doomed.map((b) => b.key),
    requests: store.stats.requests - start,
  };
}
