/**
 * The S3 backend of the Store interface (docs/operations.md: The registry on S3, MinIO or R2), for AWS S3 and S3-compatible servers,
 * through @aws-sdk/client-s3. Endpoint, region and credentials come from the standard AWS
 * configuration (AWS_ENDPOINT_URL_S3, AWS_REGION, AWS_ACCESS_KEY_ID, profiles); path-style
 * addressing is the default when a custom endpoint is set (MinIO, s3rver, Ceph).
 *
 * Create-only writes send `If-None-Match: *` and HEAD first: the HEAD saves re-uploading an
 * object that is already there and gives the same-bytes/different-bytes answer on servers that
 * ignore the header (s3rver). Compare-and-swap sends `If-Match` (or `If-None-Match: *` to create).
 * Whether the server enforces these headers is probed from both sides by `registry init` and
 * `doctor` (s3-probe.ts). ETags are opaque CAS tokens here, never content digests (multipart ETags
 * are not MD5s), compared without their quotes; `If-Match` sends them as returned, and unquoted only
 * once the object is seen to still carry the expected ETag (Ceph RGW refuses its own quoted ETags),
 * so a stale ETag is never retried into a success. Error mapping lives in s3-errors.ts.
 *
 * The client's configuration (checksums, timeouts, attempts, request counting) is in s3-client.ts.
 */
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { createHash, randomBytes } from 'node:crypto';
import { ConflictError, OperationalError, VerificationError } from '../foundation/errors.js';
import { discard, readCapped } from './bounded-io.js';
import {
  conditionalWritesEnforced,
  type ConditionalWriteProbeResult,
  type EtagForm,
} from './conditional-writes.js';
import { sha256Hex } from '../foundation/digest.js';
import { BLOB_PREFIX } from './layout.js';
import { checkRange, effectiveMax, objectTooLarge, registryLimits, type RegistryLimits } from './limits.js';
import {
  emptyStats,
  type GetOptions,
  type GetResult,
  type ListOptions,
  type ObjectInfo,
  type PutIfAbsentResult,
  type RangeOptions,
  type Store,
  type StoreStats,
} from './store.js';
import {
  isConditionalConflict,
  isNotFound,
  isPreconditionFailed,
  registryWhere,
  retried,
  s3Failure,
  statusOf,
} from './s3-errors.js';
import { etagForms, ifMatchValue, runConditionalWriteProbe, sameEtag } from './s3-probe.js';
import { checkKey, checkPrefix, compareKeys } from './store-keys.js';
import { createS3Client, type S3StoreOptions } from './s3-client.js';
import { readRange } from './s3-range.js';

export type { S3StoreOptions } from './s3-client.js';

function md5Hex(body: Buffer): string {
  return createHash('md5').update(body).digest('hex');
}

export class S3Store implements Store {
  readonly url: string;
  readonly bucket: string;
  /** Key prefix inside the bucket, without slashes at either end ('' for the bucket root). */
  readonly prefix: string;
  readonly endpoint: string | undefined;
  enforcesConditionalWrites: boolean;
  /** The `If-Match` ETag form this server accepts, once probed or learned (see s3-probe.ts). */
  ifMatchForm: EtagForm | undefined;
  readonly stats: StoreStats = emptyStats();
  readonly limits: RegistryLimits;
  private readonly client: S3Client;
  private readonly multipartThreshold: number;
  private readonly partSize: number;

  constructor(bucket: string, prefix: string, opts: S3StoreOptions = {}) {
    const env = opts.env ?? process.env;
    this.bucket = bucket;
    this.prefix = prefix.replace(/^\/+|\/+$/g, '');
    this.url = `s3://${bucket}${this.prefix ? `/${this.prefix}` : ''}`;
    this.endpoint = opts.endpoint ?? (env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL || undefined);
    this.client = createS3Client(env, opts, this.endpoint, this.stats);
    this.multipartThreshold = opts.multipartThreshold ?? 16 * 1024 * 1024;
    this.partSize = opts.partSize ?? 8 * 1024 * 1024;
    this.enforcesConditionalWrites = opts.enforcesConditionalWrites ?? this.endpoint === undefined;
    this.limits = registryLimits(env, opts.limits);
    this.ifMatchForm = opts.ifMatchForm;
  }

  resetStats(): void {
    Object.assign(this.stats, emptyStats());
  }

  private fullKey(key: string): string {
    checkKey(key);
    return this.prefix ? `${this.prefix}/${key}` : key;
  }

  private where(): string {
    return registryWhere(this);
  }

  /** Turns an unexpected SDK failure into an error that says what to check (s3-errors.ts). */
  private failure(err: unknown, op: string, key?: string): Error {
    return s3Failure(this, err, op, key);
  }

  /**
   * A whole-object GET, bounded: the declared Content-Length is checked before the body is read,
   * and the body is counted while it streams (see readCapped).
   */
  private async getBounded(key: string, max: number, etag?: string): Promise<GetResult> {
    const res = await this.client.send(
      new GetObjectCommand({
        Bucket: this.bucket,
        Key: this.fullKey(key),
        ...(etag !== undefined ? { IfNoneMatch: etag } : {}),
      }),
    );
    if (res.ContentLength !== undefined && res.ContentLength > max) {
      discard(res.Body);
      throw objectTooLarge(key, res.ContentLength, max);
    }
    const body = await readCapped(res.Body, max, () => objectTooLarge(key, undefined, max));
    this.stats.bytesRead += body.length;
    return { key, size: body.length, etag: res.ETag ?? '', body };
  }

  async get(key: string, opts: GetOptions = {}): Promise<GetResult | undefined> {
    const max = effectiveMax(this.limits, key, opts.maxBytes);
    try {
      return await this.getBounded(key, max);
    } catch (err) {
      if (err instanceof VerificationError) throw err;
      if (isNotFound(err)) return undefined;
      throw this.failure(err, 'get', key);
    }
  }

  async getIfChanged(
    key: string,
    etag: string | undefined,
    opts: GetOptions = {},
  ): Promise<{ notModified: true; etag: string } | { notModified: false; object: GetResult } | undefined> {
    const max = effectiveMax(this.limits, key, opts.maxBytes);
    try {
      return { notModified: false, object: await this.getBounded(key, max, etag) };
    } catch (err) {
      if (err instanceof VerificationError) throw err;
      // The SDK reports 304 Not Modified as an error; it is the cheap, expected answer.
      if (statusOf(err) === 304 && etag !== undefined) return { notModified: true, etag };
      if (isNotFound(err)) return undefined;
      throw this.failure(err, 'get', key);
    }
  }

  async getRange(key: string, start: number, end: number, opts: RangeOptions = {}): Promise<Buffer> {
    checkRange(key, start, end);
    return readRange({
      client: this.client,
      bucket: this.bucket,
      url: this.url,
      key,
      fullKey: () => this.fullKey(key),
      start,
      end,
      objectSize: opts.objectSize,
      head: () => this.head(key),
      failure: (err) => this.failure(err, 'get range of', key),
      onBytes: (n) => (this.stats.bytesRead += n),
    });
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    const Key = this.fullKey(key);
    try {
      const res = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key }));
      return {
        key,
        size: res.ContentLength ?? 0,
        etag: res.ETag ?? '',
        ...(res.LastModified ? { modified: res.LastModified } : {}),
      };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw this.failure(err, 'head', key);
    }
  }

  async list(prefix: string, opts: ListOptions = {}): Promise<ObjectInfo[]> {
    checkPrefix(prefix);
    const base = this.prefix ? `${this.prefix}/` : '';
    // StartAfter is sent only with the first page; continuation tokens carry the position after it.
    const startAfter = opts.startAfter === undefined ? undefined : base + opts.startAfter;
    const out: ObjectInfo[] = [];
    let token: string | undefined;
    do {
      let res;
      try {
        res = await this.client.send(
          new ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix: base + prefix,
            ...(token ? { ContinuationToken: token } : startAfter ? { StartAfter: startAfter } : {}),
          }),
        );
      } catch (err) {
        throw this.failure(err, 'list', prefix);
      }
      for (const o of res.Contents ?? []) {
        if (!o.Key?.startsWith(base)) continue;
        if (startAfter !== undefined && o.Key <= startAfter) continue; // a server that ignores StartAfter
        out.push({
          key: o.Key.slice(base.length),
          size: o.Size ?? 0,
          etag: o.ETag ?? '',
          ...(o.LastModified ? { modified: o.LastModified } : {}),
        });
      }
      token = res.IsTruncated ? res.NextContinuationToken : undefined;
    } while (token);
    return out.sort((a, b) => compareKeys(a.key, b.key));
  }

  /** PUT (multipart above the threshold) with conditional headers; returns the new ETag. */
  private async put(
    key: string,
    body: Buffer,
    condition: { IfNoneMatch: '*' } | { IfMatch: string } | Record<string, never>,
  ): Promise<string> {
    const params = { Bucket: this.bucket, Key: this.fullKey(key), Body: body, ...condition };
    let etag: string | undefined;
    if (body.length > this.multipartThreshold) {
      const upload = new Upload({ client: this.client, params, partSize: this.partSize, queueSize: 4 });
      etag = (await upload.done()).ETag;
      // Some servers (Ceph RGW) leave the ETag out of the multipart completion as the SDK reads it;
      // an empty ETag would be a useless compare-and-swap token, so ask for it.
      if (!etag) etag = (await this.head(key))?.etag;
    } else {
      etag = (await this.client.send(new PutObjectCommand(params))).ETag;
    }
    this.stats.bytesWritten += body.length;
    return etag ?? '';
  }

  /**
   * Same bytes as an existing object? Blob keys name the SHA-256 of their content, so a blob whose
   * size matches and whose key is the digest of `body` is taken as equal without downloading it.
   */
  private async existingMatches(key: string, body: Buffer, existing: ObjectInfo): Promise<PutIfAbsentResult> {
    const sameSize = existing.size === body.length;
    if (sameSize && key.startsWith(BLOB_PREFIX) && key.slice(BLOB_PREFIX.length) === sha256Hex(body)) {
      return { status: 'exists', etag: existing.etag };
    }
    const current = sameSize ? await this.get(key) : undefined;
    if (current?.body.equals(body)) return { status: 'exists', etag: current.etag };
    throw new ConflictError(`registry object ${key} already exists with different content`, {
      code: 'E_EXISTS_DIFFERENT',
      details: { key, existingEtag: existing.etag },
    });
  }

  async putIfAbsent(key: string, body: Buffer): Promise<PutIfAbsentResult> {
    for (let attempt = 0; ; attempt++) {
      const existing = await this.head(key);
      if (existing) return this.existingMatches(key, body, existing);
      try {
        return { status: 'created', etag: await this.put(key, body, { IfNoneMatch: '*' }) };
      } catch (err) {
        // Lost a race with another creator (412) or hit one in flight (409): look again.
        if ((isPreconditionFailed(err) || isConditionalConflict(err)) && attempt < 4) continue;
        throw this.failure(err, 'put', key);
      }
    }
  }

  async compareAndSwap(key: string, body: Buffer, expectedEtag: string | undefined): Promise<string> {
    const conflict = (found: string | undefined) =>
      new ConflictError(
        `registry object ${key} was changed by another writer (expected ${expectedEtag ?? 'no object'}, found ${found ?? 'no object'})`,
        { code: 'E_CAS', details: { key, expected: expectedEtag ?? null, found: found ?? null } },
      );
    if (!this.enforcesConditionalWrites) {
      // The server ignores If-Match: at least catch a stale etag (this check is not atomic).
      const current = await this.head(key);
      if (!sameEtag(current?.etag, expectedEtag) && (current || expectedEtag)) throw conflict(current?.etag);
    }
    if (expectedEtag === undefined) {
      try {
        return await this.put(key, body, { IfNoneMatch: '*' });
      } catch (err) {
        if (isPreconditionFailed(err) || isConditionalConflict(err))
          throw conflict((await this.head(key))?.etag);
        throw this.failure(err, 'put', key);
      }
    }
    // Once a form is known (probed, or learned below) only that form is sent.
    const forms = this.ifMatchForm ? [this.ifMatchForm] : etagForms(expectedEtag);
    const refused: string[] = [];
    for (const form of forms) {
      const value = ifMatchValue(expectedEtag, form);
      try {
        const etag = await this.put(key, body, { IfMatch: value });
        this.ifMatchForm = form;
        return etag;
      } catch (err) {
        if (!isPreconditionFailed(err) && !isConditionalConflict(err) && !isNotFound(err))
          throw this.failure(err, 'put', key);
        const current = await this.head(key);
        if (!sameEtag(current?.etag, expectedEtag)) {
          // A write the SDK retried after a 5xx may have landed the first time: ours if the object
          // now holds exactly these bytes (single-part ETags are the MD5 of the content).
          if (retried(err) && current && sameEtag(current.etag, md5Hex(body))) return current.etag;
          throw conflict(current?.etag);
        }
        // 409: another conditional write is in flight on this object; it is about to move.
        if (isConditionalConflict(err)) throw conflict(current?.etag);
        // The object still has the expected ETag, so the server refused this form of it, not the
        // precondition: only then is the next form tried (a stale ETag never gets here).
        refused.push(`If-Match: ${value} -> HTTP ${statusOf(err) ?? '?'}`);
      }
    }
    throw new OperationalError(
      `${this.where()}: the server refused to replace ${key} although it still has the expected ETag ${expectedEtag} (${refused.join(', ')})`,
      {
        code: 'E_CAS_REFUSED',
        suggestion: 'run `edgectl doctor` to see how this server answers conditional writes',
        details: { key, expected: expectedEtag, refused },
      },
    );
  }

  async delete(key: string): Promise<void> {
    const Key = this.fullKey(key);
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key }));
    } catch (err) {
      if (isNotFound(err)) return;
      throw this.failure(err, 'delete', key);
    }
  }

  /**
   * Probes whether the server enforces create-only and compare-and-swap, from both sides, on a
   * scratch object under `edgectl-probe/` (deleted afterwards); see s3-probe.ts. Sets
   * `enforcesConditionalWrites` and the `If-Match` ETag form from the answers.
   */
  async probeConditionalWrites(): Promise<ConditionalWriteProbeResult> {
    const key = `edgectl-probe/${Date.now()}-${randomBytes(6).toString('hex')}`;
    try {
      const result = await runConditionalWriteProbe(async (body, condition) => {
        try {
          const res = await this.put(key, body, condition);
          return { accepted: true, status: 200, etag: res };
        } catch (err) {
          if (isPreconditionFailed(err) || isConditionalConflict(err))
            return { accepted: false, status: statusOf(err) ?? 412 };
          throw this.failure(err, 'probe write', key);
        }
      });
      this.enforcesConditionalWrites = conditionalWritesEnforced(result);
      this.ifMatchForm = result.ifMatchForm ?? undefined;
      return result;
    } finally {
      await this.delete(key).catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    this.client.destroy();
  }
}
