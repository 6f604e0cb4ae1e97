/**
 * The index manifest (`index.json` at the root of an index directory, docs/formats.md "Index"): what an
 * index is built from and of. It pins the embedder (name, the content digest of its files, vector
 * dimension, context length) and the chunking parameters, counts passages, documents and tombstones,
 * carries the corpus' newest document time (freshness), and lists every segment and file with its
 * size and SHA-256, so a reader detects a corrupted or truncated file at open (exit 4) and a
 * publisher can chunk the directory like any artifact: segments never change once written, so an
 * update moves only its new segment and the tombstone file.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { UserError, NotFoundError } from '../foundation/errors.js';

export const INDEX_FORMAT = 'edgectl-index/1';
export const MANIFEST_FILE = 'index.json';
export const TOMBSTONES_FILE = 'tombstones.json';

const digest = z.string().regex(/^sha256:[0-9a-f]{64}$/, 'expected sha256:<64 lower-case hex>');
const relPath = z
  .string()
  .regex(/^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/, 'expected a relative path of [A-Za-z0-9._-] names')
  .refine((p) => !p.split('/').includes('..'), 'must not contain ..');

export const chunkingSchema = z
  .object({
    /** Passage length in words (whitespace-separated), at most. */
    maxWords: z.number().int().min(8).max(2048),
    /** Words repeated from the end of one passage at the start of the next. */
    overlapWords: z.number().int().min(0),
  })
  .strict()
  .refine((c) => c.overlapWords < c.maxWords / 2, 'overlapWords must be under half of maxWords');
export type Chunking = z.infer<typeof chunkingSchema>;
export const DEFAULT_CHUNKING: Chunking = { maxWords: 96, overlapWords: 16 };

export const indexFileSchema = z
  .object({ path: relPath, size: z.number().int().min(0), sha256: digest })
  .strict();
export type IndexFile = z.infer<typeof indexFileSchema>;

export const segmentSchema = z
  .object({
    name: z.string().regex(/^seg-[0-9]{6}$/),
    passages: z.number().int().min(0),
    documents: z.number().int().min(0),
    /** Whether the segment has an inverted-file (IVF) vector index; small segments are scanned exactly. */
    ivf: z.boolean(),
    files: z.array(indexFileSchema).min(1),
  })
  .strict();
export type SegmentEntry = z.infer<typeof segmentSchema>;

export const embedderInfoSchema = z
  .object({
    name: z.string().min(1),
    /** sha256 of the embedder's file list (embedderFilesDigest): the same for a directory and its published artifact. */
    digest,
    dim: z.number().int().min(1).max(8192),
    maxTokens: z.number().int().min(1),
  })
  .strict();
export type EmbedderInfo = z.infer<typeof embedderInfoSchema>;

export const indexManifestSchema = z
  .object({
    format: z.literal(INDEX_FORMAT),
    embedder: embedderInfoSchema,
    chunking: chunkingSchema,
    /** Live passages (tombstoned ones left out). */
    passages: z.number().int().min(0),
    /** Live documents. */
    documents: z.number().int().min(0),
    /** Passages stored in segments but deleted by the tombstone file (reclaimed by compaction). */
    tombstones: z.number().int().min(0),
    /** The newest live document's time (ISO 8601), the index's freshness. */
    newestDocumentTime: z.string().datetime({ offset: true }),
    segments: z.array(segmentSchema),
    /** The tombstone file (absent when nothing is deleted). */
    tombstoneFile: indexFileSchema.optional(),
  })
  .strict();
export type IndexManifest = z.infer<typeof indexManifestSchema>;

/** Reads and validates `<dir>/index.json`; exit 3 when absent, exit 2 naming the field when invalid. */
export function readIndexManifest(dir: string): IndexManifest {
  const path = join(dir, MANIFEST_FILE);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new NotFoundError(
      `${path}: no index here (${(err as NodeJS.ErrnoException).code ?? String(err)})`,
      {
        code: 'E_INDEX_NOT_FOUND',
        suggestion: 'Build one with `edgectl index build <corpus-dir> --embedder <dir> --out <dir>`.',
        details: { file: path },
      },
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new UserError(`${path}: invalid JSON (${(err as Error).message})`, {
      code: 'E_INDEX_MANIFEST',
      details: { file: path },
    });
  }
  const parsed = indexManifestSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue?.path.join('.') ?? '';
    throw new UserError(`${path}: ${field || '(root)'}: ${issue?.message ?? 'invalid'}`, {
      code: 'E_INDEX_MANIFEST',
      suggestion: `An ${INDEX_FORMAT} manifest is written by \`edgectl index build\`; rebuild the index.`,
      details: { file: path, field },
    });
  }
  return parsed.data;
}

/** Deterministic JSON of a manifest (2-space indented, trailing newline). */
export function manifestJson(m: IndexManifest): string {
  return `${JSON.stringify(m, null, 2)}\n`;
}
