/**
 * What the `edgectl index build|update|compact|query` commands call for local directories. Besides
 * the core functions it remembers which embedder built an index: a hidden file `.edgectl-embedder`
 * in the index directory holds the embedder directory's absolute path, so `index query` and
 * `index update` need no `--embedder` on the machine that built it. Hidden files are never part of a
 * published artifact (src/artifact/source.ts), so the hint stays local; anywhere else `--embedder`
 * (or, for published indexes, the registry) names it, and openIndex checks its digest either way.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { UserError } from '../foundation/errors.js';
import type { IoHost } from '../foundation/io-host.js';
import { buildIndex, compactIndex, updateIndex, type BuildResult } from './build.js';
import { readIndexManifest, type Chunking } from './manifest.js';
import { openIndex, type QueryMode, type QueryPassage } from './reader.js';

export const EMBEDDER_HINT_FILE = '.edgectl-embedder';

/** What `index build|update|compact` report: the engine's result, time in whole milliseconds. */
export type IndexWriteSummary = BuildResult;

const summary = (r: BuildResult): IndexWriteSummary => ({ ...r, ms: Math.round(r.ms) });

function writeHint(indexDir: string, embedderDir: string): void {
  writeFileSync(join(indexDir, EMBEDDER_HINT_FILE), `${resolve(embedderDir)}\n`);
}

/** The embedder to use with an index: the flag, else the hint its build left, else an error naming the flag. */
export function embedderFor(indexDir: string, flag: string | undefined): string {
  readIndexManifest(indexDir); // no index there: exit 3 before asking for an embedder
  if (flag !== undefined) return flag;
  const hint = join(indexDir, EMBEDDER_HINT_FILE);
  if (existsSync(hint)) return readFileSync(hint, 'utf8').trim();
  throw new UserError(`${indexDir}: which embedder? This index was not built here`, {
    code: 'E_INDEX_EMBEDDER',
    suggestion: 'Pass --embedder <dir> (the encoder named in index.json embedder.name, same digest).',
    details: { field: 'embedder' },
  });
}

export async function indexBuild(
  corpusDir: string,
  opts: { embedder: string; out: string; chunking?: Partial<Chunking> },
  io: Pick<IoHost, 'log'>,
): Promise<IndexWriteSummary> {
  const r = await buildIndex(
    corpusDir,
    { embedderDir: opts.embedder, outDir: opts.out, ...(opts.chunking ? { chunking: opts.chunking } : {}) },
    io,
  );
  writeHint(r.dir, opts.embedder);
  return summary(r);
}

export async function indexUpdate(
  indexDir: string,
  corpusDir: string,
  opts: { embedder?: string | undefined; out: string },
  io: Pick<IoHost, 'log'>,
): Promise<IndexWriteSummary> {
  const embedderDir = embedderFor(indexDir, opts.embedder);
  const r = await updateIndex(indexDir, corpusDir, { embedderDir, outDir: opts.out }, io);
  writeHint(r.dir, embedderDir);
  return summary(r);
}

export function indexCompact(indexDir: string, out: string): IndexWriteSummary {
  const r = compactIndex(indexDir, out);
  const hint = join(indexDir, EMBEDDER_HINT_FILE);
  if (existsSync(hint)) writeHint(r.dir, readFileSync(hint, 'utf8').trim());
  return summary(r);
}

export interface IndexQuerySummary {
  index: string;
  query: string;
  mode: QueryMode;
  k: number;
  passages: QueryPassage[];
  ms: number;
  truncated: boolean;
  embedder: string;
  newestDocumentTime: string;
}

/** Opens the index at `dir`, runs one query, closes it. index-site calls this with a synced index's directory. */
export async function queryIndexDir(
  dir: string,
  text: string,
  opts: { embedder?: string | undefined; k: number; mode: QueryMode },
  io: Pick<IoHost, 'log'>,
): Promise<IndexQuerySummary> {
  const reader = await openIndex(dir, { embedderDir: embedderFor(dir, opts.embedder), io });
  try {
    const r = await reader.query(text, { k: opts.k, mode: opts.mode });
    return {
      index: dir,
      query: text,
      mode: opts.mode,
      k: opts.k,
      passages: r.passages,
      ms: Math.round(r.ms * 100) / 100,
      truncated: r.truncated ?? false,
      embedder: reader.manifest.embedder.name,
      newestDocumentTime: reader.manifest.newestDocumentTime,
    };
  } finally {
    await reader.close();
  }
}
