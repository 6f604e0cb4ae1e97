/**
 * docs/operations.md "Rolling out an index", run as written through the real CLI in a fresh
 * `edgectl init` project on a directory registry: the committed fixture encoder stands in for the
 * downloaded embedder and the committed kiosk corpus for the user's documents. Every command must
 * exit 0; the sites must be declared with the index, a synced site must show it with its age, the
 * new version must publish deduplicated (only a small share uploaded, figures printed) and find the
 * added document, and the canary must start on the kiosks. Outside the block, standing in for the
 * sites' own sync loops, every kiosk syncs before the canary and the canary site after it, fetching
 * only the new segment's share. The canary's judging is test/index-site/rollout.test.ts's.
 */
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { PublishResult } from '../../src/artifact/publish.js';
import { REPO_ROOT, runCli, type CliResult } from '../helpers/cli.js';
import { CORPUS, EMBEDDER } from './fixtures.js';

const tmp = mkdtempSync(join(tmpdir(), 'edgectl-index-procedure-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** The first bash block of the docs section, one command per line (comments dropped). */
function procedure(): string[] {
  const doc = readFileSync(join(REPO_ROOT, 'docs/operations.md'), 'utf8');
  const section = doc.split('\n## Rolling out an index\n')[1]?.split('\n## ')[0] ?? '';
  const block = /```bash\n([\s\S]*?)```/.exec(section)?.[1] ?? '';
  return block.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('#'));
}

/** Splits a command line on spaces, keeping "double-quoted" words whole. */
function words(line: string): string[] {
  return [...line.matchAll(/"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? (m[2] as string));
}

const STAND_INS: Record<string, string> = {
  '~/Downloads/kiosk-embedder': join(REPO_ROOT, EMBEDDER),
  '~/kiosk-docs': join(REPO_ROOT, CORPUS),
};

/** `cp -r <src> <dst>` as a shell would run it: dst's parent must exist and dst must not. */
function copy(project: string, w: string[], line: string): void {
  const [, flag, from, to] = w;
  const source = STAND_INS[from as string];
  if (flag !== '-r' || !source || !to || w.length !== 4) throw new Error(`no stand-in for: ${line}`);
  const dest = join(project, to);
  expect(existsSync(dirname(dest)), `${line}: ${dirname(to)} does not exist`).toBe(true);
  expect(existsSync(dest), `${line}: ${to} exists (cp -r would copy into it)`).toBe(false);
  cpSync(source, dest, { recursive: true });
  rmSync(join(dest, 'artifact.yaml'), { force: true }); // a download has none
}

function write(project: string, line: string): void {
  const m = /^printf '([^'%]*)' > (\S+)$/.exec(line);
  if (!m) throw new Error(`unexpected printf: ${line}`);
  const file = join(project, m[2] as string);
  expect(existsSync(dirname(file)), `${line}: no directory for ${m[2]}`).toBe(true);
  writeFileSync(file, (m[1] as string).replaceAll('\\n', '\n'));
}

async function syncAll(cli: (args: string[]) => Promise<CliResult>, sites: string[]): Promise<void> {
  for (const site of sites) {
    const r = await cli(['site', 'sync', site, '--once', '--json']);
    expect(r.code, `site sync ${site}: ${r.stderr}`).toBe(0);
  }
}

interface IndexStatus {
  indexes: { name: string; ref: string; documents: number; ageSeconds: number }[];
}
interface RolloutShow {
  rollout: { id: string; status: string; candidate: string; slot: string; canary: string[] };
}
interface Query {
  passages: { docId: string }[];
}

describe('docs/operations.md: Rolling out an index', () => {
  it('runs as written: embedder, index, sites, a new version deduplicated, canary started', async () => {
    const project = join(tmp, 'fleet');
    const cli = (args: string[]): Promise<CliResult> => runCli(args, { cwd: project, timeoutMs: 120_000 });
    const init = await runCli(['init', project, '--json'], { cwd: tmp });
    expect(init.code, init.stderr).toBe(0);
    // Everything `init` prints before planning: keys, trust root, registry, its artifacts published.
    const next = init.json<{ next: string[] }>().next;
    const setup = next.slice(
      0,
      next.findIndex((s) => s.includes('site plan')),
    );
    expect(setup).toContain('edgectl publish artifact artifacts/models/draft');
    for (const step of setup) {
      const r = await cli(words(step).slice(1));
      expect(r.code, `${step}: ${r.stderr}`).toBe(0);
    }

    const lines = procedure();
    expect(lines.filter((l) => l.startsWith('edgectl ')).length).toBe(13);
    const published: Record<string, PublishResult> = {};
    const out: Record<string, CliResult> = {};
    const sites: string[] = [];
    for (const line of lines) {
      const w = words(line);
      if (w[1] === 'site' && w[2] === 'add') sites.push(w[3] as string);
      // Not in the docs block: running sites sync on their own; here each syncs once before the canary.
      if (w[1] === 'rollout' && w[2] === 'canary') await syncAll(cli, sites);
      if (w[0] === 'cp') copy(project, w, line);
      else if (w[0] === 'printf') write(project, line);
      else if (w[0] === 'edgectl') {
        const r = await cli([...w.slice(1), '--json']);
        expect(r.code, `${line}: ${r.stdout}${r.stderr}`).toBe(0);
        out[`${w[1]} ${w[2]}`] = r;
        if (w[1] === 'publish') published[w[3] as string] = r.json<PublishResult>();
      } else throw new Error(`the procedure has a line this test cannot run: ${line}`);
    }

    expect(published['artifacts/models/embedder']?.ref).toBe('model/kiosk-embedder@1.0.0');
    expect(readFileSync(join(project, 'sites/kiosk-002.yaml'), 'utf8')).toMatch(
      /indexes:\n\s+- index\/kb@1\.0\.0/,
    );
    const status = out['site status']?.json<IndexStatus>();
    expect(status?.indexes).toEqual([
      expect.objectContaining({ name: 'kb', ref: 'index/kb@1.0.0', documents: 120 }),
    ]);

    const first = published['build/kb'];
    const second = published['build/kb-1.1.0'];
    expect(first?.ref).toBe('index/kb@1.0.0');
    expect(second?.ref).toBe('index/kb@1.1.0');
    if (!first || !second) throw new Error('not published');
    console.log(
      `index/kb@1.1.0 (one document added): ${second.bytesUploaded} of ${second.bytesTotal} bytes uploaded ` +
        `(${second.chunksUploaded} new chunks, ${second.chunksReused} reused of ${second.chunksTotal}); ` +
        `1.0.0 uploaded ${first.bytesUploaded}`,
    );
    expect(second.dedupSources).toContain('index/kb@1.0.0');
    expect(second.bytesUploaded).toBeLessThan(second.bytesTotal * 0.05);
    expect(out['index query']?.json<Query>().passages[0]?.docId).toBe('self-checkout.md');

    const rollout = out['rollout status']?.json<RolloutShow>().rollout;
    expect(rollout).toMatchObject({ id: 'kb-1.1.0', status: 'running', candidate: 'index/kb@1.1.0' });
    expect(rollout?.slot).toBe('indexes');
    expect(rollout?.canary).toHaveLength(1);

    // Not in the docs block: the canary site syncs 1.1.0 and fetches only what changed.
    const canary = rollout?.canary[0] as string;
    const sync = await cli(['site', 'sync', canary, '--once', '--json']);
    expect(sync.code, sync.stderr).toBe(0);
    const fetched = sync.json<{ changed: boolean; bytesFetched: number; chunksFetched: number }>();
    console.log(
      `canary ${canary} synced index/kb@1.1.0: ${fetched.bytesFetched} bytes in ${fetched.chunksFetched} chunks fetched`,
    );
    expect(fetched.changed).toBe(true);
    expect(fetched.bytesFetched).toBeLessThan(second.bytesTotal * 0.1);
    const after = await cli(['site', 'status', canary, '--json']);
    expect(after.json<IndexStatus>().indexes).toEqual([
      expect.objectContaining({ name: 'kb', ref: 'index/kb@1.1.0', documents: 121 }),
    ]);
  }, 300_000);
});
