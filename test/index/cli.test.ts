/**
 * `edgectl index build|update|compact|query` as a user runs them (child processes, dist/): the
 * --json results, exit codes of bad input (2), a missing index (3) and a corrupted segment (4), and
 * the embedder hint that lets query and update run without --embedder where the index was built.
 */
import { appendFileSync, cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, runCli } from '../helpers/cli.js';

let tmp: string;
const cli = (args: string[]) => runCli(args, { cwd: tmp, timeoutMs: 120_000 });

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'edgectl-index-cli-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

interface WriteJson {
  added: number;
  changed: number;
  deleted: number;
  newSegments: string[];
  manifest: { documents: number; passages: number; tombstones: number; embedder: { dim: number } };
}
interface QueryJson {
  passages: { id: string; docId: string; score: number; bm25Rank?: number; denseRank?: number }[];
  truncated: boolean;
}

describe('edgectl index', () => {
  it('builds, queries, updates and compacts with --json', async () => {
    const corpus = join(tmp, 'corpus');
    cpSync(join(REPO_ROOT, 'artifacts/corpus/kiosk'), corpus, { recursive: true });
    const embedder = join(REPO_ROOT, 'artifacts/models/embedder');
    const b = await cli(['index', 'build', corpus, '--embedder', embedder, '--out', 'v1', '--json']);
    expect(b.code, b.stderr).toBe(0);
    expect(b.json<WriteJson>().manifest).toMatchObject({
      documents: 120,
      tombstones: 0,
      embedder: { dim: 64 },
    });

    const q = await cli(['index', 'query', 'v1', 'card machine declined E-305', '--k', '3', '--json']);
    expect(q.code, q.stderr).toBe(0);
    const hits = q.json<QueryJson>().passages;
    expect(hits).toHaveLength(3);
    expect(hits[0]?.docId).toMatch(/card-reader/);
    expect(hits[0]?.bm25Rank).toBeDefined();
    expect(hits[0]?.denseRank).toBeDefined();

    appendFileSync(
      join(corpus, 'faq.jsonl'),
      '{"id":"faq/new","text":"The espresso machine needs descaling (code Q-999)."}\n',
    );
    const u = await cli(['index', 'update', 'v1', corpus, '--out', 'v2', '--json']);
    expect(u.code, u.stderr).toBe(0);
    expect(u.json<WriteJson>()).toMatchObject({
      added: 1,
      changed: 0,
      deleted: 0,
      newSegments: ['seg-000002'],
    });
    const q2 = await cli(['index', 'query', 'v2', 'Q-999', '--mode', 'bm25', '--k', '1', '--json']);
    expect(q2.json<QueryJson>().passages[0]?.docId).toBe('faq/new');

    const c = await cli(['index', 'compact', 'v2', '--out', 'v3', '--json']);
    expect(c.code, c.stderr).toBe(0);
    expect(c.json<WriteJson>().manifest).toMatchObject({ documents: 121, tombstones: 0 });
    const human = await cli(['index', 'query', 'v3', 'fridge too warm']);
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toMatch(/1\. \S+fridge-temp\S* {2}score/);
  });

  it('exits 2 on bad input, 3 on a missing index, 4 on a corrupted segment', async () => {
    const bad = join(tmp, 'bad');
    cpSync(join(REPO_ROOT, 'artifacts/corpus/kiosk'), bad, { recursive: true });
    writeFileSync(join(bad, 'broken.txt'), Buffer.from([0xff, 0xfe, 0x41]));
    const embedder = join(REPO_ROOT, 'artifacts/models/embedder');
    const b = await cli(['index', 'build', bad, '--embedder', embedder, '--out', 'bad-idx', '--json']);
    expect(b.code).toBe(2);
    expect(b.json<{ error: { code: string; message: string } }>().error).toMatchObject({
      code: 'E_INDEX_UTF8',
    });
    const missing = await cli(['index', 'query', 'no-such-index', 'x']);
    expect(missing.code).toBe(3);
    const ok = await cli([
      'index',
      'build',
      join(REPO_ROOT, 'artifacts/corpus/kiosk'),
      '--embedder',
      embedder,
      '--out',
      'c1',
    ]);
    expect(ok.code, ok.stderr).toBe(0);
    appendFileSync(join(tmp, 'c1/segments/seg-000001/passages.jsonl'), 'x');
    const corrupt = await cli(['index', 'query', 'c1', 'printer']);
    expect(corrupt.code).toBe(4);
    expect(corrupt.stderr).toContain('passages.jsonl');
  });
});
