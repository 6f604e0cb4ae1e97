/**
 * The artifact manifest (docs/formats.md "Artifacts"; byte-level format in docs/formats.md "Artifacts"): its
 * zod schema and types, the structural checks a schema cannot express (sizes add up, every chunk
 * lies inside a listed blob, paths are safe and unique), and the manifest digest that refs and the
 * fleet log pin. A manifest is the signed DSSE payload (canonical JSON) stored at
 * `artifacts/<kind>/<name>/<version>.json`; its digest is the SHA-256 of those payload bytes, so it
 * does not change when signatures are added.
 *
 * Everything read from a registry goes through `parseManifest`, even after its signature verified:
 * a signed manifest is still untrusted input for the file system it is materialized into.
 */
import { z } from 'zod';
import { UserError, VerificationError } from '../foundation/errors.js';
import { canonicalJsonBytes } from '../foundation/canonical-json.js';
import { digestOf } from '../foundation/digest.js';
import { envelopePayloadBytes, type Envelope } from '../registry/envelope.js';
import { MAX_BLOB_BYTES, MAX_CHUNK_BYTES } from '../registry/limits.js';
import { CHUNKING_ALGORITHM } from './chunker.js';
import { pathProblem, pathSetProblem } from './paths.js';
import { ARTIFACT_KINDS, checkVersion } from './ref.js';

export const MANIFEST_SCHEMA = 'edgectl.artifact-manifest.v1';

const digest = z.string().regex(/^sha256:[0-9a-f]{64}$/, 'expected sha256:<64 lower-case hex>');
const size = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
/**
 * Chunk and blob sizes are capped (limits.ts) so that no reader allocates what a signed manifest
 * merely declares: a chunk is read into memory whole, and a blob's size bounds its ranged reads.
 */
const chunkSize = size.max(MAX_CHUNK_BYTES, {
  message: `larger than the ${MAX_CHUNK_BYTES} bytes a chunk may have`,
});
const blobSize = size.max(MAX_BLOB_BYTES, {
  message: `larger than the ${MAX_BLOB_BYTES} bytes a blob may have`,
});

export const chunkSchema = z.strictObject({
  /** SHA-256 of the chunk bytes. */
  digest,
  size: chunkSize.positive(),
  /** Digest of the blob (a pack) holding the chunk. */
  blob: digest,
  /** Byte offset of the chunk inside that blob. */
  offset: size,
});

export const fileSchema = z.strictObject({
  path: z.string().superRefine((p, ctx) => {
    const problem = pathProblem(p);
    if (problem) ctx.addIssue({ code: 'custom', message: `unsafe path "${p}": ${problem}` });
  }),
  size,
  sha256: digest,
  /** POSIX permission bits; only 0o755 (executable) or 0o644 are recorded. */
  mode: z.union([z.literal(0o755), z.literal(0o644)]).optional(),
  chunks: z.array(chunkSchema),
});

export const blobSchema = z.strictObject({ digest, size: blobSize });

export const manifestSchema = z.strictObject({
  schema: z.literal(MANIFEST_SCHEMA),
  kind: z.enum(ARTIFACT_KINDS),
  name: z.string().regex(/^[a-z0-9]([a-z0-9_-]{0,62}[a-z0-9])?$/),
  version: z.string().min(1),
  created: z.iso.datetime(),
  description: z.string().max(4096).optional(),
  /** Total bytes of all files. */
  size,
  /** Kind-specific facts found by the validator (role, base ref, layer counts...). */
  meta: z.record(z.string(), z.unknown()),
  chunking: z.strictObject({
    algorithm: z.literal(CHUNKING_ALGORITHM),
    min: chunkSize,
    avg: chunkSize,
    max: chunkSize,
  }),
  /** Every blob the chunks live in, with its full size (downloads are capped by it). */
  blobs: z.array(blobSchema),
  files: z.array(fileSchema),
});

export type Manifest = z.infer<typeof manifestSchema>;
export type ManifestFile = z.infer<typeof fileSchema>;
export type ManifestChunk = z.infer<typeof chunkSchema>;
export type ManifestBlob = z.infer<typeof blobSchema>;

function invalid(what: string, field: string, message: string): UserError {
  return new UserError(`${what}: invalid manifest: ${field ? `${field}: ` : ''}${message}`, {
    code: 'E_MANIFEST_INVALID',
    suggestion: 'the manifest was published by a faulty or malicious publisher; do not install it',
    details: { object: what, field },
  });
}

/** Checks what the schema cannot: totals, chunk placement, path set. Throws UserError (exit 2). */
export function checkManifestConsistency(m: Manifest, what: string): void {
  try {
    checkVersion(m.version);
  } catch (err) {
    throw invalid(what, 'version', (err as Error).message.replace(/^version: /, ''));
  }
  const blobSizes = new Map<string, number>();
  for (const [i, b] of m.blobs.entries()) {
    if (blobSizes.has(b.digest)) throw invalid(what, `blobs.${i}.digest`, `${b.digest} listed twice`);
    blobSizes.set(b.digest, b.size);
  }
  const paths = m.files.map((f) => f.path);
  const setProblem = pathSetProblem(paths);
  if (setProblem) throw invalid(what, 'files', `path "${setProblem.path}" ${setProblem.problem}`);
  let total = 0;
  for (const [i, f] of m.files.entries()) {
    let sum = 0;
    for (const [j, c] of f.chunks.entries()) {
      const field = `files.${i}.chunks.${j}`;
      const blobSize = blobSizes.get(c.blob);
      if (blobSize === undefined) throw invalid(what, `${field}.blob`, `${c.blob} is not listed in blobs`);
      if (c.offset + c.size > blobSize) {
        throw invalid(
          what,
          field,
          `chunk [${c.offset}, ${c.offset + c.size}) lies outside blob of ${blobSize} bytes`,
        );
      }
      if (c.size > m.chunking.max) throw invalid(what, `${field}.size`, `larger than the chunker maximum`);
      sum += c.size;
    }
    if (sum !== f.size)
      throw invalid(what, `files.${i}.size`, `${f.path}: chunks add up to ${sum}, not ${f.size}`);
    total += f.size;
  }
  if (total !== m.size) throw invalid(what, 'size', `files add up to ${total}, not ${m.size}`);
}

/**
 * Validates an untrusted manifest value (schema, then consistency). A size over a cap is refused as
 * a VerificationError (exit 4, E_MANIFEST_LIMIT): nothing it declares is ever allocated or read.
 */
export function parseManifest(value: unknown, what: string): Manifest {
  const result = manifestSchema.safeParse(value);
  if (!result.success) {
    const issues = result.error.issues;
    const tooBig = issues.find((i) => i.code === 'too_big' && i.origin === 'number');
    if (tooBig) {
      const field = tooBig.path.map(String).join('.');
      throw new VerificationError(`${what}: manifest refused: ${field}: ${tooBig.message}`, {
        code: 'E_MANIFEST_LIMIT',
        suggestion:
          'a manifest declaring sizes no publisher produces is damaged or hostile; do not install it',
        details: { object: what, field },
      });
    }
    const issue = issues[0];
    throw invalid(what, issue ? issue.path.map(String).join('.') : '', issue?.message ?? 'invalid');
  }
  checkManifestConsistency(result.data, what);
  return result.data;
}

/** Canonical payload bytes of a manifest (what is signed and digested). */
export function manifestBytes(m: Manifest): Buffer {
  return canonicalJsonBytes(m);
}

/** The manifest digest: SHA-256 of the canonical payload, i.e. of the DSSE payload bytes. */
export function manifestDigest(m: Manifest): string {
  return digestOf(manifestBytes(m));
}

/** The manifest digest of a stored envelope (its payload bytes; signatures do not count). */
export function envelopeManifestDigest(env: Envelope): string {
  return digestOf(envelopePayloadBytes(env));
}

/**
 * The content identity of a file list: what must match for a republish of the same version to be a
 * no-op (paths, sizes, hashes, modes), leaving out chunk placement, which depends on what the
 * registry already held when it was published.
 */
export function fileSetKey(
  files: readonly Pick<ManifestFile, 'path' | 'size' | 'sha256' | 'mode'>[],
): string {
  return JSON.stringify(
    [...files]
      .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
      .map((f) => [f.path, f.size, f.sha256, f.mode ?? 0o644]),
  );
}

/** Distinct chunks of a manifest (the same chunk may appear in several places). */
export function uniqueChunks(m: Manifest): ManifestChunk[] {
  const seen = new Map<string, ManifestChunk>();
  for (const f of m.files) for (const c of f.chunks) if (!seen.has(c.digest)) seen.set(c.digest, c);
  return [...seen.values()];
}
