/**
 * Shared pieces of the index-site tests: the committed corpus and fixture encoder, an index built
 * from them into a temp directory, and the encoder as a publishable model directory
 * (`role: embedder` in its artifact.yaml, which the embedder digest leaves out).
 */
import { cpSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildIndex } from '../../src/index/index.js';

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
