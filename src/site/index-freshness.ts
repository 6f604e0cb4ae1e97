/**
 * Freshness of the indexes a site serves (issue #20 item 5): for each `indexes/<name>` of a
 * generation, its ref, counts and age: now minus the newest document time its index.json carries.
 * `site status` (and --json) lists them; the daemon's `/metrics` exposes the age as a gauge
 * (src/runtime/daemon/index-metrics.ts). A policy's staleness budget acts on the same age at
 * request time (src/runtime/engine/retrieval.ts).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { INDEX_FILE, parseIndexJson } from '../artifact/validate/index-artifact.js';
import type { GenerationInfo } from './generation.js';

export interface IndexFreshness {
  name: string;
  ref: string;
  passages: number;
  documents: number;
  newestDocumentTime: string | null;
  /** Seconds since the newest document (null when the index has no document time). */
  ageSeconds: number | null;
}

/** The indexes of generation `info` in directory `dir`; an unreadable index.json is left out. */
export async function indexFreshness(
  dir: string,
  info: GenerationInfo,
  now: Date,
): Promise<IndexFreshness[]> {
  const out: IndexFreshness[] = [];
  for (const a of info.artifacts) {
    if (a.slot !== 'index') continue;
    const file = join(dir, a.dir, INDEX_FILE);
    let index;
    try {
      index = parseIndexJson(await readFile(file, 'utf8'), file);
    } catch {
      continue; // drift reports a damaged file; status still shows the rest
    }
    const newest = index.newestDocumentTime;
    out.push({
      name: a.dir.slice('indexes/'.length),
      ref: a.ref,
      passages: index.passages,
      documents: index.documents,
      newestDocumentTime: newest,
      ageSeconds:
        newest === null ? null : Math.max(0, Math.round((now.getTime() - Date.parse(newest)) / 1000)),
    });
  }
  return out;
}

/** `3d 4h`, `12m`, `40s`: an age for people. */
export function formatAge(seconds: number): string {
  const d = Math.floor(seconds / 86_400);
  const h = Math.floor((seconds % 86_400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${m}m`;
  if (m > 0) return `${m}m`;
  return `${seconds}s`;
}
