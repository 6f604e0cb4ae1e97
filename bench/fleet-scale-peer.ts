/**
 * The peer of `bench:fleet-scale`: restic (the Debian package) against `edgectl publish artifact`
 * on the same edit, both through the same counting proxy in front of the same RGW server.
 *
 * A model directory holding a 256 MiB file of seeded pseudo-random bytes is stored once by each
 * tool (not measured), then the file gets 16 scattered single-byte edits and each tool stores the
 * new version: bytes uploaded (request bodies), requests and wall time of that second run. restic
 * backs up the same directory into its own bucket (`s3:` backend, path-style, the RGW user's keys
 * in AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, its cache in a temp dir); edgectl publishes it as
 * `model/draft@1.1.0` with the publish path the command uses (publishArtifact), in-process.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { silentProgress } from '../src/artifact/progress.js';
import { publishArtifact } from '../src/artifact/publish.js';
import { memoryIo } from '../src/foundation/output.js';
import { countsSince, type CountingProxy, type ProxyCounts } from '../src/bench/counting-proxy.js';
import type { Store } from '../src/registry/store.js';
import { seededBytes } from '../test/artifact/fixtures.js';
import type { TestTrust } from '../test/fleet/registry-fixture.js';
import { modelDir } from '../test/site/fixtures.js';

const MIB = 1024 * 1024;

export interface PeerRun {
  bytesUp: number;
  bytesDown: number;
  requests: number;
  wallMs: number;
}

function summary(c: ProxyCounts, wallMs: number): PeerRun {
  return { bytesUp: c.bytesUp, bytesDown: c.bytesDown, requests: c.requests, wallMs: Math.round(wallMs) };
}

async function measured(proxy: CountingProxy, fn: () => Promise<void> | void): Promise<PeerRun> {
  const before = await proxy.counts();
  const t0 = performance.now();
  await fn();
  const wall = performance.now() - t0;
  return summary(countsSince(before, await proxy.counts()), wall);
}

/** Where restic is, or undefined. */
export function findRestic(): string | undefined {
  for (const p of ['/usr/bin/restic', '/usr/local/bin/restic']) if (existsSync(p)) return p;
  const which = spawnSync('sh', ['-c', 'command -v restic'], { encoding: 'utf8' });
  return which.status === 0 ? which.stdout.trim() || undefined : undefined;
}

function restic(bin: string, env: NodeJS.ProcessEnv, args: string[]): string {
  const r = spawnSync(bin, args, { env, encoding: 'utf8', maxBuffer: 64 * MIB });
  if (r.status !== 0)
    throw new Error(`restic ${args.join(' ')} exited ${r.status}: ${r.stderr.slice(-2000)}`);
  return r.stdout;
}

export interface PeerOptions {
  proxy: CountingProxy;
  /** The RGW user's keys and region (scripts/rgw.sh env). */
  s3env: Record<string, string>;
  /** A bucket for restic, created by the caller. */
  resticBucket: string;
  /** The store (through the proxy) edgectl publishes into, and the trust it signs with. */
  store: Store;
  trust: TestTrust;
  workDir: string;
  bytes?: number;
}

export async function runPeer(opts: PeerOptions): Promise<Record<string, unknown>> {
  const size = opts.bytes ?? 256 * MIB;
  const weights = seededBytes(size, 42);
  const src = modelDir(opts.workDir, '1.0.0', weights);
  const edited = Buffer.from(weights);
  for (let i = 0; i < 16; i++) {
    const at = Math.floor(((i + 0.37) * size) / 16);
    edited[at] = (edited[at] ?? 0) ^ 0x5a;
  }
  const publish = (dir: string) =>
    publishArtifact({
      dir,
      store: opts.store,
      signer: opts.trust.artifacts,
      trust: opts.trust.trust,
      io: memoryIo(),
      progress: silentProgress,
    }).then(() => undefined);
  const edgectlFirst = await measured(opts.proxy, () => publish(src));
  const srcEdited = modelDir(opts.workDir, '1.1.0', edited);
  const edgectlEdit = await measured(opts.proxy, () => publish(srcEdited));
  const edgectl = {
    command: 'edgectl publish artifact (publishArtifact, in-process)',
    first: edgectlFirst,
    edit: edgectlEdit,
  };

  const bin = findRestic();
  if (!bin) return { edgectl, restic: { skipped: 'restic is not installed (apt-get install restic)' } };
  const version = spawnSync(bin, ['version'], { encoding: 'utf8' }).stdout.trim();
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: opts.workDir,
    AWS_ACCESS_KEY_ID: opts.s3env.AWS_ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY: opts.s3env.AWS_SECRET_ACCESS_KEY,
    AWS_DEFAULT_REGION: opts.s3env.AWS_REGION ?? 'us-east-1',
    RESTIC_PASSWORD: 'edgectl-bench',
    RESTIC_REPOSITORY: `s3:${opts.proxy.endpoint}/${opts.resticBucket}`,
    RESTIC_CACHE_DIR: join(opts.workDir, 'restic-cache'),
  };
  // Backs up the same directory: first version, then the edited file in its place.
  const backupDir = join(opts.workDir, 'restic-src');
  restic(bin, env, ['init']);
  cpSync(src, backupDir, { recursive: true });
  const resticFirst = await measured(
    opts.proxy,
    () => void restic(bin, env, ['backup', '--quiet', backupDir]),
  );
  rmSync(backupDir, { recursive: true, force: true });
  cpSync(srcEdited, backupDir, { recursive: true });
  const resticEdit = await measured(
    opts.proxy,
    () => void restic(bin, env, ['backup', '--quiet', backupDir]),
  );
  return {
    fileBytes: size,
    edits: 16,
    edgectl,
    restic: {
      version,
      repository: 's3 backend (path-style, via the counting proxy)',
      first: resticFirst,
      edit: resticEdit,
    },
  };
}
