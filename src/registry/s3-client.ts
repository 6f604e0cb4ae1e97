/**
 * The S3 client under `S3Store` (s3-store.ts) and its options: endpoint, region and credentials
 * from the standard AWS configuration (AWS_ENDPOINT_URL_S3, AWS_REGION, AWS_ACCESS_KEY_ID,
 * profiles), path-style addressing when a custom endpoint is set, bounded timeouts and attempts so
 * an unreachable registry fails in seconds, the SDK's default request checksums off (they break
 * several S3-compatible stores; integrity comes from our own SHA-256 digests), and a middleware
 * counting every attempt into the store's stats. Settings are documented in docs/operations.md
 * (The registry on S3, MinIO or R2).
 */
import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import type { EtagForm } from './conditional-writes.js';
import type { RegistryLimits } from './limits.js';
import type { StoreStats } from './store.js';

export interface S3StoreOptions {
  /** Environment to read AWS settings from (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Default: EDGECTL_S3_FORCE_PATH_STYLE, else true when a custom endpoint is set. */
  forcePathStyle?: boolean;
  endpoint?: string;
  region?: string;
  /** Attempts per request including the first (default 3). */
  maxAttempts?: number;
  /** TCP connect timeout per attempt (default 3 s). */
  connectionTimeoutMs?: number;
  /** Socket inactivity timeout per attempt (default 10 s). */
  requestTimeoutMs?: number;
  /** Bodies larger than this go multipart (default 16 MiB). */
  multipartThreshold?: number;
  /** Multipart part size (default 8 MiB; S3's minimum is 5 MiB). */
  partSize?: number;
  /** Initial belief about conditional-write support until probed (default: true for AWS itself). */
  enforcesConditionalWrites?: boolean;
  /** Read caps over the defaults and the EDGECTL_MAX_*_BYTES variables of `env` (limits.ts). */
  limits?: Partial<RegistryLimits>;
  /** The `If-Match` ETag form to send (default: as returned, then unquoted when the server refuses it). */
  ifMatchForm?: EtagForm;
}

type Kind = 'gets' | 'puts' | 'heads' | 'lists' | 'deletes';
const COMMAND_KIND: Record<string, Kind> = {
  GetObjectCommand: 'gets',
  HeadObjectCommand: 'heads',
  ListObjectsV2Command: 'lists',
  DeleteObjectCommand: 'deletes',
  PutObjectCommand: 'puts',
  CreateMultipartUploadCommand: 'puts',
  UploadPartCommand: 'puts',
  CompleteMultipartUploadCommand: 'puts',
  AbortMultipartUploadCommand: 'puts',
};

function positiveInt(value: string | undefined): number | undefined {
  const n = Number(value);
  return value && Number.isInteger(n) && n > 0 ? n : undefined;
}

function envFlag(value: string | undefined): boolean | undefined {
  if (value === undefined || value === '') return undefined;
  return !['0', 'false', 'no', 'off'].includes(value.toLowerCase());
}

/** The configured client; every attempt (retries included) is counted into `stats`. */
export function createS3Client(
  env: NodeJS.ProcessEnv,
  opts: S3StoreOptions,
  endpoint: string | undefined,
  stats: StoreStats,
): S3Client {
  const region = opts.region ?? (env.AWS_REGION || env.AWS_DEFAULT_REGION || undefined);
  const config: S3ClientConfig = {
    forcePathStyle: opts.forcePathStyle ?? envFlag(env.EDGECTL_S3_FORCE_PATH_STYLE) ?? endpoint !== undefined,
    maxAttempts: opts.maxAttempts ?? positiveInt(env.AWS_MAX_ATTEMPTS) ?? 3,
    requestHandler: {
      connectionTimeout: opts.connectionTimeoutMs ?? 3_000,
      requestTimeout: opts.requestTimeoutMs ?? 10_000,
    },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  };
  if (endpoint) config.endpoint = endpoint;
  // A custom endpoint rarely cares about the region, but the SDK refuses to sign without one.
  if (region) config.region = region;
  else if (endpoint) config.region = 'us-east-1';
  if (env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY) {
    config.credentials = {
      accessKeyId: env.AWS_ACCESS_KEY_ID,
      secretAccessKey: env.AWS_SECRET_ACCESS_KEY,
      ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}),
    };
  }
  const client = new S3Client(config);
  // Counted per attempt (the deserialize step runs inside the retry loop), so retries show up.
  client.middlewareStack.add(
    (next, context) => async (args) => {
      stats.requests++;
      const kind = COMMAND_KIND[context.commandName ?? ''];
      if (kind) stats[kind]++;
      return next(args);
    },
    { step: 'deserialize', name: 'edgectlRequestCounter' },
  );
  return client;
}
