/**
 * Key rotation for every trust role, run as docs/operations.md "Key rotation" tells it, through the
 * real CLI (child processes) on a directory registry and (the fleet-key procedure) on s3rver: a
 * fleet key, an artifacts key, root keys with a 2-of-3 threshold, and revoking compromised fleet
 * and artifacts keys. After each procedure the fleet must keep working: an existing site syncs
 * (`site sync --once`), a new site syncs from scratch, `site apply` of a new change works and
 * `fleet log` works; `doctor` fails, naming the fix, on the states in between that would block
 * apply or sync; a fresh object signed by a rotated-out key and anything signed by a revoked key
 * are refused (exit 4).
 */
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { DoctorReport } from '../../src/doctor/doctor.js';
import { buildHead } from '../../src/fleet/head.js';
import { signFleetObject } from '../../src/fleet/signed.js';
import { PayloadType, decodeEnvelope, peekPayload } from '../../src/registry/envelope.js';
import { FsStore } from '../../src/registry/fs-store.js';
import { generateKeyPair, readSecretKeyFile, writeKeyPair } from '../../src/registry/keys.js';
import { HEAD_KEY } from '../../src/registry/layout.js';
import { publishArtifact } from '../../src/artifact/publish.js';
import { memoryIo } from '../../src/foundation/output.js';
import { addSite, defaultSiteDataDir } from '../../src/fleet/site-add.js';
import { initRegistryFromFiles } from '../../src/registry/init.js';
import { openStore } from '../../src/registry/open-store.js';
import type { Store } from '../../src/registry/store.js';
import { initTrustFile } from '../../src/registry/trust-files.js';
import { loadTrustInForce } from '../../src/registry/trust-history.js';
import { REPO_ROOT, runCli, type CliResult } from '../helpers/cli.js';
import { startS3, type S3Fixture } from '../helpers/s3.js';
import { tempDir } from '../site/fixtures.js';

const POLICY = join(REPO_ROOT, 'artifacts/policies/default');

interface ErrorOut {
  error: { code: string; exitCode: number; message: string; suggestion?: string };
}

/** A fleet project around a registry, driven through the CLI. */
class Project {
  readonly dir = tempDir('edgectl-keyrot-');
  private keys: Record<'root' | 'artifacts' | 'fleet', string> = {
    root: 'keys/root.key',
    artifacts: 'keys/artifacts.key',
    fleet: 'keys/fleet.key',
  };

  readonly registry: string;

  constructor(
    registry?: string,
    readonly env: Record<string, string> = {},
  ) {
    this.registry = registry ?? `file:${join(this.dir, 'registry')}`;
    for (const name of ['root', 'artifacts', 'fleet'])
      writeKeyPair(join(this.dir, `keys/${name}.key`), generateKeyPair());
    mkdirSync(join(this.dir, 'sites'), { recursive: true });
    this.writeConfig();
  }

  private writeConfig(): void {
    const k = this.keys;
    writeFileSync(
      join(this.dir, 'edgectl.yaml'),
      `registry: ${this.registry}\ntrust: trust/root.json\nsites: sites\n` +
        // s3rver enforces no conditional writes: fleet writes need the single-writer opt-in there.
        (this.registry.startsWith('s3://') ? 'singleWriter: true\n' : '') +
        `keys:\n  root: ${k.root}\n  artifacts: ${k.artifacts}\n  fleet: ${k.fleet}\n`,
    );
  }

  /** Points keys.<slot> in edgectl.yaml at another key file (the documented last step). */
  useKey(slot: 'root' | 'artifacts' | 'fleet', path: string): void {
    this.keys[slot] = path;
    this.writeConfig();
  }

  cli(...args: string[]): Promise<CliResult> {
    return runCli(args, { cwd: this.dir, env: this.env, timeoutMs: 90_000 });
  }

  async ok(...args: string[]): Promise<CliResult> {
    const r = await this.cli(...args);
    if (process.env.KEYROT_TRACE) console.log(`${Math.round(r.ms)} ms  edgectl ${args.join(' ')}`);
    expect(r.code, `edgectl ${args.join(' ')}\n${r.stdout}\n${r.stderr}`).toBe(0);
    return r;
  }

  /** Runs with --json and expects a failure with `exitCode` and an error code. */
  async fails(exitCode: number, code: string, ...args: string[]): Promise<ErrorOut['error']> {
    const r = await this.cli(...args, '--json');
    expect(r.code, `edgectl ${args.join(' ')}\n${r.stdout}\n${r.stderr}`).toBe(exitCode);
    const err = r.json<ErrorOut>().error;
    expect(err.code, err.message).toBe(code);
    return err;
  }

  async doctor(): Promise<{ code: number; report: DoctorReport }> {
    const r = await this.cli('doctor', '--json');
    return { code: r.code, report: r.json<DoctorReport>() };
  }

  /** A copy of the committed default policy under another version. */
  policy(version: string): string {
    const dir = join(this.dir, `policy-${version}`);
    cpSync(POLICY, dir, { recursive: true });
    writeFileSync(join(dir, 'artifact.yaml'), `kind: policy\nname: default\nversion: ${version}\n`);
    const yaml = readFileSync(join(dir, 'policy.yaml'), 'utf8');
    writeFileSync(join(dir, 'policy.yaml'), yaml.replace(/^description: .*$/m, `description: v${version}`));
    return dir;
  }

  assign(site: string, ref: string): void {
    const file = join(this.dir, `sites/${site}.yaml`);
    writeFileSync(file, readFileSync(file, 'utf8').replace(/policy\/default@[0-9.]+/, ref));
  }

  private async withStore<T>(body: (store: Store) => Promise<T>): Promise<T> {
    const store = await openStore(this.registry, { s3: { env: this.env } });
    try {
      return await body(store);
    } finally {
      await store.close();
    }
  }

  /**
   * Publishes policy `version` in-process (publishing is not what these tests are about; each CLI
   * run costs seconds), signed by `keyPath`.
   */
  async publish(version: string, keyPath = this.keys.artifacts): Promise<void> {
    await this.withStore(async (store) => {
      const trust = await loadTrustInForce(store, join(this.dir, 'trust/root.json'), new Date());
      const signer = readSecretKeyFile(join(this.dir, keyPath));
      await publishArtifact({ dir: this.policy(version), store, signer, trust, io: memoryIo() });
    });
  }

  /** `edgectl site add <name> --policy <ref>`, in-process (see publish). */
  addSite(name: string, ref: string): void {
    addSite({
      sitesDir: join(this.dir, 'sites'),
      name,
      dataDir: defaultSiteDataDir(this.dir, name),
      assignments: { policy: ref },
    });
  }

  /** Keys, trust root, registry, policy 1.0.0 (and 1.0.1, never assigned), site s1 applied and synced. */
  async setUp(): Promise<void> {
    initTrustFile({
      out: join(this.dir, 'trust/root.json'),
      rootKeyPaths: [join(this.dir, 'keys/root.key')],
      artifactsKeyPaths: [join(this.dir, 'keys/artifacts.key.pub')],
      fleetKeyPaths: [join(this.dir, 'keys/fleet.key.pub')],
      expires: new Date(Date.now() + 365 * 86_400_000),
      now: new Date(),
    });
    await initRegistryFromFiles({
      registryUrl: this.registry,
      trustPath: join(this.dir, 'trust/root.json'),
      store: { s3: { env: this.env } },
    });
    await this.publish('1.0.0');
    await this.publish('1.0.1');
    this.addSite('s1', 'policy/default@1.0.0');
    // A snapshot at every entry, so readers also meet snapshots signed by a rotated-out key.
    await this.ok('site', 'apply', '--snapshot-every', '1');
    await this.ok('site', 'sync', 's1', '--once');
  }

  /** The checks that show the fleet works: sync, a new site from scratch, apply, fleet log. */
  async fleetWorks(newSite: string, version: string): Promise<void> {
    await this.ok('site', 'sync', 's1', '--once');
    await this.publish(version);
    this.addSite(newSite, `policy/default@${version}`);
    this.assign('s1', `policy/default@${version}`);
    const apply = await this.ok('site', 'apply', '--json');
    expect(apply.json<{ ops: unknown[] }>().ops.length).toBeGreaterThan(0);
    const synced = await this.ok('site', 'sync', newSite, '--once', '--json');
    expect(synced.json<{ changed: boolean }>().changed).toBe(true);
    expect(
      (await this.ok('site', 'sync', 's1', '--once', '--json')).json<{ changed: boolean }>().changed,
    ).toBe(true);
    const log = (await this.ok('fleet', 'log', '--json')).json<{ entries: { seq: number }[] }>();
    expect(log.entries.length).toBeGreaterThan(1);
    const doctor = await this.doctor();
    expect(
      doctor.report.checks.filter((c) => c.status === 'fail'),
      JSON.stringify(doctor.report.checks, null, 1),
    ).toEqual([]);
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function failed(report: DoctorReport, id: string) {
  return report.checks.find((c) => c.id === id && c.status === 'fail');
}

async function rotateFleetKey(p: Project): Promise<void> {
  // The procedure of docs/operations.md, step by step.
  await p.ok('keys', 'generate', '--out', 'keys/fleet-2.key');
  await p.ok('trust', 'rotate', '--key', 'keys/root.key', '--fleet-key', 'keys/fleet-2.key.pub');
  await p.ok('registry', 'init');
  p.useKey('fleet', 'keys/fleet-2.key');

  // In between: a site reading the head (here one starting from scratch; running sites see no new
  // head and keep serving) refuses the head signed by the rotated-out key; doctor says what to run.
  const fresh = ['--data-dir', join(p.dir, 'fresh-s1')];
  const refused = await p.fails(4, 'E_SIGNER_ROTATED', 'site', 'sync', 's1', '--once', ...fresh);
  expect(refused.suggestion).toContain('edgectl fleet resign');
  const doc = await p.doctor();
  expect(doc.code).toBe(1);
  expect(failed(doc.report, 'fleet.signatures')?.fix).toContain('edgectl fleet resign');

  await p.ok('fleet', 'resign');
}

// Each procedure is a few dozen CLI runs (about 1-3 s each on a busy 2-core machine).
describe('key rotation (fs registry)', { timeout: 400_000 }, () => {
  let p: Project;
  afterEach(() => p?.remove());

  it('fleet key: rotate, registry init, keys.fleet, fleet resign; the old key is refused for new objects', async () => {
    p = new Project();
    await p.setUp();
    await rotateFleetKey(p);
    // The old key left the role: what it signs now is refused (doctor names the config fix too).
    const old = await p.fails(2, 'E_NOT_FLEET_KEY', 'site', 'apply', '--key', 'keys/fleet.key');
    expect(old.message).toMatch(/fleet role/);
    await p.fleetWorks('s2', '1.1.0');
    // Entry 1 keeps its old signature, valid through the chain; fleet log shows who signed it.
    const log = (await p.ok('fleet', 'log', '--json')).json<{
      entries: { seq: number; keyids: string[] }[];
    }>();
    const oldId = readSecretKeyFile(join(p.dir, 'keys/fleet.key')).keyid;
    const newId = readSecretKeyFile(join(p.dir, 'keys/fleet-2.key')).keyid;
    expect(log.entries[0]?.keyids).toEqual([oldId]);
    expect(log.entries.at(-1)?.keyids).toEqual([newId]);

    // A fresh head signed by the rotated-out key (someone still holding it) is refused by sites.
    const store = new FsStore(join(p.dir, 'registry'));
    try {
      const cur = await store.get(HEAD_KEY);
      const head = peekPayload(decodeEnvelope(cur?.body ?? Buffer.alloc(0), HEAD_KEY)) as {
        seq: number;
        entryDigest: string;
        snapshotSeq: number | null;
      };
      const forged = buildHead({ ...head, now: new Date(), ttlMs: 86_400_000 });
      await store.compareAndSwap(
        HEAD_KEY,
        signFleetObject(PayloadType.head, forged, [readSecretKeyFile(join(p.dir, 'keys/fleet.key'))]),
        cur?.etag,
      );
    } finally {
      await store.close();
    }
    await p.fails(4, 'E_SIGNER_ROTATED', 'site', 'sync', 's2', '--once');
    await p.fails(4, 'E_SIGNER_ROTATED', 'fleet', 'log');
  });

  it('fleet key: site apply alone also re-signs the head after the rotation', async () => {
    p = new Project();
    await p.setUp();
    await p.ok('keys', 'generate', '--out', 'keys/fleet-2.key');
    await p.ok('trust', 'rotate', '--key', 'keys/root.key', '--fleet-key', 'keys/fleet-2.key.pub');
    await p.ok('registry', 'init');
    p.useKey('fleet', 'keys/fleet-2.key');
    const apply = (await p.ok('site', 'apply', '--json')).json<{ headMoved: boolean; ops: unknown[] }>();
    expect(apply).toMatchObject({ headMoved: true, ops: [] });
    await p.ok('site', 'sync', 's1', '--once', '--data-dir', join(p.dir, 'fresh-s1'));
    await p.ok('fleet', 'log');
  });

  it('artifacts key: pinned versions stay valid, a never-assigned old version needs artifact resign', async () => {
    p = new Project();
    await p.setUp();
    await p.ok('keys', 'generate', '--out', 'keys/artifacts-2.key');
    await p.ok('trust', 'rotate', '--key', 'keys/root.key', '--artifacts-key', 'keys/artifacts-2.key.pub');
    await p.ok('registry', 'init');
    p.useKey('artifacts', 'keys/artifacts-2.key');

    // 1.0.0 is pinned by the signed fleet state: a new site with it applies and syncs.
    p.addSite('s2', 'policy/default@1.0.0');
    await p.ok('site', 'apply');
    await p.ok('site', 'sync', 's2', '--once');
    await p.ok('site', 'sync', 's1', '--once');

    // 1.0.1 was signed by the old key and never assigned: apply refuses it, doctor names the fix.
    p.assign('s2', 'policy/default@1.0.1');
    const refused = await p.fails(4, 'E_SIGNER_ROTATED', 'site', 'apply');
    expect(refused.suggestion).toContain('edgectl artifact resign policy/default@1.0.1');
    const doc = await p.doctor();
    expect(doc.code).toBe(1);
    expect(failed(doc.report, 'artifacts.signatures')?.fix).toContain(
      'edgectl artifact resign policy/default@1.0.1',
    );

    const resigned = (await p.ok('artifact', 'resign', 'policy/default@1.0.1', '--json')).json<{
      artifacts: { resigned: boolean; manifestDigest: string }[];
    }>();
    expect(resigned.artifacts[0]?.resigned).toBe(true);
    await p.ok('artifact', 'verify', 'policy/default@1.0.1');
    await p.ok('site', 'apply');
    await p.ok('site', 'sync', 's2', '--once');
    await p.fleetWorks('s3', '1.2.0');
  });

  it('root keys: a 2-of-3 root, then a rotation signed by two of them; sites walk the chain', async () => {
    p = new Project();
    await p.setUp();
    for (const n of [1, 2, 3]) await p.ok('keys', 'generate', '--out', `keys/root-${n}.key`);
    const three = [
      '--new-key',
      'keys/root-1.key',
      '--new-key',
      'keys/root-2.key',
      '--new-key',
      'keys/root-3.key',
    ];
    await p.ok('trust', 'rotate', '--key', 'keys/root.key', ...three, '--threshold', '2');
    await p.ok('registry', 'init');
    p.useKey('root', 'keys/root-1.key');
    // One of three is below the threshold: refused before anything is written.
    await p.fails(
      2,
      'E_ROTATION_SIGNERS',
      'trust',
      'rotate',
      '--key',
      'keys/root-1.key',
      '--expires',
      '400d',
    );
    await p.ok(
      'trust',
      'rotate',
      '--key',
      'keys/root-1.key',
      '--key',
      'keys/root-3.key',
      '--expires',
      '400d',
    );
    await p.ok('registry', 'init');
    const shown = (await p.ok('trust', 'show', '--json')).json<{
      version: number;
      roles: { root: { threshold: number } };
    }>();
    expect(shown).toMatchObject({ version: 3, roles: { root: { threshold: 2 } } });
    await p.fleetWorks('s2', '1.1.0');
  });

  it('revoking compromised fleet and artifacts keys: their signatures stop counting until re-signed', async () => {
    p = new Project();
    await p.setUp();
    await p.ok('keys', 'generate', '--out', 'keys/fleet-2.key');
    await p.ok('keys', 'generate', '--out', 'keys/artifacts-2.key');
    await p.ok(
      'trust',
      'rotate',
      '--key',
      'keys/root.key',
      '--fleet-key',
      'keys/fleet-2.key.pub',
      '--artifacts-key',
      'keys/artifacts-2.key.pub',
      '--revoke',
      'keys/fleet.key.pub',
      '--revoke',
      'keys/artifacts.key.pub',
    );
    await p.ok('registry', 'init');
    p.useKey('fleet', 'keys/fleet-2.key');
    p.useKey('artifacts', 'keys/artifacts-2.key');

    // Everything the revoked fleet key signed is refused, even where the chain would cover it.
    await p.fails(4, 'E_KEY_REVOKED', 'site', 'sync', 's1', '--once', '--data-dir', join(p.dir, 'fresh-s1'));
    await p.fails(4, 'E_KEY_REVOKED', 'site', 'apply');
    const needsConsent = await p.fails(4, 'E_KEY_REVOKED', 'fleet', 'resign');
    expect(needsConsent.suggestion).toContain('edgectl fleet resign --accept-revoked');
    const doc = await p.doctor();
    expect(failed(doc.report, 'fleet.signatures')?.fix).toContain('--accept-revoked');
    // A revoked key cannot come back into a role.
    await p.fails(
      2,
      'E_KEY_REVOKED',
      'trust',
      'rotate',
      '--key',
      'keys/root.key',
      '--fleet-key',
      'keys/fleet.key.pub',
    );

    const resign = (await p.ok('fleet', 'resign', '--accept-revoked', '--json')).json<{
      entries: number[];
      snapshots: number[];
    }>();
    expect(resign.entries).toEqual([1]);
    expect(resign.snapshots).toEqual([1]);
    await p.ok('fleet', 'log');

    // The pinned policy was signed by the revoked artifacts key: a new site cannot fetch it.
    p.addSite('s2', 'policy/default@1.0.0');
    await p.fails(4, 'E_KEY_REVOKED', 'site', 'apply');
    const doc2 = await p.doctor();
    expect(failed(doc2.report, 'artifacts.signatures')?.fix).toContain(
      'edgectl artifact resign policy/default@1.0.0 --accept-revoked',
    );
    await p.fails(4, 'E_KEY_REVOKED', 'artifact', 'resign', 'policy/default@1.0.0');
    await p.ok('artifact', 'resign', 'policy/default@1.0.0', '--accept-revoked');
    await p.ok('site', 'apply');
    await p.ok('site', 'sync', 's2', '--once');
    await p.fleetWorks('s3', '1.1.0');
  });
});

describe('key rotation (s3rver registry)', { timeout: 400_000 }, () => {
  let s3: S3Fixture;
  let p: Project | undefined;
  beforeAll(async () => {
    s3 = await startS3();
  });
  afterAll(async () => {
    p?.remove();
    await s3.stop();
  });

  it('fleet key: the documented procedure keeps the fleet working', async () => {
    p = new Project(s3.url, { ...s3.env });
    await p.setUp();
    await rotateFleetKey(p);
    await p.fleetWorks('s2', '1.1.0');
  });
});
