/**
 * How the S3 backend reads the AWS SDK's errors: which answers mean "missing", "precondition
 * failed" or "conflicting conditional write", and the typed error (with the fix to try) for every
 * other failure: unreachable, misconfigured, bucket missing, access denied, a server failing with
 * 5xx after the SDK's bounded retries, or any other I/O error. Kept apart from s3-store.ts so the
 * store's methods stay about requests.
 */
import { ConflictError, OperationalError, UserError } from '../foundation/errors.js';

/** Where a store points, for messages. */
export interface S3Location {
  url: string;
  bucket: string;
  endpoint: string | undefined;
}

export function registryWhere(at: S3Location): string {
  return `the registry at ${at.url}${at.endpoint ? ` (endpoint ${at.endpoint})` : ''}`;
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  'ECONNABORTED',
]);

interface SdkError {
  name?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
}

export function statusOf(err: unknown): number | undefined {
  return (err as SdkError | null)?.$metadata?.httpStatusCode;
}

function nameOf(err: unknown): string {
  return (err as SdkError | null)?.name ?? '';
}

/**
 * A missing object. A missing bucket is also a 404 but must not read as an empty registry; HEAD
 * responses carry no error body, so there the two look alike and the next GET, PUT or LIST tells.
 */
export function isNotFound(err: unknown): boolean {
  if (nameOf(err) === 'NoSuchBucket') return false;
  return statusOf(err) === 404 || nameOf(err) === 'NoSuchKey' || nameOf(err) === 'NotFound';
}

export function isPreconditionFailed(err: unknown): boolean {
  return statusOf(err) === 412 || nameOf(err) === 'PreconditionFailed';
}

/** 409 ConditionalRequestConflict: a concurrent conditional write is in flight; AWS says retry. */
export function isConditionalConflict(err: unknown): boolean {
  return statusOf(err) === 409 || nameOf(err) === 'ConditionalRequestConflict';
}

/** Whether the SDK sent the request more than once (it retries 5xx and network errors). */
export function retried(err: unknown): boolean {
  return ((err as { $metadata?: { attempts?: number } } | null)?.$metadata?.attempts ?? 1) > 1;
}

/** Turns an unexpected SDK failure into an error that says what to check. */
export function s3Failure(at: S3Location, err: unknown, op: string, key?: string): Error {
  if (err instanceof OperationalError || err instanceof UserError || err instanceof ConflictError) return err;
  const e = (err ?? {}) as SdkError;
  const where = registryWhere(at);
  const message = e.message ?? String(err);
  const status = statusOf(err);
  if (
    (e.code && NETWORK_CODES.has(e.code)) ||
    e.name === 'TimeoutError' ||
    e.name === 'RequestTimeout' ||
    /socket hang up|timed out|ECONNREFUSED|getaddrinfo/i.test(message)
  ) {
    return new OperationalError(`${where} is unreachable: ${message}`, {
      code: 'E_REGISTRY_UNREACHABLE',
      suggestion:
        'check the registry URL and AWS_ENDPOINT_URL_S3, that the S3 server is running, and your network or proxy',
      details: { url: at.url, endpoint: at.endpoint ?? null, operation: op },
      cause: err,
    });
  }
  if (/Region is missing/i.test(message)) {
    return new UserError(`${where}: no AWS region configured`, {
      code: 'E_S3_CONFIG',
      suggestion: 'set AWS_REGION (or a region in your AWS profile)',
    });
  }
  if (/Could not load credentials/i.test(message)) {
    return new UserError(`${where}: no AWS credentials found`, {
      code: 'E_S3_CONFIG',
      suggestion: 'set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE',
    });
  }
  if (e.name === 'NoSuchBucket') {
    return new OperationalError(`${where}: bucket ${at.bucket} does not exist`, {
      code: 'E_NO_BUCKET',
      suggestion: `create the bucket ${at.bucket}, or fix the registry URL`,
    });
  }
  if (
    status === 403 ||
    ['AccessDenied', 'InvalidAccessKeyId', 'SignatureDoesNotMatch'].includes(e.name ?? '')
  ) {
    return new OperationalError(
      `${where}: access to bucket ${at.bucket} denied for ${op}${key ? ` ${key}` : ''} (${e.name ?? status})`,
      {
        code: 'E_ACCESS_DENIED',
        suggestion: `check the AWS credentials (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE) and that they may use bucket ${at.bucket}`,
        details: { bucket: at.bucket, operation: op, key: key ?? null, name: e.name ?? null },
      },
    );
  }
  const attempts = (err as { $metadata?: { attempts?: number } } | null)?.$metadata?.attempts ?? 1;
  if (status !== undefined && status >= 500) {
    // The SDK already retried with backoff; say how often so the bound is visible.
    return new OperationalError(
      `${where}: ${op}${key ? ` ${key}` : ''} failed after ${attempts} attempt${attempts === 1 ? '' : 's'}: the server answered HTTP ${status} (${e.name ?? 'Error'})`,
      {
        code: 'E_REGISTRY_UNAVAILABLE',
        suggestion:
          'the S3 server is failing: check its health and logs, then run the command again (AWS_MAX_ATTEMPTS sets how often edgectl retries)',
        details: { operation: op, key: key ?? null, status, attempts },
        cause: err,
      },
    );
  }
  return new OperationalError(
    `${where}: ${op}${key ? ` ${key}` : ''} failed: ${e.name ?? 'Error'}${status ? ` (HTTP ${status})` : ''}: ${message}`,
    {
      code: 'E_REGISTRY_IO',
      details: { operation: op, key: key ?? null, status: status ?? null },
      cause: err,
    },
  );
}
