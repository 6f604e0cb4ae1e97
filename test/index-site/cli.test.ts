/**
 * `edgectl index query <site|ref>` as a user runs it (child processes, dist/): against a site's
 * data directory (the index its current generation serves, with the embedder synced beside it),
 * against a registry ref (index and embedder pulled and verified), and a target that is none of
 * these (exit 3). Then `index build --embedder <model ref>` and `index update <index ref>`: the
 * published encoder and index pulled (verified) and used, and refs of the wrong kind or role
 * refused (exit 2). The registry and the site are set up in process.
 */
import { cpSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FsStore } from '../../src/registry/fs-store.js';
import { REPO_ROOT, runCli } from '../helpers/cli.js';
import { publishBasics, siteWorld, type SiteWorld } from '../site/fixtures.js';
import { CORPUS as CORPUS_REL, embedderModelDir, indexDir, tempDir } from './fixtures.js';

const CORPUS = join(REPO_ROOT, CORPUS_REL);

interface QueryJson {
  index: string;
  passages: { id: string; bm25Rank?: number; denseRank?: number }[];
}

let w: SiteWorld;
let store: FsStore;
let registry: string;
const cwd = tempDir();

beforeAll(async () => {
  registry = join(tempDir(), 'registry');
  store = new FsStore(registry);
  w = await siteWorld(store);
  const refs = await publishBasics(w, 16 * 1024);
  const src = tempDir();
  await w.publish(embedderModelDir(src));
  await w.publish(await indexDir(src));
  await w.assign({ ...refs, indexes: ['index/kb@1.0.0'] });
  await w.sync();
}, 120_000);
afterAll(async () => {
  await store?.close();
});

const cli = (args: string[]) =>
  runCli(args, { cwd, timeoutMs: 120_000, env: { XDG_CACHE_HOME: join(cwd, 'cache') } });

describe('edgectl index query <site|ref>', () => {
  it('queries the index a site serves', async () => {
    const r = await cli([
      'index',
      'query',
      w.site,
      'the receipt printer is jammed',
      '--data-dir',
      w.dataDir,
      '--k',
      '3',
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as QueryJson;
    expect(out.index).toBe(`${w.site}:kb`);
    expect(out.passages).toHaveLength(3);
    expect(out.passages[0]?.id).toMatch(/printer/);
  });

  it('queries a registry ref (pulled and verified)', async () => {
    const args = [
      'index',
      'query',
      'index/kb@1.0.0',
      'the receipt printer is jammed',
      '--registry',
      `file:${registry}`,
    ];
    const r = await cli([...args, '--trust', w.trustPath, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as QueryJson;
    expect(out.index).toBe('index/kb@1.0.0');
    expect(out.passages[0]?.id).toMatch(/printer/);
  });

  it('a target that is no directory, ref or site is exit 3', async () => {
    const r = await cli(['index', 'query', 'no-such-site', 'x', '--data-dir', join(cwd, 'nowhere')]);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/"no-such-site" is not an index directory, an index ref or a site/);
  });
});

interface WriteJson {
  dir: string;
  from?: string;
  added: number;
  unchanged: number;
  manifest: { documents: number; embedder: { name: string; digest: string } };
}

describe('edgectl index build|update with registry refs', () => {
  const reg = () => ['--registry', `file:${registry}`, '--trust', w.trustPath, '--json'];

  it('builds with --embedder model/<name>@<version>: the published encoder, pulled and verified', async () => {
    const out = join(cwd, 'built-from-ref');
    const r = await cli([
      'index',
      'build',
      CORPUS,
      '--embedder',
      'model/kiosk-embedder@1.0.0',
      '--out',
      out,
      ...reg(),
    ]);
    expect(r.code, r.stderr).toBe(0);
    const built = JSON.parse(r.stdout) as WriteJson;
    expect(built.manifest.documents).toBe(120);
    // The encoder stays in the project's .edgectl/artifacts (where `verifier up --model <ref>` puts
    // models too), which the index's embedder hint names, so a later query needs no --embedder.
    const cached = join(cwd, '.edgectl/artifacts/model/kiosk-embedder/1.0.0');
    expect(existsSync(join(cached, 'model.onnx'))).toBe(true);
    expect(readFileSync(join(out, '.edgectl-embedder'), 'utf8').trim()).toBe(cached);
    const q = await cli(['index', 'query', out, 'the receipt printer is jammed', '--json']);
    expect(q.code, q.stderr).toBe(0);
    expect((JSON.parse(q.stdout) as QueryJson).passages[0]?.id).toMatch(/printer/);
  });

  it('updates from index/<name>@<version>: only the changed documents are new', async () => {
    const corpus = join(cwd, 'corpus-v2');
    cpSync(CORPUS, corpus, { recursive: true });
    writeFileSync(
      join(corpus, 'self-checkout.md'),
      '# Self checkout frozen\n\nRestart it from the back panel.\n',
    );
    const out = join(cwd, 'kb-1.1.0');
    const r = await cli(['index', 'update', 'index/kb@1.0.0', corpus, '--out', out, ...reg()]);
    expect(r.code, r.stderr).toBe(0);
    const up = JSON.parse(r.stdout) as WriteJson;
    expect(up.from).toBe('index/kb@1.0.0');
    expect(up.added).toBe(1);
    expect(up.unchanged).toBe(120);
    expect(up.manifest.embedder.name).toBe('kiosk-lsa-embedder');
    const q = await cli(['index', 'query', out, 'self checkout frozen', '--json', '--k', '1']);
    expect(q.code, q.stderr).toBe(0);
    expect((JSON.parse(q.stdout) as QueryJson).passages[0]?.id).toBe('self-checkout.md#0');
  });

  it('refuses an --embedder ref of another kind or of a non-embedder model (exit 2)', async () => {
    for (const [ref, msg] of [
      ['index/kb@1.0.0', /--embedder index\/kb@1\.0\.0 is an index ref/],
      ['model/draft@1.0.0', /--embedder model\/draft@1\.0\.0 is a model of role draft, not an embedder/],
    ] as const) {
      const r = await cli([
        'index',
        'build',
        CORPUS,
        '--embedder',
        ref,
        '--out',
        join(cwd, 'never'),
        ...reg(),
      ]);
      expect(r.code, r.stderr).toBe(2);
      expect(`${r.stdout}${r.stderr}`).toMatch(msg);
      expect(existsSync(join(cwd, 'never'))).toBe(false);
    }
  });
});
