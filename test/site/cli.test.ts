/**
 * The site commands through the built CLI (child processes), on a directory registry and on
 * s3rver: site add -> site apply -> site sync -> change the adapter -> apply -> sync (only its
 * chunks) -> site rollback -> sync keeps the pin -> site status. Then what the commands do with a
 * tampered registry (exit 4, nothing changed), an unreachable one (exit 0, offline warning) and bad
 * input (exit 2 / 3).
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { encodeEnvelope } from '../../src/registry/envelope.js';
import { writeKeyPair } from '../../src/registry/keys.js';
import { HEAD_KEY } from '../../src/registry/layout.js';
import type { SyncResult } from '../../src/site/sync.js';
import type { SiteStatus } from '../../src/site/status.js';
import type { RollbackResult } from '../../src/site/rollback.js';
import { overwrite } from '../artifact/fixtures.js';
import { NODE, RUN_JS, runCli, type CliResult } from '../helpers/cli.js';
import { forEachBackend } from '../helpers/stores.js';
import { adapterDir, publishBasics, siteWorld, tempDir, type SiteWorld } from './fixtures.js';

interface ErrorOut {
  error: { code: string; exitCode: number; message: string };
}

/** A project directory (edgectl.yaml, trust/root.json, fleet key) around a fixture registry. */
function project(w: SiteWorld, env: Record<string, string>) {
  const dir = join(tempDir('edgectl-site-cli-'));
  mkdirSync(join(dir, 'trust'), { recursive: true });
  writeFileSync(join(dir, 'trust/root.json'), encodeEnvelope(w.t.envelope));
  writeKeyPair(join(dir, 'keys/fleet.key'), w.t.fleet);
  // s3rver does not enforce conditional writes: fleet writes there need the single-writer lease.
  const single = w.store.url.startsWith('s3://') ? 'singleWriter: true\n' : '';
  writeFileSync(
    join(dir, 'edgectl.yaml'),
    `registry: ${w.store.url}\nkeys:\n  fleet: keys/fleet.key\n${single}`,
  );
  const cli = (...args: string[]): Promise<CliResult> => runCli(args, { cwd: dir, env });
  return { dir, cli, dataDir: join(dir, '.edgectl/sites/store-001') };
}

forEachBackend((mk) => {
  it('add, apply, sync, change, sync only the change, rollback, status', async () => {
    const w = await siteWorld(await mk());
    const refs = await publishBasics(w, 256 * 1024);
    const p = project(w, mk.backend === 's3' ? { ...mk.s3?.env } : {});

    const add = await p.cli(
      'site',
      'add',
      'store-001',
      '--model',
      refs.model,
      '--adapter',
      refs.adapters[0] ?? '',
      '--policy',
      refs.policy,
    );
    expect(add.code, add.stderr).toBe(0);
    expect((await p.cli('site', 'apply')).code).toBe(0);

    const s1 = await p.cli('site', 'sync', 'store-001', '--once', '--json');
    expect(s1.code, s1.stderr).toBe(0);
    const r1 = s1.json<SyncResult>();
    expect(r1).toMatchObject({ seq: 1, changed: true });
    expect(r1.offline).toBeUndefined();
    expect(r1.warnings).toEqual([]);
    expect(readlinkSync(join(p.dataDir, 'current'))).toBe(`generations/${r1.generation}`);
    expect(readFileSync(join(p.dataDir, 'current/policy/policy.yaml'), 'utf8')).toContain('routing:');

    const human = await p.cli('site', 'sync', 'store-001', '--once');
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(
      /store-001: fleet seq 1: generation [0-9a-f]{20} is up to date; 1 request\(s\), 0 B\./,
    );

    // Change the adapter in git, apply, sync: only the adapter's chunks come over.
    await w.publish(
      adapterDir(tempDir(), { version: '1.1.0', base: 'model/draft@1.0.0', bytes: 32 * 1024, seed: 8 }),
    );
    const yamlPath = join(p.dir, 'sites/store-001.yaml');
    writeFileSync(
      yamlPath,
      readFileSync(yamlPath, 'utf8').replace('adapter/support@1.0.0', 'adapter/support@1.1.0'),
    );
    expect((await p.cli('site', 'apply')).code).toBe(0);
    const s2 = (await p.cli('site', 'sync', 'store-001', '--once', '--json')).json<SyncResult>();
    expect(s2).toMatchObject({ seq: 2, changed: true, previousGeneration: r1.generation });
    expect(s2.bytesFetched).toBeLessThan(64 * 1024); // the 256 KiB model and the policy were not fetched again

    const rb = await p.cli('site', 'rollback', 'store-001', '--json');
    expect(rb.code, rb.stderr).toBe(0);
    expect(rb.json<RollbackResult>()).toMatchObject({ generation: r1.generation, previous: s2.generation });
    const held = (await p.cli('site', 'sync', 'store-001', '--once', '--json')).json<SyncResult>();
    expect(held).toMatchObject({ generation: r1.generation, pinned: true, changed: false });

    const st = await p.cli('site', 'status', 'store-001', '--json');
    expect(st.code).toBe(0);
    const status = st.json<SiteStatus>();
    expect(status).toMatchObject({
      synced: true,
      seq: 2,
      generation: r1.generation,
      previousGeneration: s2.generation,
      upToDate: true,
      frozen: false,
      pin: { generation: r1.generation },
      drift: { changed: [], missing: [], extra: [] },
    });
    expect(status.artifacts.map((a) => a.ref)).toEqual([
      'policy/default@1.0.0',
      'adapter/support@1.0.0',
      'model/draft@1.0.0',
    ]);
    const text = await p.cli('site', 'status', 'store-001');
    expect(text.stdout).toMatch(/generation: [0-9a-f]{20} pinned by a rollback/);
    expect(text.stdout).toMatch(/freshness: {2}head seq 2 valid until/);
  });

  it('a tampered head: exit 4, error JSON, current and state.json unchanged', async () => {
    const w = await siteWorld(await mk());
    const refs = await publishBasics(w, 64 * 1024);
    await w.assign(refs);
    const p = project(w, mk.backend === 's3' ? { ...mk.s3?.env } : {});
    const first = await p.cli('site', 'sync', 'store-001', '--once', '--data-dir', w.dataDir, '--json');
    expect(first.code, first.stderr).toBe(0);
    await w.publish(adapterDir(tempDir(), { version: '1.1.0', base: 'model/draft@1.0.0', seed: 2 }));
    await w.assign({ ...refs, adapters: ['adapter/support@1.1.0'] });
    const head = (await w.store.get(HEAD_KEY))?.body ?? Buffer.alloc(0);
    await overwrite(
      w.store,
      HEAD_KEY,
      Buffer.from(
        head
          .toString('utf8')
          .replace(/"payload": "(.)/, (_m, c: string) => `"payload": "${c === 'A' ? 'B' : 'A'}`),
      ),
    );
    const before = [
      readlinkSync(join(w.dataDir, 'current')),
      readFileSync(join(w.dataDir, 'state.json'), 'utf8'),
    ];

    const r = await p.cli('site', 'sync', 'store-001', '--once', '--data-dir', w.dataDir, '--json');
    expect(r.code).toBe(4);
    expect(r.json<ErrorOut>().error).toMatchObject({ exitCode: 4 });
    expect([
      readlinkSync(join(w.dataDir, 'current')),
      readFileSync(join(w.dataDir, 'state.json'), 'utf8'),
    ]).toEqual(before);
    const human = await p.cli('site', 'sync', 'store-001', '--once', '--data-dir', w.dataDir);
    expect(human.code).toBe(4);
    expect(human.stderr).toMatch(/^Error: fleet\/head\.json: /m);
  });
});

it('without --once, syncs every --interval until SIGTERM, then exits 0', async () => {
  const { FsStore } = await import('../../src/registry/fs-store.js');
  const w = await siteWorld(new FsStore(join(tempDir(), 'registry')));
  await w.assign(await publishBasics(w, 64 * 1024));
  const p = project(w, {});
  const child = spawn(
    NODE,
    [RUN_JS, 'site', 'sync', 'store-001', '--data-dir', w.dataDir, '--interval', '100ms'],
    {
      cwd: p.dir,
      env: { ...process.env, CI: '1' },
    },
  );
  let stdout = '';
  const twoSyncs = new Promise<void>((resolve) => {
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      if ((stdout.match(/is up to date/g) ?? []).length >= 2) resolve();
    });
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  await twoSyncs;
  expect(stdout).toMatch(/^store-001: fleet seq 1: switched to generation [0-9a-f]{20} \(previous: none\)/);
  child.kill('SIGTERM');
  expect(await exited).toBe(0);
});

it('offline is exit 0 with a warning; bad input is exit 2 or 3', async () => {
  const { FsStore } = await import('../../src/registry/fs-store.js');
  const regDir = join(tempDir(), 'registry');
  const w = await siteWorld(new FsStore(regDir));
  await w.assign(await publishBasics(w, 64 * 1024));
  const p = project(w, {});
  expect((await p.cli('site', 'sync', 'store-001', '--once', '--data-dir', w.dataDir)).code).toBe(0);
  const gen = readlinkSync(join(w.dataDir, 'current'));
  rmSync(regDir, { recursive: true, force: true });

  const off = await p.cli('site', 'sync', 'store-001', '--once', '--data-dir', w.dataDir, '--json');
  expect(off.code).toBe(0);
  expect(off.json<SyncResult>()).toMatchObject({ offline: true, changed: false, seq: 1 });
  expect(off.stderr).toMatch(/warn: offline: .*no fleet\/head\.json.*keeps serving/);
  expect(readlinkSync(join(w.dataDir, 'current'))).toBe(gen);
  const status = (
    await p.cli('site', 'status', 'store-001', '--data-dir', w.dataDir, '--json')
  ).json<SiteStatus>();
  expect(status).toMatchObject({ offline: true, lastSync: { result: 'offline' } });

  const noPrev = await p.cli('site', 'rollback', 'store-001', '--data-dir', w.dataDir);
  expect(noPrev.code).toBe(3);
  expect(noPrev.stderr).toMatch(/has no previous generation to roll back to/);
  const unknown = await p.cli('site', 'status', 'store-404');
  expect(unknown.code).toBe(3);
  expect(unknown.stderr).toMatch(/site store-404 has no data directory/);
  const interval = await p.cli('site', 'sync', 'store-001', '--interval', 'soon');
  expect(interval.code).toBe(2);
  expect(interval.stderr).toMatch(/invalid --interval "soon"/);
  const noTrust = await p.cli(
    'site',
    'sync',
    'store-009',
    '--once',
    '--data-dir',
    join(p.dir, 'fresh'),
    '--trust',
    'nope.json',
  );
  expect(noTrust.code).toBe(3);
  expect(noTrust.stderr).toMatch(
    /the site has no pinned trust root \(.*fresh\/trust-root\.json\) and there is no project trust root/,
  );
  const other = await p.cli('site', 'sync', 'store-002', '--once', '--data-dir', w.dataDir);
  expect(other.code).toBe(2);
  expect(other.stderr).toMatch(/is the data directory of site store-001, not store-002/);
});
