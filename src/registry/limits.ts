/**
 * Size caps for reading registry objects (docs/formats.md "Size limits"). Nothing a registry serves
 * is buffered before its size is known to be within the cap of its kind: the Store checks the size
 * first (fstat on the directory backend, Content-Length on S3) and counts again while the bytes
 * stream in, so a server that lies about the length is cut off at the cap. A registry object over
 * its cap is refused as a VerificationError (exit 4), like any other object a registry must not hold.
 *
 * The kind of an object follows from its key (the registry layout), so every read is bounded even
 * when the caller does not name a cap. Caps that a large fleet may outgrow (the snapshot holds the
 * whole fleet state) are raised with environment variables, `EDGECTL_MAX_<KIND>_BYTES`; chunk and
 * blob sizes are part of the manifest format (manifest.ts) and are the same for every reader.
 */
import { OperationalError, UserError, VerificationError } from '../foundation/errors.js';
import {
  BLOB_PREFIX,
  FEEDBACK_PREFIX,
  FLEET_LOG_PREFIX,
  HEAD_KEY,
  SNAPSHOT_PREFIX,
  TRUST_ROOT_PREFIX,
  ARTIFACT_PREFIX,
} from './layout.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

/** Largest chunk a manifest may declare (the chunker's default maximum is 256 KiB). */
export const MAX_CHUNK_BYTES = 64 * MiB;
/** Largest blob (pack) a manifest may declare (packs are cut at 64 MiB). */
export const MAX_BLOB_BYTES = 1 * GiB;
/** Largest ranged read: the fetch planner merges chunks into ranges of at most 64 MiB plus a chunk. */
export const MAX_RANGE_BYTES = 256 * MiB;

export interface RegistryLimits {
  head: number;
  entry: number;
  snapshot: number;
  manifest: number;
  trustRoot: number;
  feedback: number;
  /** A whole blob read with `get` (ranged reads are bounded by MAX_RANGE_BYTES). */
  blob: number;
  /** Any other key. */
  other: number;
}

export type LimitKind = keyof RegistryLimits;

export const DEFAULT_LIMITS: Readonly<RegistryLimits> = {
  head: 64 * KiB,
  entry: 32 * MiB,
  snapshot: 256 * MiB,
  manifest: 64 * MiB,
  trustRoot: 512 * KiB,
  feedback: 1 * MiB,
  blob: MAX_BLOB_BYTES,
  other: 64 * MiB,
};

/** The environment variable that raises (or lowers) each configurable cap. */
export const LIMIT_ENV: Readonly<Partial<Record<LimitKind, string>>> = {
  head: 'EDGECTL_MAX_HEAD_BYTES',
  entry: 'EDGECTL_MAX_ENTRY_BYTES',
  snapshot: 'EDGECTL_MAX_SNAPSHOT_BYTES',
  manifest: 'EDGECTL_MAX_MANIFEST_BYTES',
  trustRoot: 'EDGECTL_MAX_TRUST_ROOT_BYTES',
  feedback: 'EDGECTL_MAX_FEEDBACK_BYTES',
};

/** A configured cap may not exceed this: one object is read into one Buffer. */
const CAP_CEILING = 2 * GiB - 1;

/** The caps: defaults, then the environment, then `overrides` (tests, embedders). */
export function registryLimits(
  env: NodeJS.ProcessEnv = process.env,
  overrides: Partial<RegistryLimits> = {},
): RegistryLimits {
  const out: RegistryLimits = { ...DEFAULT_LIMITS };
  for (const [kind, name] of Object.entries(LIMIT_ENV) as [LimitKind, string][]) {
    const text = env[name];
    if (text === undefined || text === '') continue;
    const value = Number(text);
    if (!/^[0-9]+$/.test(text) || !Number.isSafeInteger(value) || value < 1 || value > CAP_CEILING) {
      throw new UserError(`${name}=${text} is not a byte count between 1 and ${CAP_CEILING}`, {
        code: 'E_LIMIT_INVALID',
        suggestion: `set ${name} to a whole number of bytes, e.g. ${DEFAULT_LIMITS[kind] * 4}, or unset it`,
        details: { variable: name, value: text },
      });
    }
    out[kind] = value;
  }
  return { ...out, ...overrides };
}

/** The kind of a registry object, from its key. */
export function limitKindOf(key: string): LimitKind {
  if (key === HEAD_KEY) return 'head';
  if (key.startsWith(FLEET_LOG_PREFIX)) return 'entry';
  if (key.startsWith(SNAPSHOT_PREFIX)) return 'snapshot';
  if (key.startsWith(ARTIFACT_PREFIX)) return 'manifest';
  if (key.startsWith(TRUST_ROOT_PREFIX)) return 'trustRoot';
  if (key.startsWith(FEEDBACK_PREFIX)) return 'feedback';
  if (key.startsWith(BLOB_PREFIX)) return 'blob';
  return 'other';
}

/** The cap for reading `key` whole. */
export function limitFor(limits: RegistryLimits, key: string): number {
  return limits[limitKindOf(key)];
}

/**
 * The refusal of an object over its cap. `size` is what the registry declared (stat,
 * Content-Length) or, for a server that sent more than it declared, the bytes counted so far.
 */
export function objectTooLarge(key: string, size: number | undefined, max: number): VerificationError {
  const kind = limitKindOf(key);
  const env = LIMIT_ENV[kind];
  const what = size === undefined ? 'more than' : `${size} bytes, more than`;
  return new VerificationError(
    `registry object ${key} is ${what} the ${max} bytes a ${kind} may have: refused before reading it`,
    {
      code: 'E_OBJECT_TOO_LARGE',
      suggestion: env
        ? `if the registry really needs ${kind} objects this large, raise the cap with ${env}; otherwise the registry serves a damaged or hostile object`
        : 'the registry serves a damaged or hostile object; restore it from a backup',
      details: { key, kind, size: size ?? null, max, ...(env ? { variable: env } : {}) },
    },
  );
}

/** The cap a whole-object read of `key` gets: the caller's, never above the kind's. */
export function effectiveMax(limits: RegistryLimits, key: string, maxBytes: number | undefined): number {
  const cap = limitFor(limits, key);
  return maxBytes === undefined ? cap : Math.max(0, Math.min(maxBytes, cap));
}

/**
 * Validates a ranged read before anything is allocated or requested: a malformed range is a
 * RangeError (a caller bug); one longer than MAX_RANGE_BYTES is refused like an oversized object.
 */
export function checkRange(key: string, start: number, end: number): void {
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start) {
    throw new RangeError(`invalid byte range [${start}, ${end}) of ${key}`);
  }
  if (end - start > MAX_RANGE_BYTES) {
    throw new VerificationError(
      `a read of ${end - start} bytes of ${key} is more than the ${MAX_RANGE_BYTES} one ranged read may take`,
      { code: 'E_RANGE_TOO_LARGE', details: { key, start, end, max: MAX_RANGE_BYTES } },
    );
  }
}

/** The object a ranged read pinned to `expected` bytes has another size. */
export function objectSizeMismatch(key: string, expected: number, actual: number): OperationalError {
  return new OperationalError(`registry object ${key} is ${actual} bytes, not ${expected}`, {
    code: 'E_OBJECT_SIZE',
    details: { key, expected, actual },
  });
}
