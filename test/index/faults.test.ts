/**
 * Bad input and faults of the index layer (issue #20 "Bad input and faults"), each a typed error with
 * its exit code naming the file and field: invalid UTF-8, an empty corpus, duplicate ids, a bad JSONL
 * line, an embedder whose dimension differs from the index, a corrupted or truncated segment file.
 */
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EdgectlError } from '../../src/foundation/errors.js';
import { buildIndex, openIndex, readCorpus, updateIndex } from '../../src/index/index.js';

const EMBEDDER = 'artifacts/models/embedder';
let tmp: string;
let built: string;

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'edgectl-index-faults-'));
  const corpus = join(tmp, 'small');
  mkdirSync(corpus);
  writeFileSync(join(corpus, 'a.md'), '# Printer\n\nThe receipt printer jams when the roll is loose.\n');
  writeFileSync(join(corpus, 'b.txt'), 'Reset the kiosk with the service button.\n');
  writeFileSync(join(corpus, 'c.jsonl'), '{"id":"faq-1","text":"Refunds need a receipt.","lang":"en"}\n');
  built = join(tmp, 'idx');
  await buildIndex(corpus, { embedderDir: EMBEDDER, outDir: built });
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function corpusWith(name: string, files: Record<string, string | Uint8Array>): string {
  const dir = join(tmp, name);
  mkdirSync(dir, { recursive: true });
  for (const [f, body] of Object.entries(files)) writeFileSync(join(dir, f), body);
  return dir;
}

function caught(fn: () => unknown): EdgectlError {
  try {
    fn();
  } catch (err) {
    if (err instanceof EdgectlError) return err;
    throw err;
  }
  throw new Error('expected an error');
}

async function caughtAsync(p: Promise<unknown>): Promise<EdgectlError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof EdgectlError) return err;
    throw err;
  }
  throw new Error('expected an error');
}

describe('corpus input', () => {
  it('refuses invalid UTF-8 naming the file and byte (exit 2)', () => {
    const dir = corpusWith('latin1', {
      'ok.md': 'fine',
      'bad.txt': Uint8Array.from([0x63, 0x61, 0x66, 0xe9, 0x0a]),
    });
    const e = caught(() => readCorpus(dir));
    expect(e.exitCode).toBe(2);
    expect(e.code).toBe('E_INDEX_UTF8');
    expect(e.message).toContain(join(dir, 'bad.txt'));
    expect(e.details).toMatchObject({ byte: 3 });
  });

  it('refuses an empty corpus (exit 2)', () => {
    const dir = corpusWith('empty', { 'notes.pdf': 'not a document' });
    const e = caught(() => readCorpus(dir));
    expect([e.exitCode, e.code]).toEqual([2, 'E_INDEX_EMPTY']);
  });

  it('refuses duplicate ids across files, naming both (exit 2)', () => {
    const dir = corpusWith('dup', {
      'a.jsonl': '{"id":"x","text":"one"}\n',
      'b.jsonl': '{"id":"y","text":"two"}\n{"id":"x","text":"three"}\n',
    });
    const e = caught(() => readCorpus(dir));
    expect([e.exitCode, e.code]).toEqual([2, 'E_INDEX_DUPLICATE_ID']);
    expect(e.message).toMatch(/b\.jsonl: duplicate document id "x" \(also in .*a\.jsonl\)/);
  });

  it('refuses a JSONL line without text, naming line and field (exit 2)', () => {
    const dir = corpusWith('nofield', { 'a.jsonl': '{"id":"x","text":"ok"}\n{"id":"y","body":"no"}\n' });
    const e = caught(() => readCorpus(dir));
    expect([e.exitCode, e.code]).toEqual([2, 'E_INDEX_DOCUMENT']);
    expect(e.message).toContain('a.jsonl:2: text: must be a string');
  });

  it('keeps JSONL metadata and time', () => {
    const docs = readCorpus(join(tmp, 'small'));
    expect(docs.map((d) => d.id)).toEqual(['a.md', 'b.txt', 'faq-1']);
    expect(docs[2]?.metadata).toEqual({ lang: 'en', source: 'c.jsonl' });
  });
});

describe('embedder and segments', () => {
  it('refuses an embedder whose dimension differs from the index (exit 2, field embedder.dim)', async () => {
    const other = join(tmp, 'embedder-32');
    cpSync(EMBEDDER, other, { recursive: true });
    const cfg = JSON.parse(readFileSync(join(other, 'config.json'), 'utf8')) as Record<string, unknown>;
    writeFileSync(join(other, 'config.json'), JSON.stringify({ ...cfg, hidden_size: 32 }));
    const e = await caughtAsync(openIndex(built, { embedderDir: other }));
    expect([e.exitCode, e.code]).toEqual([2, 'E_INDEX_EMBEDDER']);
    expect(e.details).toMatchObject({ field: 'embedder.dim', expected: 64, actual: 32 });
    const u = await caughtAsync(
      updateIndex(built, join(tmp, 'small'), { embedderDir: other, outDir: join(tmp, 'u') }),
    );
    expect(u.code).toBe('E_INDEX_EMBEDDER');
  });

  it.each([
    [
      'corrupted',
      (p: string) => writeFileSync(p, Buffer.from(readFileSync(p).map((b, i) => (i === 10 ? b ^ 1 : b)))),
    ],
    ['truncated', (p: string) => truncateSync(p, 100)],
  ])('refuses a %s segment file at open (exit 4, names the file)', async (_name, damage) => {
    const copy = join(tmp, `idx-${_name}`);
    cpSync(built, copy, { recursive: true });
    const file = join(copy, 'segments/seg-000001/vectors.f32');
    damage(file);
    const e = await caughtAsync(openIndex(copy, { embedderDir: EMBEDDER }));
    expect([e.exitCode, e.code]).toEqual([4, 'E_INDEX_CORRUPT']);
    expect(e.message).toContain(file);
  });

  it('refuses a missing index (exit 3) and writing over a non-empty directory (exit 2)', async () => {
    const missing = await caughtAsync(openIndex(join(tmp, 'nope'), { embedderDir: EMBEDDER }));
    expect(missing.exitCode).toBe(3);
    const over = await caughtAsync(buildIndex(join(tmp, 'small'), { embedderDir: EMBEDDER, outDir: built }));
    expect([over.exitCode, over.code]).toEqual([2, 'E_INDEX_OUT']);
  });
});
