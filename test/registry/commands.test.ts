/**
 * keys, trust and registry commands through the built CLI, as real child processes.
 */
import { chmodSync, existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ErrorJson } from '../../src/foundation/errors.js';
import type { InitRegistryResult } from '../../src/registry/init.js';
import type { KeyListing } from '../../src/registry/key-list.js';
import type { RotateResult, TrustSummary } from '../../src/registry/trust-files.js';
import { runCli } from '../helpers/cli.js';
import { startS3, type S3Fixture } from '../helpers/s3.js';

interface Generated {
  keyid: string;
  secretKeyPath: string;
  publicKeyPath: string;
}

function project(yaml = ''): string {
  const dir = mkdtempSync(join(tmpdir(), 'edgectl-cmd-'));
  writeFileSync(join(dir, 'edgectl.yaml'), yaml);
  return dir;
}

async function generate(cwd: string, out: string): Promise<Generated> {
  const r = await runCli(['keys', 'generate', '--out', out, '--json'], { cwd });
  expect(r.code, r.stderr).toBe(0);
  return r.json<Generated>();
}

describe('keys commands', () => {
  it('keys generate writes a 0600 secret and a .pub and prints the key id; refuses to overwrite', async () => {
    const cwd = project();
    const g = await generate(cwd, 'keys/root.key');
    expect(g.keyid).toMatch(/^sha256:[0-9a-f]{32}$/);
    expect(g.secretKeyPath).toBe(join(cwd, 'keys/root.key'));
    expect(statSync(g.secretKeyPath).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(g.publicKeyPath, 'utf8'))).toMatchObject({ keyid: g.keyid });
    const before = readFileSync(g.secretKeyPath);

    const again = await runCli(['keys', 'generate', '--out', 'keys/root.key'], { cwd });
    expect(again.code).toBe(2);
    expect(again.stderr).toContain(`refusing to overwrite the existing key file ${g.secretKeyPath}`);
    expect(again.stderr).toContain('--force');
    expect(readFileSync(g.secretKeyPath).equals(before)).toBe(true);

    const json = await runCli(['keys', 'generate', '--out', 'keys/root.key', '--json'], { cwd });
    expect(json.code).toBe(2);
    expect(json.json<ErrorJson>().error).toMatchObject({ code: 'E_KEY_EXISTS', exitCode: 2 });

    const forced = await runCli(['keys', 'generate', '--out', 'keys/root.key', '--force', '--json'], { cwd });
    expect(forced.code).toBe(0);
    expect(forced.json<Generated>().keyid).not.toBe(g.keyid);
  });

  it('keys list shows keys, secret presence, mode and roles', async () => {
    const cwd = project('keys:\n  fleet: secrets/fleet.key\n');
    const root = await generate(cwd, 'keys/root.key');
    const fleet = await generate(cwd, 'secrets/fleet.key');
    chmodSync(fleet.secretKeyPath, 0o644);
    expect(
      (await runCli(['trust', 'init', '--key', 'keys/root.key', '--fleet-key', fleet.publicKeyPath], { cwd }))
        .code,
    ).toBe(0);
    const r = await runCli(['keys', 'list', '--json'], { cwd });
    expect(r.code, r.stderr).toBe(0);
    const keys = r.json<{ keys: KeyListing[] }>().keys;
    const byId = Object.fromEntries(keys.map((k) => [k.keyid, k]));
    expect(byId[root.keyid]).toMatchObject({ hasSecret: true, modeOk: true, roles: ['root', 'artifacts'] });
    expect(byId[fleet.keyid]).toMatchObject({ hasSecret: true, modeOk: false, roles: ['fleet'] });
    const human = await runCli(['keys', 'list'], { cwd });
    expect(human.stdout).toContain(`${fleet.keyid}  secret: yes, mode ok: no, roles: fleet`);
  });
});

describe('trust commands', () => {
  it('trust init, show and rotate; rotation to new keys needs the current key', async () => {
    const cwd = project();
    const root1 = await generate(cwd, 'keys/root.key');
    const init = await runCli(['trust', 'init', '--key', 'keys/root.key', '--expires', '30d', '--json'], {
      cwd,
    });
    expect(init.code, init.stderr).toBe(0);
    const v1 = init.json<TrustSummary>();
    expect(v1).toMatchObject({ version: 1, expired: false, path: join(cwd, 'trust/root.json') });
    expect(v1.roles.root).toEqual({ keyids: [root1.keyid], threshold: 1 });
    expect(Date.parse(v1.expires) - Date.now()).toBeGreaterThan(29 * 86_400_000);
    expect(existsSync(join(cwd, 'trust/root/1.json'))).toBe(true);

    const refused = await runCli(['trust', 'init', '--key', 'keys/root.key'], { cwd });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/a trust root already exists at .*trust\/root\.json/);

    const root2 = await generate(cwd, 'keys/root2.key');
    const onlyNew = await runCli(['trust', 'rotate', '--new-key', 'keys/root2.key'], { cwd });
    expect(onlyNew.code).toBe(2);
    expect(onlyNew.stderr).toContain('no signing key given');

    const wrong = await runCli(
      ['trust', 'rotate', '--key', 'keys/root2.key', '--new-key', 'keys/root2.key'],
      { cwd },
    );
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(/needs 1 signature\(s\) from version 1's \(current\) root keys/);

    const rot = await runCli(
      ['trust', 'rotate', '--key', 'keys/root.key', '--new-key', 'keys/root2.key', '--json'],
      { cwd },
    );
    expect(rot.code, rot.stderr).toBe(0);
    const v2 = rot.json<RotateResult>();
    expect(v2).toMatchObject({ version: 2, previousVersion: 1 });
    expect(v2.roles.root.keyids).toEqual([root2.keyid]);
    expect(v2.roles.artifacts.keyids).toEqual([root1.keyid]);

    const show = await runCli(['trust', 'show'], { cwd });
    expect(show.code).toBe(0);
    expect(show.stdout).toContain('version: 2');
    expect(show.stdout).toContain(`root: 1 of ${root2.keyid}`);
  });

  it('trust show marks an expired root; a tampered root exits 4', async () => {
    const cwd = project();
    await generate(cwd, 'keys/root.key');
    expect((await runCli(['trust', 'init', '--key', 'keys/root.key', '--expires', '1s'], { cwd })).code).toBe(
      0,
    );
    await new Promise((r) => setTimeout(r, 1100));
    const show = await runCli(['trust', 'show', '--json'], { cwd });
    expect(show.code).toBe(0);
    expect(show.json<TrustSummary>().expired).toBe(true);

    const path = join(cwd, 'trust/root.json');
    const env = JSON.parse(readFileSync(path, 'utf8')) as { payload: string };
    const payload = JSON.parse(Buffer.from(env.payload, 'base64').toString()) as { expires: string };
    payload.expires = '2099-01-01T00:00:00.000Z';
    env.payload = Buffer.from(JSON.stringify(payload)).toString('base64');
    writeFileSync(path, JSON.stringify(env));
    const tampered = await runCli(['trust', 'show'], { cwd });
    expect(tampered.code).toBe(4);
    expect(tampered.stderr).toMatch(/bad signature/);
  });

  it('refuses a group-readable root key with the chmod fix; accepts EDGECTL_SIGNING_KEY', async () => {
    const cwd = project();
    const g = await generate(cwd, 'keys/root.key');
    chmodSync(g.secretKeyPath, 0o644);
    const r = await runCli(['trust', 'init', '--key', 'keys/root.key'], { cwd });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`chmod 600 ${g.secretKeyPath}`);
    const text = readFileSync(g.secretKeyPath, 'utf8');
    const viaEnv = await runCli(['trust', 'init', '--json'], { cwd, env: { EDGECTL_SIGNING_KEY: text } });
    expect(viaEnv.code, viaEnv.stderr).toBe(0);
    expect(viaEnv.json<TrustSummary>().roles.root.keyids).toEqual([g.keyid]);
    expect(viaEnv.stdout + viaEnv.stderr).not.toContain(JSON.parse(text).secretKey as string);
  });
});

describe('registry init', () => {
  let s3: S3Fixture;
  beforeAll(async () => {
    s3 = await startS3();
  });
  afterAll(async () => {
    await s3.stop();
  });

  async function trustedProject(yaml = ''): Promise<string> {
    const cwd = project(yaml);
    await generate(cwd, 'keys/root.key');
    expect((await runCli(['trust', 'init', '--key', 'keys/root.key'], { cwd })).code).toBe(0);
    return cwd;
  }

  it('initialises a directory registry, idempotently', async () => {
    const cwd = await trustedProject('registry: file:reg\n');
    const r = await runCli(['registry', 'init', '--json'], { cwd });
    expect(r.code, r.stderr).toBe(0);
    expect(r.json<InitRegistryResult>()).toEqual({
      url: `file:${join(cwd, 'reg')}`,
      trustVersion: 1,
      conditionalWrites: true,
      conditionalWriteProbe: {
        createOnly: 'enforced',
        compareAndSwap: 'enforced',
        ifMatchForm: null,
        answers: [],
      },
      created: true,
      uploaded: [1],
    });
    expect(
      readFileSync(join(cwd, 'reg/trust/root/1.json')).equals(readFileSync(join(cwd, 'trust/root.json'))),
    ).toBe(true);
    const again = await runCli(['registry', 'init'], { cwd });
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('already initialised');
  });

  it('initialises an S3 registry on s3rver and reports that it does not enforce conditional writes', async () => {
    const cwd = await trustedProject();
    const url = `s3://${s3.bucket}/cli-${Date.now()}`;
    const r = await runCli(['registry', 'init', '--registry', url, '--json'], { cwd, env: s3.env });
    expect(r.code, r.stderr).toBe(0);
    expect(r.json<InitRegistryResult>()).toMatchObject({
      url,
      trustVersion: 1,
      conditionalWrites: false,
      created: true,
    });
    const human = await runCli(['registry', 'init', '--registry', url], { cwd, env: s3.env });
    expect(human.code).toBe(0);
    expect(human.stdout).toContain('create-only: not-enforced');
    expect(human.stdout).toContain('Concurrent writers are NOT safe');
  });

  it('refuses an expired trust root with exit 4 and writes nothing', async () => {
    const cwd = project('registry: file:reg\n');
    await generate(cwd, 'keys/root.key');
    expect((await runCli(['trust', 'init', '--key', 'keys/root.key', '--expires', '1s'], { cwd })).code).toBe(
      0,
    );
    await new Promise((r) => setTimeout(r, 1100));
    const r = await runCli(['registry', 'init'], { cwd });
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/local trust root version 1 expired at/);
    expect(r.stderr).toContain('edgectl trust rotate');
    expect(existsSync(join(cwd, 'reg/trust'))).toBe(false);
  });

  it('fails within a bounded time with exit 1 when the S3 server is unreachable', async () => {
    const cwd = await trustedProject();
    const dead = await startS3();
    await dead.stop();
    const r = await runCli(['registry', 'init', '--registry', dead.url, '--json'], { cwd, env: dead.env });
    expect(r.ms).toBeLessThan(15_000);
    expect(r.code).toBe(1);
    const err = r.json<ErrorJson>().error;
    expect(err.code).toBe('E_REGISTRY_UNREACHABLE');
    expect(err.message).toContain(`the registry at ${dead.url} (endpoint ${dead.endpoint}) is unreachable`);
    expect(err.suggestion).toMatch(/AWS_ENDPOINT_URL_S3/);
  });

  it('refuses an unsupported registry URL with exit 2', async () => {
    const cwd = await trustedProject();
    const r = await runCli(['registry', 'init', '--registry', 'ftp://host/x'], { cwd });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unsupported registry URL ftp://host/x');
  });
});
