/**
 * The indexes a generation serves (docs/running-sites.md "Retrieval (RAG)"): every
 * `indexes/<name>` of the generation directory, opened with the embedder the sync put beside it in
 * `embedders/<name>` (src/site/index-embedders.ts), keyed by name, with the ref it came from (the
 * feedback context's `refs.indexes`). Opening verifies every segment file against index.json
 * (src/index/reader.ts), so a generation whose index was damaged on disk fails to load and the
 * daemon keeps serving the one it had. Loaded with the generation and closed with it, so an index
 * is hot-swapped exactly when the generation is.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../../foundation/errors.js';
import { openIndex, type IndexReader } from '../../index/index.js';
import type { FeedbackContext } from '../../feedback/accumulator.js';

export interface ServedIndex {
  name: string;
  /** `index/<name>@<version>`, or undefined for a hand-assembled generation. */
  ref: string | undefined;
  reader: IndexReader;
}

function isDir(path: string): boolean {
  return existsSync(path) && statSync(path).isDirectory();
}

function nameOfRef(ref: string): string {
  return ref.slice(ref.indexOf('/') + 1, ref.indexOf('@'));
}

export class SiteIndexes {
  private constructor(private readonly byName: ReadonlyMap<string, ServedIndex>) {}

  static empty(): SiteIndexes {
    return new SiteIndexes(new Map());
  }

  /** Opens every index of generation directory `dir` (none: an empty set). */
  static async open(dir: string, context: FeedbackContext): Promise<SiteIndexes> {
    const root = join(dir, 'indexes');
    const byName = new Map<string, ServedIndex>();
    if (!isDir(root)) return new SiteIndexes(byName);
    try {
      for (const name of readdirSync(root).sort()) {
        const indexDir = join(root, name);
        if (!isDir(indexDir)) continue;
        const embedderDir = join(dir, 'embedders', name);
        if (!isDir(embedderDir)) {
          throw new UserError(`generation ${dir}: index ${name} has no embedder (embedders/${name})`, {
            code: 'E_GENERATION',
            suggestion: 'let `edgectl site sync` rebuild the generation',
          });
        }
        const ref = context.refs.indexes?.find((r) => nameOfRef(r.ref) === name)?.ref;
        byName.set(name, { name, ref, reader: await openIndex(indexDir, { embedderDir }) });
      }
    } catch (err) {
      await Promise.all([...byName.values()].map((i) => i.reader.close()));
      throw err;
    }
    return new SiteIndexes(byName);
  }

  get names(): string[] {
    return [...this.byName.keys()];
  }

  get(name: string): ServedIndex | undefined {
    return this.byName.get(name);
  }

  all(): ServedIndex[] {
    return [...this.byName.values()];
  }

  async close(): Promise<void> {
    await Promise.all([...this.byName.values()].map((i) => i.reader.close()));
  }
}

/** Age of an index in seconds (now minus its newest document time), never negative. */
export function indexAgeSeconds(reader: IndexReader, now: number = Date.now()): number {
  return Math.max(0, Math.round((now - Date.parse(reader.manifest.newestDocumentTime)) / 1000));
}
