/**
 * The fleet commands through the real CLI (child processes) on a directory registry: site add,
 * lint, site plan / apply, fleet log, and what each does with bad input or a tampered registry.
 */
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FsStore } from '../../src/registry/fs-store.js';
import { decodeEnvelope, encodeEnvelope, envelopePayloadBytes } from '../../src/registry/envelope.js';
import { fleetLogKey } from '../../src/registry/layout.js';
import { runCli } from '../helpers/cli.js';
import {
  EXAMPLE_REFS,
  makeTrust,
  publishManifest,
  siteYaml,
  writeProject,
  writeSite,
  type TestTrust,
} from './registry-fixture.js';

interface ErrorOut {
  error: {
    code: string;
    message: string;
    exitCode: number;
    details?: { problems?: { file: string; line: number; field: string }[] };
  };
}

describe('fleet commands (CLI)', () => {
  let dir: string;
  let t: TestTrust;
  const cli = (...args: string[]) => runCli(args, { cwd: dir });

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'edgectl-fleet-cli-'));
    t = makeTrust();
    writeProject(dir, t);
    const store = new FsStore(join(dir, 'registry'));
    for (const ref of EXAMPLE_REFS) await publishManifest(store, t.artifacts, ref);
    await store.close();
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('site add writes the declaration and a 0600 key, and refuses an existing site', async () => {
    const r = await cli(
      'site',
      'add',
      'store-004',
      '--labels',
      'region=eu-west,tier=branch',
      '--model',
      'model/draft@1.0.0',
      '--adapter',
      'adapter/support@1.0.0',
      '--policy',
      'policy/default@1.0.0',
      '--json',
    );
    expect(r.code).toBe(0);
    const out = r.json<{ keyid: string; secretKeyPath: string; file: string }>();
    expect(out.secretKeyPath).toBe(join(dir, '.edgectl/sites/store-004/site.key'));
    expect(statSync(out.secretKeyPath).mode & 0o777).toBe(0o600);
    const yaml = readFileSync(join(dir, 'sites/store-004.yaml'), 'utf8');
    expect(yaml).toContain(`keyid: ${out.keyid}`);
    expect(yaml).toContain('tier: branch');

    const again = await cli('site', 'add', 'store-004');
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/site store-004 already exists \(sites\/store-004\.yaml\)/);
    expect(readFileSync(join(dir, 'sites/store-004.yaml'), 'utf8')).toBe(yaml);

    const rekey = await cli('site', 'add', 'store-004', '--rekey', '--json');
    expect(rekey.code).toBe(0);
    const after = readFileSync(join(dir, 'sites/store-004.yaml'), 'utf8');
    expect(after).toContain(`keyid: ${rekey.json<{ keyid: string }>().keyid}`);
    expect(after).toContain('# Site store-004');

    const bad = await cli('site', 'add', 'store-005', '--model', 'adapter/support@1.0.0');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(
      /--model: ref "adapter\/support@1\.0\.0" is a adapter; the model slot takes model refs/,
    );
    const badIndex = await cli('site', 'add', 'store-005', '--index', 'model/draft@1.0.0');
    expect(badIndex.code).toBe(2);
    expect(badIndex.stderr).toMatch(
      /--index: ref "model\/draft@1\.0\.0" is a model; the indexes slot takes index refs/,
    );
    expect(badIndex.stderr).toContain('e.g. --index index/kb@1.0.0');
  });

  it('plan --detailed-exitcode: 2 with changes; apply; then 0; fleet log lists the entries', async () => {
    writeSite(
      join(dir, 'sites'),
      'store-001',
      siteYaml('store-001', { labels: { region: 'eu-west', tier: 'branch' } }),
    );
    writeSite(
      join(dir, 'sites'),
      'store-002',
      siteYaml('store-002', { labels: { region: 'us-east', tier: 'flagship' } }),
    );

    const plan = await cli('site', 'plan', '--detailed-exitcode', '--json');
    expect(plan.code).toBe(2);
    const p = plan.json<{ changes: boolean; seq: number; summary: { add: number }; ops: { op: string }[] }>();
    expect(p).toMatchObject({ changes: true, seq: 0, summary: { add: 2 } });
    expect(p.ops.map((o) => o.op)).toEqual(['site.put', 'site.put', 'assign', 'assign', 'assign']);

    const human = await cli('site', 'plan');
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/\+ site store-001\n {4}\+ labels\.region: eu-west/);
    expect(human.stdout).toMatch(/Plan: 2 to add, 0 to change, 0 to remove \(5 ops\)\./);

    const apply = await cli('site', 'apply', '--json');
    expect(apply.code).toBe(0);
    expect(apply.json<{ seq: number; snapshot: boolean }>()).toMatchObject({ seq: 1, snapshot: false });

    const clean = await cli('site', 'plan', '--detailed-exitcode', '--json');
    expect(clean.code).toBe(0);
    expect(clean.json<{ changes: boolean; seq: number }>()).toMatchObject({ changes: false, seq: 1 });

    const key = /publicKey: (\S+)/.exec(readFileSync(join(dir, 'sites/store-002.yaml'), 'utf8'))?.[1];
    const labels = { region: 'us-east', tier: 'branch' };
    writeSite(join(dir, 'sites'), 'store-002', siteYaml('store-002', { labels, adapters: [], key }));
    const change = await cli('site', 'plan');
    expect(change.stdout).toMatch(
      /~ site store-002\n {4}~ labels\.tier: flagship → branch\n {4}- adapters\[adapter\/support\]/,
    );
    expect((await cli('site', 'apply')).code).toBe(0);

    const log = await cli('fleet', 'log', '--json');
    expect(log.code).toBe(0);
    const l = log.json<{
      head: { seq: number };
      entries: { seq: number; keyids: string[]; ops: string[] }[];
    }>();
    expect(l.head.seq).toBe(2);
    expect(l.entries.map((e) => e.seq)).toEqual([1, 2]);
    expect(l.entries[1]!.keyids).toEqual([t.fleet.keyid]);
    expect(l.entries[1]!.ops).toEqual([
      'site.put store-002',
      'unassign adapter/support from 1 site (store-002)',
    ]);
    const text = await cli('fleet', 'log', '--since', '1');
    expect(text.stdout).toMatch(/#2 {2}\S+ {2}signed by sha256:\w+ {2}2 ops\n {4}site\.put store-002/);
    expect(text.stdout).not.toMatch(/#1 /);
  });

  it('lint and plan name file:line and field of invalid declarations (exit 2)', async () => {
    const sites = join(dir, 'sites');
    writeSite(sites, 'store-001', siteYaml('store-001'));
    // A copied file whose name was not changed.
    writeSite(sites, 'store-002', siteYaml('store-001'));
    writeSite(sites, 'store-003', siteYaml('store-003', { model: 'model/draft@1.0' }));
    writeSite(sites, 'store-004', siteYaml('store-004', { policy: 'model/draft@1.0.0' }));
    writeSite(sites, 'store-005', siteYaml('store-005', { extra: 'colour: blue' }));

    const lint = await cli('lint', '--json');
    expect(lint.code).toBe(2);
    const problems = lint.json<ErrorOut>().error.details?.problems ?? [];
    expect(problems.map((p) => `${p.file}:${p.line}: ${p.field}`)).toEqual([
      'sites/store-002.yaml:1: name',
      'sites/store-003.yaml:6: assignments.model',
      'sites/store-004.yaml:9: assignments.policy',
      'sites/store-005.yaml:10: colour',
    ]);

    const text = await cli('lint');
    expect(text.code).toBe(2);
    expect(text.stderr).toContain('sites/store-005.yaml:10: colour: unknown field "colour"');
    expect(text.stderr).toContain(
      'sites/store-002.yaml:1: name: duplicate site name "store-001" (also declared in sites/store-001.yaml:1); the name must equal the file name "store-002"',
    );
    expect(text.stderr).toMatch(
      /sites\/store-003\.yaml:6: assignments\.model: artifact ref "model\/draft@1\.0": "1\.0" is not a semantic version/,
    );
    expect(text.stderr).toContain(
      'sites/store-004.yaml:9: assignments.policy: ref "model/draft@1.0.0" is a model; the policy slot takes policy refs',
    );

    const plan = await cli('site', 'plan');
    expect(plan.code).toBe(2);
    expect(plan.stderr).toContain('sites/store-005.yaml:10: colour: unknown field "colour"');

    // A single file lints alone; a path no linter handles is a usage error.
    expect((await cli('lint', 'sites/store-003.yaml')).code).toBe(2);
    for (const n of ['store-002', 'store-003', 'store-004', 'store-005']) rmSync(join(sites, `${n}.yaml`));
    const ok = await cli('lint', 'sites');
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/1 file checked \(sites\): no problems\./);
    const elsewhere = await cli('lint', 'edgectl.yaml');
    expect(elsewhere.code).toBe(2);
    expect(elsewhere.stderr).toMatch(/edgectl\.yaml: no linter checks this path/);
  });

  it('an artifact missing from the registry: plan and apply exit 2 naming file:line, nothing written', async () => {
    writeSite(join(dir, 'sites'), 'store-001', siteYaml('store-001', { model: 'model/draft@2.0.0' }));
    const plan = await cli('site', 'plan', '--json');
    expect(plan.code).toBe(2);
    const err = plan.json<ErrorOut>().error;
    expect(err.code).toBe('E_ARTIFACT_MISSING');
    expect(err.message).toBe(
      'sites/store-001.yaml:6: assignments.model: model/draft@2.0.0 is not in the registry',
    );
    const apply = await cli('site', 'apply');
    expect(apply.code).toBe(2);
    expect(apply.stderr).toContain(
      'sites/store-001.yaml:6: assignments.model: model/draft@2.0.0 is not in the registry',
    );
    const store = new FsStore(join(dir, 'registry'));
    expect(await store.list('fleet/')).toEqual([]);
    await store.close();
  });

  it('a tampered entry makes plan, apply and fleet log exit 4', async () => {
    writeSite(join(dir, 'sites'), 'store-001', siteYaml('store-001'));
    expect((await cli('site', 'apply')).code).toBe(0);
    const file = join(dir, 'registry', fleetLogKey(1));
    const env = decodeEnvelope(readFileSync(file), 'x');
    const payload = envelopePayloadBytes(env).toString().replace('eu-west', 'eu-east');
    writeFileSync(file, encodeEnvelope({ ...env, payload: Buffer.from(payload).toString('base64') }));
    for (const args of [
      ['site', 'plan'],
      ['site', 'apply'],
      ['fleet', 'log'],
    ]) {
      const r = await cli(...args);
      expect(r.code, args.join(' ')).toBe(4);
      expect(r.stderr).toMatch(/fleet\/log\/000000000001\.json: bad signature/);
    }
  });

  it('apply without a fleet key explains where to put one', async () => {
    writeFileSync(join(dir, 'edgectl.yaml'), 'registry: file:registry\n');
    writeSite(join(dir, 'sites'), 'store-001', siteYaml('store-001'));
    const r = await cli('site', 'apply');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/no signing key given/);
    expect(r.stderr).toMatch(/--key .*keys\.fleet.*EDGECTL_SIGNING_KEY/);
  });
});
