/**
 * The tombstone file (`tombstones.json`): for each segment, the ids of its documents that a later
 * update changed or deleted. Segments stay immutable; a reader masks the passages of these documents.
 * One small file rewritten by each update (sorted, so equal sets give equal bytes), and emptied by
 * compaction, which drops the dead passages for good.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { digestOf } from '../foundation/digest.js';
import { TOMBSTONES_FILE, type IndexFile, type IndexManifest } from './manifest.js';
import { readVerified } from './segment.js';

export type Tombstones = Map<string, Set<string>>;

export function readTombstones(dir: string, m: IndexManifest): Tombstones {
  const out: Tombstones = new Map();
  if (!m.tombstoneFile) return out;
  const raw = JSON.parse(readVerified(dir, m.tombstoneFile).toString('utf8')) as Record<string, string[]>;
  for (const [seg, ids] of Object.entries(raw)) out.set(seg, new Set(ids));
  return out;
}

/** Writes the file (or nothing when empty) and returns its manifest entry. */
export function writeTombstones(dir: string, t: Tombstones): IndexFile | undefined {
  const obj: Record<string, string[]> = {};
  for (const seg of [...t.keys()].sort()) {
    const ids = [...(t.get(seg) ?? [])].sort();
    if (ids.length > 0) obj[seg] = ids;
  }
  if (Object.keys(obj).length === 0) return undefined;
  const bytes = Buffer.from(`${JSON.stringify(obj)}\n`, 'utf8');
  writeFileSync(join(dir, TOMBSTONES_FILE), bytes);
  return { path: TOMBSTONES_FILE, size: bytes.length, sha256: digestOf(bytes) };
}
