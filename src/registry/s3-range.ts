/**
 * Ranged reads of the S3 backend (s3-store.ts `getRange`): one `GetObject` with a `Range` header,
 * refusing a server that returns more bytes than asked (it does not honour ranges), checking the
 * object's total size from Content-Range when the caller knows it (a chunk read from a pack whose
 * size the manifest records), and reporting a short read as the typed range error. An empty range
 * cannot be expressed in HTTP and is answered with a HEAD. Pack reads are described in
 * docs/formats.md (Packs).
 */
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { NotFoundError, OperationalError, VerificationError } from '../foundation/errors.js';
import { discard, readCapped, totalSize } from './bounded-io.js';
import { objectSizeMismatch } from './limits.js';
import { isNotFound, statusOf } from './s3-errors.js';
import type { ObjectInfo } from './store.js';

export interface RangeRead {
  client: S3Client;
  bucket: string;
  /** The store's URL, for messages. */
  url: string;
  key: string;
  /** The key inside the bucket (checked, with the store's prefix). */
  fullKey: () => string;
  start: number;
  end: number;
  /** The object's size the caller expects, if known. */
  objectSize: number | undefined;
  head: () => Promise<ObjectInfo | undefined>;
  /** Maps an unexpected SDK failure to the store's typed error (s3-errors.ts). */
  failure: (err: unknown) => Error;
  /** Bytes read, for the store's stats. */
  onBytes: (n: number) => void;
}

function missing(key: string): NotFoundError {
  return new NotFoundError(`registry object ${key} does not exist`, { details: { key } });
}

/** Checks a ranged response's total object size against `expected` (one HEAD if it is not given). */
async function checkObjectSize(
  r: RangeRead,
  contentRange: string | undefined,
  expected: number,
): Promise<void> {
  const size = totalSize(contentRange) ?? (await r.head())?.size;
  if (size === undefined) throw missing(r.key);
  if (size !== expected) throw objectSizeMismatch(r.key, expected, size);
}

export async function readRange(r: RangeRead): Promise<Buffer> {
  const { key, start, end } = r;
  if (end === start) {
    // HTTP cannot express an empty range; still report a missing object like a real read would.
    const info = await r.head();
    if (!info) throw missing(key);
    if (r.objectSize !== undefined && info.size !== r.objectSize)
      throw objectSizeMismatch(key, r.objectSize, info.size);
    return Buffer.alloc(0);
  }
  const Key = r.fullKey();
  const want = end - start;
  const overrun = () =>
    new VerificationError(`${r.url}: a read of ${key} [${start}, ${end}) returned more than ${want} bytes`, {
      code: 'E_RANGE_OVERRUN',
      suggestion: 'the S3 server does not honour ranged reads; use another S3-compatible server',
      details: { key, start, end },
    });
  let body: Buffer;
  try {
    const res = await r.client.send(
      new GetObjectCommand({ Bucket: r.bucket, Key, Range: `bytes=${start}-${end - 1}` }),
    );
    if (res.ContentLength !== undefined && res.ContentLength > want) {
      discard(res.Body);
      throw overrun();
    }
    if (r.objectSize !== undefined) {
      try {
        await checkObjectSize(r, res.ContentRange, r.objectSize);
      } catch (err) {
        discard(res.Body);
        throw err;
      }
    }
    body = await readCapped(res.Body, want, overrun);
  } catch (err) {
    if (err instanceof VerificationError || err instanceof OperationalError || err instanceof NotFoundError)
      throw err;
    if (isNotFound(err)) throw missing(key);
    if (statusOf(err) === 416) body = Buffer.alloc(0);
    else throw r.failure(err);
  }
  r.onBytes(body.length);
  if (body.length !== want) {
    throw new OperationalError(
      `registry object ${key} is shorter than the requested range [${start}, ${end})`,
      {
        code: 'E_RANGE',
        details: { key, start, end, got: body.length },
      },
    );
  }
  return body;
}
