/**
 * The artifact commands end to end, as a user runs them: the built CLI in a child process, a
 * project directory with edgectl.yaml, keys and a trust root made by the CLI itself, and a registry
 * on disk or on s3rver. Also: a publish killed with SIGKILL midway, an unreachable registry, and an
 * expired trust root.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, watch, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeEnvelope } from '../../src/registry/envelope.js';
import { generateKeyPair, writeKeyPair } from '../../src/registry/keys.js';
import { FsStore } from '../../src/registry/fs-store.js';
import { trustRootKey } from '../../src/registry/layout.js';
import { openStore } from '../../src/registry/open-store.js';
import { createTrustRoot } from '../../src/registry/trust.js';
import { writeTrustRootFile } from '../../src/registry/trust-files.js';
import { NODE, RUN_JS, runCli, type CliResult } from '../helpers/cli.js';
import { startS3, type S3Fixture } from '../helpers/s3.js';
import { makeModelDir, makePolicyDir, seededBytes, tempDir } from './fixtures.js';

interface Project {
  dir: string;
  env: Record<string, string>;
  run(args: string[]): Promise<CliResult>;
}

/**
 * A project as `keys generate`, `trust init` and `registry init` leave it, set up in-process (the
 * registry tests cover those commands; a CLI start costs ~1.5 s on two cores).
 */
async function project(registry: string, env: Record<string, string> = {}): Promise<Project> {
  const dir = tempDir('edgectl-proj-');
  writeFileSync(join(dir, 'edgectl.yaml'), `registry: ${registry}\nkeys:\n  artifacts: keys/artifacts.key\n`);
  const root = generateKeyPair();
  const artifacts = generateKeyPair();
  writeKeyPair(join(dir, 'keys', 'root.key'), root);
  writeKeyPair(join(dir, 'keys', 'artifacts.key'), artifacts);
  const envelope = createTrustRoot({
    rootKeys: [root],
    artifactsKeys: [artifacts],
    expires: new Date(Date.now() + 30 * 86_400_000),
  });
  writeTrustRootFile(join(dir, 'trust', 'root.json'), envelope);
  const store = registry.startsWith('file:')
    ? new FsStore(join(dir, registry.slice('file:'.length)))
    : await openStore(registry, { s3: { env } });
  try {
    await store.putIfAbsent(trustRootKey(1), encodeEnvelope(envelope));
  } finally {
    await store.close();
  }
  return { dir, env, run: (args: string[]) => runCli(args, { cwd: dir, env }) };
}

const backends: { name: string; registry: () => string; env: () => Record<string, string> }[] = [];
let s3: S3Fixture | undefined;
backends.push({ name: 'fs', registry: () => 'file:registry', env: () => ({}) });
let prefixes = 0;
// Each project gets its own prefix in the bucket (its own trust root).
backends.push({
  name: 's3',
  registry: () => `s3://${s3?.bucket ?? ''}/cli-${++prefixes}`,
  env: () => ({ ...(s3?.env ?? {}) }),
});

beforeAll(async () => {
  s3 = await startS3();
});
afterAll(async () => {
  await s3?.stop();
});

describe.each(backends)('CLI on $name', (backend) => {
  it('publish -> list -> show -> verify -> pull with --json', async () => {
    const p = await project(backend.registry(), backend.env());
    const weights = seededBytes(2 * 1024 * 1024, 21);
    const src = makeModelDir(p.dir, { weights });

    const pub = await p.run(['publish', 'artifact', src, '--json']);
    expect(pub.code, pub.stderr).toBe(0);
    const published = pub.json<{
      ref: string;
      manifestDigest: string;
      created: boolean;
      bytesUploaded: number;
      bytesTotal: number;
    }>();
    expect(published).toMatchObject({ ref: 'model/draft@1.0.0', created: true });
    expect(published.bytesUploaded).toBe(published.bytesTotal);
    expect(pub.stderr).toMatch(/Chunking and uploading/);

    const again = await p.run(['publish', 'artifact', src, '--json']);
    expect(again.code).toBe(0);
    expect(again.json()).toMatchObject({
      created: false,
      bytesUploaded: 0,
      manifestDigest: published.manifestDigest,
    });

    const list = await p.run(['artifact', 'list', 'model', '--json']);
    expect(list.code).toBe(0);
    expect(list.json()).toEqual({
      artifacts: [{ ref: 'model/draft@1.0.0', kind: 'model', name: 'draft', version: '1.0.0' }],
    });

    const show = await p.run(['artifact', 'show', 'model/draft@1.0.0', '--json']);
    expect(show.code).toBe(0);
    expect(show.json()).toMatchObject({
      manifestDigest: published.manifestDigest,
      verified: true,
      meta: { role: 'draft', numHiddenLayers: 2 },
    });

    const human = await p.run(['artifact', 'show', `model/draft@${published.manifestDigest}`]);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/weights\.bin/);

    const verify = await p.run(['artifact', 'verify', 'model/draft@1.0.0', '--json']);
    expect(verify.code, verify.stderr).toBe(0);
    expect(verify.json()).toMatchObject({
      ref: 'model/draft@1.0.0',
      files: 4,
      bytesVerified: published.bytesTotal,
    });

    const out = join(p.dir, 'pulled');
    const pull = await p.run([
      'artifact',
      'pull',
      'model/draft@1.0.0',
      out,
      '--cache',
      join(p.dir, 'cache'),
      '--json',
    ]);
    expect(pull.code, pull.stderr).toBe(0);
    expect(pull.json()).toMatchObject({ filesWritten: 4, bytesTotal: published.bytesTotal });
    expect(readFileSync(join(out, 'weights.bin')).equals(weights)).toBe(true);

    const gc = await p.run(['registry', 'gc', '--dry-run', '--json']);
    expect(gc.code).toBe(0);
    expect(gc.json()).toMatchObject({ dryRun: true, deleted: 0, manifests: 1 });
  });

  it('invalid input exits 2 with file, line and field; not found exits 3', async () => {
    const p = await project(backend.registry(), backend.env());
    const src = makePolicyDir(p.dir, { yaml: 'version: 1\nrouting:\n  default: everywhere\n' });
    const bad = await p.run(['publish', 'artifact', src]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/policy\.yaml:3: routing\.default: /);
    const badJson = await p.run(['publish', 'artifact', src, '--json']);
    expect(badJson.code).toBe(2);
    expect(badJson.json()).toMatchObject({ error: { code: 'E_INVALID_YAML', exitCode: 2 } });
    const semver = await p.run(['artifact', 'show', 'model/draft@1.0']);
    expect(semver.code).toBe(2);
    expect(semver.stderr).toMatch(/"1\.0" is not a semantic version/);
    const missing = await p.run(['artifact', 'verify', 'model/draft@9.0.0']);
    expect(missing.code).toBe(3);
    expect(missing.stderr).toMatch(/model\/draft@9\.0\.0 is not in the registry/);
  });
});

describe('CLI failure modes', () => {
  it('a publish killed midway leaves no manifest, and a rerun completes reusing its packs', async () => {
    const p = await project('file:registry');
    const src = makeModelDir(p.dir, { weights: seededBytes(150 * 1024 * 1024, 31) });
    const blobs = join(p.dir, 'registry', 'blobs', 'sha256');
    const child = spawn(NODE, [RUN_JS, 'publish', 'artifact', src, '--concurrency', '1'], {
      cwd: p.dir,
      env: { ...process.env, CI: '1' },
      stdio: 'ignore',
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    // Kill it as soon as its first pack is in the registry.
    await new Promise<void>((resolve, reject) => {
      const watcher = watch(join(p.dir, 'registry'), { recursive: true }, () => {
        if (existsSync(blobs) && readdirSync(blobs).length > 0) {
          watcher.close();
          child.kill('SIGKILL');
          resolve();
        }
      });
      void exited.then(() => reject(new Error('publish finished before it could be killed')));
    });
    await exited;
    expect(existsSync(join(p.dir, 'registry', 'artifacts', 'model', 'draft', '1.0.0.json'))).toBe(false);
    const list = await p.run(['artifact', 'list', '--json']);
    expect(list.json()).toEqual({ artifacts: [] });

    const rerun = await p.run(['publish', 'artifact', src, '--json']);
    expect(rerun.code, rerun.stderr).toBe(0);
    const r = rerun.json<{
      created: boolean;
      packsFound: number;
      bytesUploaded: number;
      bytesTotal: number;
    }>();
    expect(r.created).toBe(true);
    expect(r.packsFound).toBeGreaterThanOrEqual(1);
    expect(r.bytesUploaded).toBeLessThan(r.bytesTotal);
    const verify = await p.run(['artifact', 'verify', 'model/draft@1.0.0']);
    expect(verify.code, verify.stderr).toBe(0);
  });

  it('an unreachable registry fails within bounded time with exit 1', async () => {
    const dead = await startS3();
    const env = { ...dead.env };
    const url = dead.url;
    await dead.stop();
    const r = await runCli(['artifact', 'list', '--registry', url], {
      cwd: tempDir(),
      env,
      timeoutMs: 30_000,
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/unreachable/);
    expect(r.ms).toBeLessThan(20_000);
  });

  it('an expired trust root: exit 4, nothing written', async () => {
    const p = await project('file:registry');
    const src = makePolicyDir(p.dir);
    expect((await p.run(['publish', 'artifact', src])).code).toBe(0);
    // A pinned root that expired yesterday (same project, so only the expiry is wrong).
    const root = generateKeyPair();
    const expired = createTrustRoot({ rootKeys: [root], expires: new Date(Date.now() - 86_400_000) });
    const pinned = join(p.dir, 'expired-root.json');
    writeFileSync(pinned, encodeEnvelope(expired));
    writeKeyPair(join(p.dir, 'keys', 'other.key'), root);
    const out = join(p.dir, 'out');
    const r = await p.run(['artifact', 'pull', 'policy/default@1.0.0', out, '--trust', pinned, '--json']);
    expect(r.code).toBe(4);
    expect(r.json()).toMatchObject({ error: { code: 'E_EXPIRED', exitCode: 4 } });
    expect(existsSync(out)).toBe(false);
    const v = await p.run(['artifact', 'verify', 'policy/default@1.0.0', '--trust', pinned]);
    expect(v.code).toBe(4);
    expect(v.stderr).toMatch(/expired/);
  });
});
