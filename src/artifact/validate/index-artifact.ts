/**
 * Validation of `index` artifacts (docs/formats.md "Index artifacts"): a directory built by
 * `edgectl index build` whose root holds `index.json` (format `edgectl-index/1`: the embedder it
 * was built with, the chunking parameters, counts, the newest document time and the segment files)
 * next to the segment files themselves. `lint` checks the directory alone (schema, chunking present,
 * every listed segment file shipped); publish also checks that the embedder the index pins is a
 * model artifact in the registry, because a site can only embed a query with that exact model: an
 * index whose embedder is missing is refused (E_INDEX_EMBEDDER, exit 2) before anything uploads.
 *
 * The embedder is pinned by `embedder.digest`: the digest of the model's file list (`filesDigest`,
 * as the index engine computes it from the directory it ran) or the model artifact's manifest
 * digest; `embedder.name` is the model's name or a model ref. The resolved ref and manifest digest go into the manifest's `meta`, so a site
 * fetches exactly that embedder beside the index (src/site/index-embedders.ts).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { UserError } from '../../foundation/errors.js';
import { modelRole } from '../model-role.js';
import { EMBEDDER_HINT_FILE, embedderDirFiles, embedderFilesDigest } from '../../index/index.js';
import { listArtifacts, readManifest } from '../manifest-store.js';
import { parseRef } from '../ref.js';
import {
  invalidFile,
  parseJsonObject,
  requireFiles,
  type LocalValidateContext,
  type Meta,
  type ValidateContext,
} from './common.js';

export const INDEX_FILE = 'index.json';
export const INDEX_FORMAT = 'edgectl-index/1';

const count = z.number().int().nonnegative();
const fileEntry = z.looseObject({ path: z.string().min(1) });
const segmentSchema = z.looseObject({ files: z.array(fileEntry).min(1, 'a segment lists its files') });

/** The fields of index.json edgectl relies on outside the index engine (the rest is the engine's). */
export const indexJsonSchema = z.looseObject({
  format: z.literal(INDEX_FORMAT, { error: `expected "${INDEX_FORMAT}"` }),
  embedder: z.looseObject({
    name: z.string().min(1),
    digest: z.string().regex(/^sha256:[0-9a-f]{64}$/, 'expected sha256:<64 lower-case hex>'),
    dim: z.number().int().positive(),
    maxTokens: z.number().int().positive(),
  }),
  chunking: z.record(z.string(), z.unknown()).refine((c) => Object.keys(c).length > 0, {
    message: 'the chunking parameters are missing',
  }),
  passages: count,
  documents: count,
  tombstones: z.union([count, z.array(z.unknown())]),
  newestDocumentTime: z.union([z.iso.datetime({ offset: true }), z.null()]),
  segments: z.array(segmentSchema),
  tombstoneFile: fileEntry.optional(),
});
export type IndexJson = z.infer<typeof indexJsonSchema>;

/** Every data file index.json lists (segment files and the tombstone file), relative to its root. */
export function segmentFiles(index: IndexJson): string[] {
  const out = index.segments.flatMap((s) => s.files.map((f) => f.path));
  if (index.tombstoneFile) out.push(index.tombstoneFile.path);
  return out;
}

/** The embedder identity indexes pin: the digest of a model's sorted (path, size, sha256) rows. */
export function filesDigest(files: readonly { path: string; size: number; sha256: string }[]): string {
  return embedderFilesDigest(files);
}

/** Parses index.json text; errors name the file and field (exit 2). */
export function parseIndexJson(text: string, file: string): IndexJson {
  const result = indexJsonSchema.safeParse(parseJsonObject(text, file));
  if (!result.success) {
    const issue = result.error.issues[0];
    throw invalidFile(file, issue?.path.map(String).join('.') ?? '', issue?.message ?? 'invalid');
  }
  return result.data;
}

/**
 * The embedder directory that built the index, when `index build` left its local hint (a hidden
 * file, never published) and that directory still exists: lint checks the pin against it.
 */
function hintedEmbedder(dir: string): string | undefined {
  try {
    const path = readFileSync(join(dir, EMBEDDER_HINT_FILE), 'utf8').trim();
    return path !== '' && existsSync(join(path, 'config.json')) ? path : undefined;
  } catch {
    return undefined;
  }
}

/** Lint-time checks: schema, every listed file present, and the pin against the hinted embedder. */
export function validateIndexLocal(ctx: LocalValidateContext): IndexJson {
  requireFiles(ctx, 'index', [INDEX_FILE]);
  const file = join(ctx.dir, INDEX_FILE);
  const index = parseIndexJson(readFileSync(file, 'utf8'), file);
  const have = new Set(ctx.files.map((f) => f.path));
  for (const [i, path] of segmentFiles(index).entries()) {
    if (!have.has(path)) {
      throw invalidFile(
        file,
        `segments`,
        `segment file ${path} (#${i}) is not in ${ctx.dir}`,
        'rebuild the index (edgectl index build) or restore the missing segment file',
      );
    }
  }
  const embedderDir = hintedEmbedder(ctx.dir);
  if (embedderDir && filesDigest(embedderDirFiles(embedderDir)) !== index.embedder.digest) {
    throw invalidFile(
      file,
      'embedder.digest',
      `does not match the embedder that built this index (${embedderDir}): it changed since`,
      'rebuild the index with the embedder it will be served with (edgectl index build)',
    );
  }
  return index;
}

/** The model name an `embedder.name` suggests (a ref's name, or the name itself), if it is one. */
function embedderModelName(name: string): string | undefined {
  try {
    const ref = parseRef(name.includes('/') ? name : `model/${name.includes('@') ? name : `${name}@0.0.0`}`);
    return ref.kind === 'model' ? ref.name : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Finds the published model whose file list (or manifest) has the pinned digest: versions of the
 * model named like the embedder first, then every other model (a directory's name need not be the
 * name it was published under).
 */
async function resolveEmbedder(
  ctx: ValidateContext,
  index: IndexJson,
  file: string,
): Promise<{ ref: string; manifestDigest: string }> {
  const pinned = index.embedder.digest;
  const named = embedderModelName(index.embedder.name);
  const models = await listArtifacts(ctx.store, { kind: 'model' });
  models.sort((x, y) => Number(y.name === named) - Number(x.name === named));
  let wrongRole: { ref: string; role: string } | undefined;
  for (const entry of models) {
    const loaded = await readManifest(ctx.store, 'model', entry.name, entry.version, ctx.trust);
    if (!loaded || (loaded.digest !== pinned && filesDigest(loaded.manifest.files) !== pinned)) continue;
    // A draft or verifier LM is no sentence encoder: the site could not embed queries with it.
    const role = modelRole(loaded.manifest);
    if (role !== undefined && role !== 'embedder') {
      wrongRole ??= { ref: loaded.ref, role };
      continue;
    }
    return { ref: loaded.ref, manifestDigest: loaded.digest };
  }
  const details = { file, field: 'embedder', embedder: index.embedder.name, digest: pinned };
  if (wrongRole) {
    throw new UserError(
      `${file}: embedder: ${index.embedder.name} (${pinned}) is ${wrongRole.ref}, a model of role ${wrongRole.role}, not an embedder`,
      {
        code: 'E_INDEX_EMBEDDER',
        suggestion:
          'build the index with a sentence encoder published with `role: embedder` (edgectl index build --embedder <dir>)',
        details: { ...details, model: wrongRole.ref, role: wrongRole.role },
      },
    );
  }
  throw new UserError(
    `${file}: embedder: ${index.embedder.name} (${pinned}) is not a model in the registry ${ctx.store.url}`,
    {
      code: 'E_INDEX_EMBEDDER',
      suggestion:
        'publish the embedder model the index was built with first (edgectl publish artifact <model dir>), then publish the index',
      details,
    },
  );
}

export async function validateIndex(ctx: ValidateContext): Promise<Meta> {
  const index = validateIndexLocal(ctx);
  const embedder = await resolveEmbedder(ctx, index, join(ctx.dir, INDEX_FILE));
  return {
    format: index.format,
    embedder: embedder.ref,
    embedderDigest: embedder.manifestDigest,
    dim: index.embedder.dim,
    maxTokens: index.embedder.maxTokens,
    passages: index.passages,
    documents: index.documents,
    segments: index.segments.length,
    newestDocumentTime: index.newestDocumentTime,
  };
}
