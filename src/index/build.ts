/**
 * Building and maintaining an index directory (docs/formats.md "Index"): `buildIndex` turns a corpus
 * into one segment; `updateIndex` compares a corpus with an index by document id and content hash,
 * copies the previous segments unchanged, writes the added and changed documents into one new segment
 * and tombstones the old versions of changed and deleted ones (a segment left with no live document
 * is dropped), so a publish of the result moves only the new segment and the tombstone file;
 * `compactIndex` rewrites the live passages into one segment without re-embedding anything.
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { UserError } from '../foundation/errors.js';
import type { IoHost } from '../foundation/io-host.js';
import { readCorpus, type CorpusDocument } from './documents.js';
import { Embedder } from './embedder.js';
import {
  DEFAULT_CHUNKING,
  INDEX_FORMAT,
  MANIFEST_FILE,
  chunkingSchema,
  manifestJson,
  readIndexManifest,
  type Chunking,
  type EmbedderInfo,
  type IndexManifest,
  type SegmentEntry,
} from './manifest.js';
import {
  loadSegment,
  readVerified,
  segmentName,
  writeSegment,
  type DocEntry,
  type SegmentData,
} from './segment.js';
import { chunkText } from './text.js';
import { readTombstones, writeTombstones, type Tombstones } from './tombstones.js';

export interface BuildOptions {
  embedderDir: string;
  outDir: string;
  chunking?: Partial<Chunking>;
  /** Segments with at least this many passages get an IVF (default 4096; lower in tests). */
  ivfMinPassages?: number;
}

export interface BuildResult {
  dir: string;
  manifest: IndexManifest;
  added: number;
  changed: number;
  deleted: number;
  unchanged: number;
  /** Segments written by this run (the others were copied unchanged). */
  newSegments: string[];
  /** Passages whose text was cut to the encoder's context for embedding. */
  truncated: number;
  ms: number;
}

type Io = Pick<IoHost, 'log'>;
interface Placed {
  entry: SegmentEntry;
  docs: DocEntry[];
}
const quiet: Io = { log: () => undefined };

function prepareOut(outDir: string, from?: string): string {
  const out = resolve(outDir);
  if (from !== undefined && resolve(from) === out)
    throw new UserError(`--out ${outDir} is the index being updated`, {
      code: 'E_INDEX_OUT',
      suggestion:
        'Write the new version to another directory: segments are immutable, versions are directories.',
      details: { field: 'out' },
    });
  if (existsSync(out) && readdirSync(out).length > 0)
    throw new UserError(`--out ${outDir} exists and is not empty`, {
      code: 'E_INDEX_OUT',
      suggestion: 'Choose a new directory (or remove the old one).',
      details: { field: 'out', dir: out },
    });
  mkdirSync(out, { recursive: true });
  return out;
}

/** Passages and vectors of some documents, as one segment's data. */
async function embedDocs(
  docs: readonly CorpusDocument[],
  chunking: Chunking,
  embedder: Embedder,
): Promise<{ data: SegmentData; truncated: number }> {
  const passages: SegmentData['passages'] = [];
  const entries: DocEntry[] = [];
  for (const d of docs) {
    const texts = chunkText(d.text, chunking);
    entries.push({ id: d.id, hash: d.hash, time: d.time, first: passages.length, count: texts.length });
    texts.forEach((text, i) =>
      passages.push({ id: `${d.id}#${i}`, docId: d.id, text, metadata: d.metadata }),
    );
  }
  const { vectors, truncated } = await embedder.embed(passages.map((p) => p.text));
  const dim = embedder.info.dim;
  const flat = new Float32Array(passages.length * dim);
  vectors.forEach((v, i) => flat.set(v, i * dim));
  return { data: { passages, docs: entries, vectors: flat }, truncated: truncated.length };
}

function finish(
  out: string,
  embedder: EmbedderInfo,
  chunking: Chunking,
  segments: Placed[],
  tombstones: Tombstones,
): IndexManifest {
  let passages = 0;
  let documents = 0;
  let dead = 0;
  let newest = '';
  for (const s of segments) {
    const gone = tombstones.get(s.entry.name) ?? new Set<string>();
    for (const d of s.docs) {
      if (gone.has(d.id)) dead += d.count;
      else {
        passages += d.count;
        documents++;
        if (d.time > newest) newest = d.time;
      }
    }
  }
  const tombstoneFile = writeTombstones(out, tombstones);
  const manifest: IndexManifest = {
    format: INDEX_FORMAT,
    embedder,
    chunking,
    passages,
    documents,
    tombstones: dead,
    newestDocumentTime: newest || new Date(0).toISOString(),
    segments: segments.map((s) => s.entry),
    ...(tombstoneFile ? { tombstoneFile } : {}),
  };
  writeFileSync(join(out, MANIFEST_FILE), manifestJson(manifest));
  return manifest;
}

function checkChunking(c: Partial<Chunking> | undefined): Chunking {
  const parsed = chunkingSchema.safeParse({ ...DEFAULT_CHUNKING, ...c });
  if (!parsed.success)
    throw new UserError(`chunking: ${parsed.error.issues[0]?.message ?? 'invalid'}`, {
      code: 'E_INDEX_CHUNKING',
      details: { field: `chunking.${parsed.error.issues[0]?.path.join('.') ?? ''}` },
    });
  return parsed.data;
}

/** Builds a new index of `corpusDir` in `opts.outDir` (which must be new or empty). */
export async function buildIndex(
  corpusDir: string,
  opts: BuildOptions,
  io: Io = quiet,
): Promise<BuildResult> {
  const t0 = performance.now();
  const chunking = checkChunking(opts.chunking);
  const docs = readCorpus(corpusDir);
  const embedder = await Embedder.open(opts.embedderDir);
  try {
    const out = prepareOut(opts.outDir);
    const { data, truncated } = await embedDocs(docs, chunking, embedder);
    if (truncated > 0)
      io.log(
        'warn',
        `${truncated} passage(s) longer than the encoder's context were truncated for embedding`,
      );
    const name = segmentName(1);
    const entry = writeSegment(out, name, data, embedder.info.dim, opts.ivfMinPassages);
    const manifest = finish(out, embedder.info, chunking, [{ entry, docs: data.docs }], new Map());
    const ms = performance.now() - t0;
    return {
      dir: out,
      manifest,
      added: docs.length,
      changed: 0,
      deleted: 0,
      unchanged: 0,
      newSegments: [name],
      truncated,
      ms,
    };
  } finally {
    await embedder.close();
  }
}

/** Refuses an embedder that cannot extend the index (its vectors would not be comparable). */
export function checkEmbedder(index: EmbedderInfo, embedder: EmbedderInfo, where: string): void {
  if (index.dim !== embedder.dim)
    throw new UserError(
      `${where}: embedder.dim: the index has ${index.dim}-dimensional vectors, the embedder ${embedder.name} gives ${embedder.dim}`,
      {
        code: 'E_INDEX_EMBEDDER',
        suggestion: `Use the index's embedder (${index.name}, ${index.digest}), or rebuild the index with this one.`,
        details: { file: where, field: 'embedder.dim', expected: index.dim, actual: embedder.dim },
      },
    );
  if (index.digest !== embedder.digest)
    throw new UserError(
      `${where}: embedder.digest: the index was built with ${index.name} ${index.digest}, not ${embedder.digest}`,
      {
        code: 'E_INDEX_EMBEDDER',
        suggestion: `Use the index's embedder (${index.name}), or rebuild the index with this one.`,
        details: { file: where, field: 'embedder.digest', expected: index.digest, actual: embedder.digest },
      },
    );
}

function copyIndexFile(from: string, to: string, path: string): void {
  mkdirSync(dirname(join(to, path)), { recursive: true });
  copyFileSync(join(from, path), join(to, path));
}

interface LiveDoc {
  segment: string;
  doc: DocEntry;
}

interface CorpusDiff {
  tombstones: Tombstones;
  segDocs: Map<string, DocEntry[]>;
  /** Added and changed documents: the new segment. */
  fresh: CorpusDocument[];
  changed: number;
  unchanged: number;
  deleted: number;
}

/** Compares the corpus with the index's live documents by id and content hash. */
function diffCorpus(prevDir: string, prev: IndexManifest, docs: readonly CorpusDocument[]): CorpusDiff {
  const tombstones = readTombstones(prevDir, prev);
  const segDocs = new Map<string, DocEntry[]>();
  const live = new Map<string, LiveDoc>();
  for (const s of prev.segments) {
    const f = s.files.find((x) => x.path === `segments/${s.name}/docs.json`);
    const list = f ? (JSON.parse(readVerified(prevDir, f).toString('utf8')) as DocEntry[]) : [];
    segDocs.set(s.name, list);
    const gone = tombstones.get(s.name);
    for (const doc of list) if (!gone?.has(doc.id)) live.set(doc.id, { segment: s.name, doc });
  }
  const kill = (l: LiveDoc) => {
    const set = tombstones.get(l.segment) ?? new Set<string>();
    set.add(l.doc.id);
    tombstones.set(l.segment, set);
  };
  const diff: CorpusDiff = { tombstones, segDocs, fresh: [], changed: 0, unchanged: 0, deleted: 0 };
  const seen = new Set<string>();
  for (const d of docs) {
    seen.add(d.id);
    const old = live.get(d.id);
    if (old && old.doc.hash === d.hash) diff.unchanged++;
    else {
      if (old) {
        kill(old);
        diff.changed++;
      }
      diff.fresh.push(d);
    }
  }
  for (const [id, l] of live)
    if (!seen.has(id)) {
      kill(l);
      diff.deleted++;
    }
  return diff;
}

/** Copies the previous segments that still hold a live document (bytes unchanged). */
function carrySegments(prevDir: string, prev: IndexManifest, out: string, diff: CorpusDiff): Placed[] {
  const kept: Placed[] = [];
  for (const s of prev.segments) {
    const list = diff.segDocs.get(s.name) ?? [];
    if (list.every((d) => diff.tombstones.get(s.name)?.has(d.id))) {
      diff.tombstones.delete(s.name); // nothing live: drop the segment and its tombstones
      continue;
    }
    for (const f of s.files) copyIndexFile(prevDir, out, f.path);
    kept.push({ entry: s, docs: list });
  }
  return kept;
}

const nextSegment = (m: IndexManifest): string =>
  segmentName(m.segments.map((s) => Number(s.name.slice(4))).reduce((a, b) => Math.max(a, b), 0) + 1);

/** Writes a new version of the index at `prevDir` for the corpus now in `corpusDir`. */
export async function updateIndex(
  prevDir: string,
  corpusDir: string,
  opts: Omit<BuildOptions, 'chunking'>,
  io: Io = quiet,
): Promise<BuildResult> {
  const t0 = performance.now();
  const prev = readIndexManifest(prevDir);
  const docs = readCorpus(corpusDir);
  const embedder = await Embedder.open(opts.embedderDir);
  try {
    checkEmbedder(prev.embedder, embedder.info, join(prevDir, MANIFEST_FILE));
    const diff = diffCorpus(prevDir, prev, docs);
    const out = prepareOut(opts.outDir, prevDir);
    const kept = carrySegments(prevDir, prev, out, diff);
    const newSegments: string[] = [];
    let truncated = 0;
    if (diff.fresh.length > 0) {
      const name = nextSegment(prev);
      const emb = await embedDocs(diff.fresh, prev.chunking, embedder);
      truncated = emb.truncated;
      if (truncated > 0)
        io.log(
          'warn',
          `${truncated} passage(s) longer than the encoder's context were truncated for embedding`,
        );
      kept.push({
        entry: writeSegment(out, name, emb.data, prev.embedder.dim, opts.ivfMinPassages),
        docs: emb.data.docs,
      });
      newSegments.push(name);
    }
    const manifest = finish(out, prev.embedder, prev.chunking, kept, diff.tombstones);
    const { changed, deleted, unchanged } = diff;
    const added = diff.fresh.length - changed;
    return {
      dir: out,
      manifest,
      added,
      changed,
      deleted,
      unchanged,
      newSegments,
      truncated,
      ms: performance.now() - t0,
    };
  } finally {
    await embedder.close();
  }
}

/** Rewrites the live passages of `dir` into one segment in `outDir` (vectors reused, nothing re-embedded). */
export function compactIndex(
  dir: string,
  outDir: string,
  opts: Pick<BuildOptions, 'ivfMinPassages'> = {},
): BuildResult {
  const t0 = performance.now();
  const m = readIndexManifest(dir);
  const tombstones = readTombstones(dir, m);
  const out = prepareOut(outDir, dir);
  const dim = m.embedder.dim;
  const docs: { doc: DocEntry; seg: ReturnType<typeof loadSegment> }[] = [];
  for (const s of m.segments) {
    const seg = loadSegment(dir, s, dim);
    for (const doc of seg.docs) if (!tombstones.get(s.name)?.has(doc.id)) docs.push({ doc, seg });
  }
  docs.sort((a, b) => (a.doc.id < b.doc.id ? -1 : a.doc.id > b.doc.id ? 1 : 0));
  const data: SegmentData = { passages: [], docs: [], vectors: new Float32Array(m.passages * dim) };
  for (const { doc, seg } of docs) {
    data.docs.push({ ...doc, first: data.passages.length });
    for (let i = doc.first; i < doc.first + doc.count; i++) {
      const p = seg.passages[i];
      if (!p) continue;
      data.vectors.set(seg.vectors.subarray(i * dim, (i + 1) * dim), data.passages.length * dim);
      data.passages.push(p);
    }
  }
  const name = nextSegment(m);
  const entry = writeSegment(out, name, data, dim, opts.ivfMinPassages);
  const manifest = finish(out, m.embedder, m.chunking, [{ entry, docs: data.docs }], new Map());
  const n = docs.length;
  return {
    dir: out,
    manifest,
    added: 0,
    changed: 0,
    deleted: 0,
    unchanged: n,
    newSegments: [name],
    truncated: 0,
    ms: performance.now() - t0,
  };
}
