/**
 * Shared pieces of the index-site tests: the committed corpus and fixture encoder, an index built
 * from them into a temp directory, and the encoder as a publishable model directory
 * (`role: embedder` in its artifact.yaml, which the embedder digest leaves out), and a site
 * generation directory serving an index of a few given documents.
 */
import { cpSync, mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildIndex } from '../../src/index/index.js';
import { makeGenerationDir } from '../runtime/serve/helpers.js';

export const CORPUS = 'artifacts/corpus/kiosk';
export const EMBEDDER = 'artifacts/models/embedder';

export function tempDir(prefix = 'edgectl-ixs-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** The fixture encoder with an artifact.yaml: `model/kiosk-embedder@<version>`, role embedder. */
export function embedderModelDir(parent: string, version = '1.0.0'): string {
  const dir = join(parent, 'embedder');
  cpSync(EMBEDDER, dir, { recursive: true });
  writeFileSync(
    join(dir, 'artifact.yaml'),
    `kind: model\nname: kiosk-embedder\nversion: "${version}"\nrole: embedder\n`,
  );
  return dir;
}

/** An index of `corpus` (default: the committed one) with an artifact.yaml `index/<name>@<version>`. */
export async function indexDir(
  parent: string,
  opts: { name?: string; version?: string; corpus?: string; out?: string } = {},
): Promise<string> {
  const dir = join(parent, opts.out ?? 'index');
  await buildIndex(opts.corpus ?? CORPUS, { embedderDir: EMBEDDER, outDir: dir });
  writeFileSync(
    join(dir, 'artifact.yaml'),
    `kind: index\nname: ${opts.name ?? 'kb'}\nversion: "${opts.version ?? '1.0.0'}"\n`,
  );
  return dir;
}

/** A JSONL corpus document. */
export interface CorpusDoc {
  id: string;
  text: string;
  time: string;
}

/**
 * A generation directory (the draft model, `policy` or the test policy) serving `indexes/<name>`,
 * an index of `docs`, with the fixture encoder as `embedders/<name>`.
 */
export async function ragGenerationDir(name: string, docs: CorpusDoc[], policy?: string): Promise<string> {
  const corpus = tempDir('edgectl-rag-corpus-');
  writeFileSync(join(corpus, 'docs.jsonl'), docs.map((d) => JSON.stringify(d)).join('\n'));
  const dir = makeGenerationDir(policy === undefined ? {} : { policy });
  mkdirSync(join(dir, 'indexes'));
  mkdirSync(join(dir, 'embedders'));
  await indexDir(join(dir, 'indexes'), { out: name, corpus });
  symlinkSync(join(process.cwd(), EMBEDDER), join(dir, 'embedders', name));
  return dir;
}
