/**
 * `edgectl doctor`: a healthy project passes; each broken thing (old Node, a key readable by others,
 * a key outside its trust-root role, an expiring or expired trust root, an uninitialised registry,
 * a registry of another project, a drifted site, a stale pid file) gets its status and fix; exit 1
 * only on failures. Projects are real (keys, trust root, fs registry); the S3 case runs s3rver,
 * which does not enforce conditional writes, so doctor must warn about it; on Ceph RGW it reports them
 * enforced, and behind a proxy that refuses every If-Match it reports them broken.
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runDoctor, type DoctorCheck, type DoctorReport } from '../../src/doctor/doctor.js';
import { initProject } from '../../src/init/scaffold.js';
import { initRegistryFromFiles } from '../../src/registry/init.js';
import { generateKeyPair, writeKeyPair } from '../../src/registry/keys.js';
import { initTrustFile } from '../../src/registry/trust-files.js';
import { runCli } from '../helpers/cli.js';
import { startFaultProxy } from '../helpers/fault-proxy.js';
import { rgwSkipReason, startRgw } from '../helpers/rgw.js';
import { startS3 } from '../helpers/s3.js';

const DAY = 86_400_000;

/** Judged as Node 22 unless a test says otherwise: vitest may run under another Node than the CLI. */
const doctor = (opts: Parameters<typeof runDoctor>[0]) => runDoctor({ nodeVersion: 'v22.12.0', ...opts });

function byId(r: DoctorReport, id: string): DoctorCheck {
  const c = r.checks.find((x) => x.id === id);
  if (!c) throw new Error(`no check ${id} in ${r.checks.map((x) => x.id).join(', ')}`);
  return c;
}

/** An initialised project: scaffold, three keys, a trust root valid for `days`. */
function makeProject(dir: string, days = 365): void {
  initProject({ dir });
  for (const k of ['root', 'artifacts', 'fleet'])
    writeKeyPair(join(dir, 'keys', `${k}.key`), generateKeyPair());
  const now = new Date();
  initTrustFile({
    out: join(dir, 'trust', 'root.json'),
    rootKeyPaths: [join(dir, 'keys/root.key')],
    artifactsKeyPaths: [join(dir, 'keys/artifacts.key')],
    fleetKeyPaths: [join(dir, 'keys/fleet.key')],
    expires: new Date(now.getTime() + days * DAY),
    now,
  });
}

async function initRegistry(
  dir: string,
  url = `file:${join(dir, '.edgectl/registry')}`,
  env?: NodeJS.ProcessEnv,
) {
  await initRegistryFromFiles({
    registryUrl: url,
    trustPath: join(dir, 'trust/root.json'),
    ...(env ? { store: { s3: { env } } } : {}),
  });
}

describe('edgectl doctor', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'edgectl-doctor-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('passes a healthy project and warns only about what is not done yet', async () => {
    makeProject(dir);
    await initRegistry(dir);
    const r = await doctor({ cwd: dir, env: {} });
    expect(r.ok).toBe(true);
    for (const id of ['node', 'config', 'trust', 'keys.root', 'keys.artifacts', 'keys.fleet', 'registry']) {
      expect(byId(r, id).status, `${id}: ${byId(r, id).detail}`).toBe('ok');
    }
    expect(byId(r, 'registry.conditional-writes').status).toBe('ok');
    // The example site has a key but was never synced.
    expect(byId(r, 'site.example-001')).toMatchObject({
      status: 'warn',
      fix: 'edgectl site sync example-001 --once',
    });
  });

  it('fails on an old Node, a key readable by others and a key outside its role', async () => {
    makeProject(dir);
    await initRegistry(dir);
    chmodSync(join(dir, 'keys/fleet.key'), 0o644);
    writeKeyPair(join(dir, 'keys/artifacts.key'), generateKeyPair(), { force: true });
    const r = await doctor({ cwd: dir, env: {}, nodeVersion: 'v20.11.1' });
    expect(r.ok).toBe(false);
    expect(byId(r, 'node').status).toBe('fail');
    expect(byId(r, 'keys.fleet')).toMatchObject({
      status: 'fail',
      fix: `chmod 600 ${join(dir, 'keys/fleet.key')}`,
    });
    expect(byId(r, 'keys.artifacts').status).toBe('fail');
    expect(byId(r, 'keys.artifacts').detail).toContain('not a artifacts key of the trust root');
    expect(byId(r, 'keys.root').status).toBe('ok');
    expect(r.counts.fail).toBe(3);
  });

  it('warns 30 days before the trust root expires and fails after', async () => {
    makeProject(dir, 100);
    await initRegistry(dir);
    expect(byId(await doctor({ cwd: dir, env: {} }), 'trust').status).toBe('ok');
    const soon = await doctor({ cwd: dir, env: {}, now: new Date(Date.now() + 80 * DAY) });
    expect(byId(soon, 'trust')).toMatchObject({ status: 'warn' });
    expect(byId(soon, 'trust').detail).toMatch(/expires in (19|20) day/);
    expect(soon.ok).toBe(true);
    const late = await doctor({ cwd: dir, env: {}, now: new Date(Date.now() + 101 * DAY) });
    expect(byId(late, 'trust').status).toBe('fail');
    expect(byId(late, 'trust').fix).toContain('trust rotate');
    expect(late.ok).toBe(false);
  });

  it('fails on a missing, uninitialised or foreign registry with the fix', async () => {
    makeProject(dir);
    const missing = await doctor({ cwd: dir, env: {} });
    expect(byId(missing, 'registry')).toMatchObject({ status: 'fail', fix: 'edgectl registry init' });

    const other = mkdtempSync(join(tmpdir(), 'edgectl-doctor-other-'));
    try {
      // Another project's registry: same layout, different trust root.
      makeProject(join(other, 'p'));
      await initRegistry(join(other, 'p'), `file:${join(other, 'reg')}`);
      const foreign = await doctor({ cwd: dir, env: {}, registryFlag: `file:${join(other, 'reg')}` });
      expect(byId(foreign, 'registry').status).toBe('fail');
      expect(byId(foreign, 'registry').detail).toContain('different trust root');

      const empty = join(other, 'empty');
      mkdirSync(empty);
      const uninit = await doctor({ cwd: dir, env: {}, registryFlag: `file:${empty}` });
      expect(byId(uninit, 'registry')).toMatchObject({ status: 'fail', fix: 'edgectl registry init' });
      expect(byId(uninit, 'registry').detail).toContain('not initialised');
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });

  it('reports a stale pid file as a warning', async () => {
    makeProject(dir);
    await initRegistry(dir);
    const run = join(dir, '.edgectl/run');
    mkdirSync(run, { recursive: true });
    writeFileSync(join(run, 'verifier.pid'), '999999\n'); // beyond pid_max on Linux: never running
    const r = await doctor({ cwd: dir, env: {} });
    expect(byId(r, 'daemon.verifier')).toMatchObject({ status: 'warn' });
    expect(byId(r, 'daemon.verifier').detail).toContain('stale pid file');
    expect(r.ok).toBe(true);
  });

  it('checks an S3 registry and warns that s3rver does not enforce conditional writes', async () => {
    const s3 = await startS3();
    try {
      makeProject(dir);
      const env = { ...s3.env };
      await initRegistry(dir, s3.url, env);
      const r = await doctor({ cwd: dir, env, registryFlag: s3.url });
      expect(byId(r, 'registry').status, byId(r, 'registry').detail).toBe('ok');
      const cw = byId(r, 'registry.conditional-writes');
      expect(cw.status).toBe('warn');
      // Both sides of each condition, with s3rver's answers: it accepts the writes it should refuse.
      expect(cw.detail).toMatch(/create-only: not-enforced \[.*HTTP 200 \(accepted, expected refused\)/);
      expect(cw.detail).toContain('compare-and-swap: not-enforced');
      expect(r.ok).toBe(true);
    } finally {
      await s3.stop();
    }
  });

  const rgwSkip = rgwSkipReason();
  describe.skipIf(rgwSkip !== undefined)(`on Ceph RGW${rgwSkip ? ` (SKIPPED: ${rgwSkip})` : ''}`, () => {
    it('reports conditional writes as enforced (RGW takes If-Match ETags unquoted)', async () => {
      const rgw = await startRgw();
      makeProject(dir);
      await initRegistry(dir, rgw.url, rgw.env);
      const r = await doctor({ cwd: dir, env: rgw.env, registryFlag: rgw.url });
      const cw = byId(r, 'registry.conditional-writes');
      expect(cw, cw.detail).toMatchObject({ status: 'ok' });
      expect(cw.detail).toBe('create-only: enforced; compare-and-swap: enforced (unquoted If-Match ETag)');
    });

    it('fails a server that refuses a compare-and-swap whose precondition holds, with its answers', async () => {
      const rgw = await startRgw();
      makeProject(dir);
      await initRegistry(dir, rgw.url, rgw.env);
      const proxy = await startFaultProxy(rgw.endpoint);
      try {
        proxy.fail({
          status: 412,
          times: Infinity,
          match: (q) => q.method === 'PUT' && q.headers['if-match'] !== undefined,
        });
        const env = { ...rgw.env, AWS_ENDPOINT_URL_S3: proxy.endpoint };
        const r = await doctor({ cwd: dir, env, registryFlag: rgw.url });
        const cw = byId(r, 'registry.conditional-writes');
        expect(cw.status).toBe('fail');
        expect(cw.detail).toMatch(
          /create-only: enforced; compare-and-swap: broken \[replace with the current ETag \(as-returned\): HTTP 412 \(refused, expected accepted\)/,
        );
        expect(r.ok).toBe(false);
      } finally {
        await proxy.stop();
      }
    });
  });

  it('through the CLI: a drifted site fails (exit 1) until a sync repairs it', async () => {
    makeProject(dir);
    await initRegistry(dir);
    const cli = (...args: string[]) => runCli(args, { cwd: dir });
    rmSync(join(dir, 'sites/example-001.yaml'));
    rmSync(join(dir, '.edgectl/sites/example-001'), { recursive: true });
    for (const args of [
      ['publish', 'artifact', 'artifacts/policies/default'],
      ['site', 'add', 'store-1', '--policy', 'policy/default@1.0.0'],
      ['site', 'apply'],
      ['site', 'sync', 'store-1', '--once'],
    ]) {
      const r = await cli(...args, '--json');
      expect(r.code, `${args.join(' ')}: ${r.stdout}${r.stderr}`).toBe(0);
    }
    const healthy = await cli('doctor', '--json');
    expect(healthy.code, healthy.stdout).toBe(0);
    expect(byId(healthy.json<DoctorReport>(), 'site.store-1').status).toBe('ok');

    const file = join(dir, '.edgectl/sites/store-1/current/policy/policy.yaml');
    writeFileSync(file, 'routing: {default: cloud}\n# tampered\n');
    const broken = await cli('doctor');
    expect(broken.code).toBe(1);
    expect(broken.stdout).toMatch(/FAIL\s+Site store-1\s+generation \w+: 1 file\(s\) changed or missing/);
    expect(broken.stdout).toContain('fix: edgectl site sync store-1 --once');

    expect((await cli('site', 'sync', 'store-1', '--once')).code).toBe(0);
    const repaired = await cli('doctor', '--json');
    expect(repaired.code, repaired.stdout).toBe(0);
  });
});
