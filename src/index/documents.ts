/**
 * Reads a corpus directory into documents (docs/formats.md "Index"): Markdown (`.md`, `.markdown`)
 * and text (`.txt`) files are one document each, whose id is the file's path relative to the
 * corpus; JSONL files (`.jsonl`) hold one document per line with a string `id`, a string `text`,
 * an optional ISO `time` and any other fields kept as metadata. A document's time is its `time`
 * field or else the file's modification time (the index's freshness is the newest of them). Bad input
 * is refused with the file and field named (exit 2): invalid UTF-8, a JSONL line that is not an
 * object with `id` and `text`, two documents with one id, a corpus with no documents.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../foundation/errors.js';
import { sha256Hex } from '../foundation/digest.js';

export interface CorpusDocument {
  id: string;
  text: string;
  /** ISO time of the document (its `time` field, else the file's mtime). */
  time: string;
  metadata: Record<string, unknown>;
  /** sha256 hex of id, text and metadata (not time): what decides "changed" in an update. */
  hash: string;
}

const TEXT_EXT = /\.(md|markdown|txt)$/i;
const JSONL_EXT = /\.jsonl$/i;
const utf8 = new TextDecoder('utf-8', { fatal: true });

function walk(dir: string, rel = ''): string[] {
  const out: string[] = [];
  for (const e of readdirSync(join(dir, rel), { withFileTypes: true })) {
    if (e.name.startsWith('.')) continue;
    const child = rel === '' ? e.name : `${rel}/${e.name}`;
    if (e.isDirectory()) out.push(...walk(dir, child));
    else if (e.isFile() && (TEXT_EXT.test(e.name) || JSONL_EXT.test(e.name))) out.push(child);
  }
  return out.sort();
}

function decode(path: string, bytes: Uint8Array): string {
  try {
    return utf8.decode(bytes).replace(/^\uFEFF/, '');
  } catch {
    const bad = firstInvalidUtf8(bytes);
    throw new UserError(`${path}: invalid UTF-8 at byte ${bad}`, {
      code: 'E_INDEX_UTF8',
      suggestion: 'Convert the file to UTF-8 (e.g. `iconv -f latin1 -t utf-8`) or remove it from the corpus.',
      details: { file: path, byte: bad },
    });
  }
}

/** Offset of the first byte that starts no valid UTF-8 sequence (RFC 3629: no overlongs, no surrogates). */
export function firstInvalidUtf8(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i] ?? 0;
    if (b < 0x80) {
      i++;
      continue;
    }
    const len = b >= 0xc2 && b <= 0xdf ? 2 : b >= 0xe0 && b <= 0xef ? 3 : b >= 0xf0 && b <= 0xf4 ? 4 : 0;
    if (len === 0 || i + len > bytes.length) return i;
    const second = bytes[i + 1] ?? 0;
    const lo = b === 0xe0 ? 0xa0 : b === 0xf0 ? 0x90 : 0x80;
    const hi = b === 0xed ? 0x9f : b === 0xf4 ? 0x8f : 0xbf;
    if (second < lo || second > hi) return i;
    for (let k = 2; k < len; k++) {
      const c = bytes[i + k] ?? 0;
      if (c < 0x80 || c > 0xbf) return i;
    }
    i += len;
  }
  return bytes.length;
}

function docOf(id: string, text: string, time: string, metadata: Record<string, unknown>): CorpusDocument {
  // Time is left out: a file copied or touched without a change is not re-embedded.
  const hash = sha256Hex(JSON.stringify([id, text, metadata]));
  return { id, text, time, metadata, hash };
}

function jsonlDocs(path: string, rel: string, text: string, mtime: string): CorpusDocument[] {
  const docs: CorpusDocument[] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    const where = `${path}:${i + 1}`;
    const fail = (field: string, why: string) =>
      new UserError(`${where}: ${field}: ${why}`, {
        code: 'E_INDEX_DOCUMENT',
        suggestion:
          'Each JSONL line is an object {"id": string, "text": string, "time"?: ISO string, ...metadata}.',
        details: { file: path, line: i + 1, field },
      });
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch (err) {
      throw fail('(line)', `invalid JSON (${(err as Error).message})`);
    }
    if (typeof obj !== 'object' || obj === null || Array.isArray(obj))
      throw fail('(line)', 'not a JSON object');
    const { id, text: body, time, ...metadata } = obj as Record<string, unknown>;
    if (typeof id !== 'string' || id === '') throw fail('id', 'must be a non-empty string');
    if (typeof body !== 'string') throw fail('text', 'must be a string');
    if (time !== undefined && (typeof time !== 'string' || Number.isNaN(Date.parse(time))))
      throw fail('time', 'must be an ISO 8601 date-time');
    const t = typeof time === 'string' ? new Date(time).toISOString() : mtime;
    docs.push(docOf(id, body, t, { ...metadata, source: rel }));
  });
  return docs;
}

/** Every document of a corpus directory, sorted by id; throws UserError (exit 2) on bad input. */
export function readCorpus(dir: string): CorpusDocument[] {
  let files: string[];
  try {
    files = walk(dir);
  } catch (err) {
    throw new UserError(
      `${dir}: cannot read the corpus directory (${(err as NodeJS.ErrnoException).code ?? String(err)})`,
      {
        code: 'E_INDEX_CORPUS',
        details: { dir },
      },
    );
  }
  const docs: CorpusDocument[] = [];
  const origin = new Map<string, string>();
  for (const rel of files) {
    const path = join(dir, rel);
    const text = decode(path, readFileSync(path));
    const mtime = statSync(path).mtime.toISOString();
    const found = JSONL_EXT.test(rel)
      ? jsonlDocs(path, rel, text, mtime)
      : [docOf(rel, text, mtime, { source: rel })];
    for (const d of found) {
      const first = origin.get(d.id);
      if (first !== undefined)
        throw new UserError(`${path}: duplicate document id ${JSON.stringify(d.id)} (also in ${first})`, {
          code: 'E_INDEX_DUPLICATE_ID',
          suggestion: 'Document ids must be unique across the corpus: rename one of them.',
          details: { file: path, field: 'id', id: d.id, first },
        });
      origin.set(d.id, path);
      docs.push(d);
    }
  }
  if (docs.length === 0)
    throw new UserError(`${dir}: the corpus has no documents (.md, .markdown, .txt or .jsonl)`, {
      code: 'E_INDEX_EMPTY',
      suggestion: 'Point at a directory of Markdown, text or JSONL documents.',
      details: { dir },
    });
  return docs.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}
