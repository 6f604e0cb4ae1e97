/**
 * `edgectl index query <site|ref>` as a user runs it (child processes, dist/): against a site's
 * data directory (the index its current generation serves, with the embedder synced beside it),
 * against a registry ref (index and embedder pulled and verified into a temporary directory), and
 * a target that is none of these (exit 3). The registry and the site are set up in process.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FsStore } from '../../src/registry/fs-store.js';
import { runCli } from '../helpers/cli.js';
import { publishBasics, siteWorld, type SiteWorld } from '../site/fixtures.js';
import { embedderModelDir, indexDir, tempDir } from './fixtures.js';

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
