/**
 * Artifact benchmark (`npm run bench:artifact`, compiled with tsc and run on plain Node: vite-node
 * adds several times the CPU cost to I/O-heavy code): prints one JSON document with every figure and
 * the baseline it is compared with, measured in the same run on the same machine.
 *
 *   chunking     FastCDC + per-chunk SHA-256 on one core vs plain SHA-256 of the same bytes
 *   edits        256 MiB file, 16 scattered small edits (8 overwrites, 8 insertions), republished:
 *                bytes uploaded vs the file size, and what fixed-size 64 KiB blocks would upload
 *   unchanged    the same content republished (same version, and as a new version): bytes, requests
 *   s3           requests per GiB published and per GiB pulled against s3rver (real S3 protocol)
 *   verify       `artifact verify` of a 1 GiB artifact vs raw SHA-256 throughput of the same bytes
 *
 * Sizes can be scaled down for a quick run with BENCH_SCALE=0.25 (figures are then per GiB as well);
 * BENCH_ONLY=chunking,edits,s3,verify picks sections.
 */
import { createHash, randomBytes } from 'node:crypto';
import { cpus, loadavg, tmpdir } from 'node:os';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { memoryIo } from '../src/foundation/output.js';
import { chunkBuffer } from '../src/artifact/chunker.js';
import { PACK_STORE_OPTIONS } from '../src/artifact/pack.js';
import { silentProgress } from '../src/artifact/progress.js';
import { publishArtifact } from '../src/artifact/publish.js';
import { pullArtifact } from '../src/artifact/pull.js';
import { verifyArtifact } from '../src/artifact/verify.js';
import { encodeEnvelope } from '../src/registry/envelope.js';
import { FsStore } from '../src/registry/fs-store.js';
import { generateKeyPair, type KeyPair } from '../src/registry/keys.js';
import { trustRootKey } from '../src/registry/layout.js';
import { S3Store } from '../src/registry/s3-store.js';
import type { Store } from '../src/registry/store.js';
import { createTrustRoot, loadRegistryTrust, type TrustRoot } from '../src/registry/trust.js';
import { startS3 } from '../test/helpers/s3.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const SCALE = Number(process.env.BENCH_SCALE ?? '1');
const scaled = (n: number) => Math.max(MiB, Math.round((n * SCALE) / MiB) * MiB);
const work = mkdtempSync(join(tmpdir(), 'edgectl-bench-'));
const log = (m: string) => process.stderr.write(`${m}\n`);

function mbps(bytes: number, ms: number): number {
  return Math.round((bytes / 1e6 / (ms / 1000)) * 10) / 10;
}

function best<T>(runs: number, f: () => T): { ms: number; value: T } {
  let bestMs = Infinity;
  let value: T | undefined;
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    value = f();
    bestMs = Math.min(bestMs, performance.now() - t);
  }
  return { ms: bestMs, value: value as T };
}

interface Registry {
  store: Store;
  trust: TrustRoot;
  signer: KeyPair;
  trustPath: string;
}

async function registry(store: Store): Promise<Registry> {
  const root = generateKeyPair();
  const signer = generateKeyPair();
  const env = createTrustRoot({
    rootKeys: [root],
    artifactsKeys: [signer],
    expires: new Date(Date.now() + 86_400_000),
  });
  const trustPath = join(mkdtempSync(join(work, 'trust-')), 'root.json');
  writeFileSync(trustPath, encodeEnvelope(env));
  await store.putIfAbsent(trustRootKey(1), encodeEnvelope(env));
  return { store, trust: await loadRegistryTrust(store, trustPath, new Date()), signer, trustPath };
}

/** A model-shaped artifact directory whose weights are `weights`. */
function artifactDir(name: string, version: string, weights: Buffer): string {
  const dir = join(work, `${name}-${version}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'weights.bin'), weights);
  writeFileSync(join(dir, 'policy.yaml'), 'version: 1\nrouting:\n  default: speculative\n');
  writeFileSync(join(dir, 'artifact.yaml'), `kind: policy\nname: ${name}\nversion: ${version}\n`);
  return dir;
}

function publish(r: Registry, dir: string) {
  return publishArtifact({
    dir,
    store: r.store,
    signer: r.signer,
    trust: r.trust,
    io: memoryIo(),
    progress: silentProgress,
  });
}

function chunking() {
  const size = scaled(256 * MiB);
  const data = randomBytes(size);
  const sha = best(3, () => createHash('sha256').update(data).digest());
  const cdc = best(3, () => chunkBuffer(data));
  const chunkHashMBps = mbps(size, cdc.ms);
  return {
    bytes: size,
    chunks: cdc.value.length,
    avgChunkKiB: Math.round(size / cdc.value.length / 102.4) / 10,
    sha256MBps: mbps(size, sha.ms),
    chunkAndHashMBps: chunkHashMBps,
    ratioToSha256: Math.round((sha.ms / cdc.ms) * 100) / 100,
    targetMBps: 400,
    pass: chunkHashMBps >= 400,
  };
}

/** Bytes a fixed-block scheme would upload for `next` given `prev` already uploaded. */
function fixedBlockUpload(prev: Buffer, next: Buffer, block: number): number {
  const have = new Set<string>();
  for (let o = 0; o < prev.length; o += block)
    have.add(
      createHash('sha256')
        .update(prev.subarray(o, o + block))
        .digest('hex'),
    );
  let bytes = 0;
  for (let o = 0; o < next.length; o += block) {
    const b = next.subarray(o, o + block);
    if (!have.has(createHash('sha256').update(b).digest('hex'))) bytes += b.length;
  }
  return bytes;
}

async function edits() {
  const size = scaled(256 * MiB);
  const r = await registry(new FsStore(join(work, 'reg-edits')));
  const v1 = randomBytes(size);
  await publish(r, artifactDir('edits', '1.0.0', v1));
  // 16 scattered small edits: 8 overwrites of 8 bytes, 8 insertions of 1-16 bytes.
  const positions = Array.from(
    { length: 16 },
    (_, i) => Math.floor(((i + 0.5) / 16) * size) + ((i * 7919) % 4096),
  );
  const parts: Buffer[] = [];
  let last = 0;
  positions.forEach((pos, i) => {
    parts.push(v1.subarray(last, pos));
    if (i % 2 === 0) {
      parts.push(randomBytes(8));
      last = pos + 8;
    } else {
      parts.push(randomBytes(1 + (i % 16)));
      last = pos;
    }
  });
  parts.push(v1.subarray(last));
  const v2 = Buffer.concat(parts);
  const res = await publish(r, artifactDir('edits', '1.1.0', v2));
  const fixed = fixedBlockUpload(v1, v2, 64 * 1024);
  return {
    fileBytes: v2.length,
    edits: 16,
    bytesUploaded: res.bytesUploaded,
    uploadedPercent: Math.round((res.bytesUploaded / v2.length) * 10000) / 100,
    chunksUploaded: res.chunksUploaded,
    fixed64KiBBlocksBytes: fixed,
    fixed64KiBBlocksPercent: Math.round((fixed / v2.length) * 10000) / 100,
    targetPercent: 3,
    pass: res.bytesUploaded <= 0.03 * v2.length,
    registry: r,
    content: v2,
  };
}

async function unchanged(r: Registry, content: Buffer) {
  r.store.resetStats();
  const sameVersion = await publish(r, artifactDir('edits', '1.1.0', content));
  const newVersion = await publish(r, artifactDir('edits', '1.2.0', content));
  return {
    sameVersion: {
      bytesUploaded: sameVersion.bytesUploaded,
      requests: sameVersion.requests,
      files: sameVersion.files,
    },
    newVersion: {
      bytesUploaded: newVersion.bytesUploaded,
      chunksUploaded: newVersion.chunksUploaded,
      requests: newVersion.requests,
      files: newVersion.files,
      chunks: newVersion.chunksTotal,
    },
    pass:
      sameVersion.bytesUploaded === 0 &&
      newVersion.bytesUploaded === 0 &&
      newVersion.requests <= 4 + 2 * newVersion.files,
  };
}

async function s3Requests() {
  const size = scaled(GiB);
  const s3 = await startS3();
  const store = new S3Store(s3.bucket, 'bench', { ...PACK_STORE_OPTIONS.s3, env: s3.env });
  try {
    const r = await registry(store);
    const dir = artifactDir('s3', '1.0.0', randomBytes(size));
    store.resetStats();
    let t = performance.now();
    const pub = await publish(r, dir);
    const publishMs = performance.now() - t;
    const pubStats = { ...store.stats };
    store.resetStats();
    t = performance.now();
    const pulled = await pullArtifact({
      store,
      ref: pub.ref,
      trust: r.trust,
      dir: join(work, 's3-pull'),
      cacheDir: join(work, 's3-cache'),
      io: memoryIo(),
      progress: silentProgress,
    });
    const pullMs = performance.now() - t;
    const perGiB = (n: number) => Math.round((n / (pub.bytesTotal / GiB)) * 10) / 10;
    return {
      bytes: pub.bytesTotal,
      publish: {
        requests: pubStats.requests,
        puts: pubStats.puts,
        heads: pubStats.heads,
        perGiB: perGiB(pubStats.requests),
        MBps: mbps(pub.bytesTotal, publishMs),
      },
      pull: {
        requests: pulled.requests,
        perGiB: perGiB(pulled.requests),
        MBps: mbps(pub.bytesTotal, pullMs),
      },
      target: 64,
      pass: perGiB(pubStats.requests) <= 64 && perGiB(pulled.requests) <= 64,
    };
  } finally {
    await store.close();
    await s3.stop();
  }
}

async function verify() {
  const size = scaled(GiB);
  const regDir = join(work, 'reg-verify');
  const r = await registry(new FsStore(regDir));
  const data = randomBytes(size);
  const pub = await publish(r, artifactDir('verify', '1.0.0', data));
  // Raw hashing and verify runs are interleaved so both see the same machine conditions. CPU time
  // (process-wide, so it includes the verify worker thread) shows the work apart from contention.
  const cpuMs = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
  };
  const rawRuns: { ms: number; cpu: number }[] = [];
  const runs: { ms: number; cpu: number }[] = [];
  for (let i = 0; i < 3; i++) {
    let c = cpuMs();
    const rawMs = best(1, () => createHash('sha256').update(data).digest()).ms;
    rawRuns.push({ ms: rawMs, cpu: cpuMs() - c });
    // A fresh store each run: nothing cached from earlier runs inside the process.
    const store = new FsStore(regDir);
    c = cpuMs();
    const t = performance.now();
    await verifyArtifact({ store, ref: pub.ref, trust: r.trust, io: memoryIo(), progress: silentProgress });
    runs.push({ ms: performance.now() - t, cpu: cpuMs() - c });
    await store.close();
  }
  const raw = rawRuns.reduce((a, b) => (b.ms < a.ms ? b : a));
  const run = runs.reduce((a, b) => (b.ms < a.ms ? b : a));
  const ratio = Math.round((raw.ms / run.ms) * 100) / 100;
  return {
    bytes: pub.bytesTotal,
    rawSha256MBps: mbps(size, raw.ms),
    verifyMBps: mbps(pub.bytesTotal, run.ms),
    ratioToRawSha256: ratio,
    // Verify hashes every byte twice (chunk and file): its CPU cost in raw-SHA-256 passes, and how
    // many cores it kept busy (the worker thread only helps when a second core is free).
    verifyCpuInHashPasses: Math.round((run.cpu / raw.cpu) * 100) / 100,
    coresUsed: Math.round((run.cpu / run.ms) * 100) / 100,
    target: 0.7,
    pass: ratio >= 0.7,
  };
}

async function main() {
  const machine = {
    date: new Date().toISOString(),
    nproc: cpus().length,
    cpu: cpus()[0]?.model ?? 'unknown',
    node: process.version,
    scale: SCALE,
    // Other processes on the machine skew every figure; the 1-minute load average says how much.
    loadAverageAtStart: Math.round((loadavg()[0] ?? 0) * 100) / 100,
  };
  const only = new Set((process.env.BENCH_ONLY ?? 'chunking,edits,s3,verify').split(','));
  const result: Record<string, unknown> = { benchmark: 'artifact', machine };
  if (only.has('chunking')) {
    log('chunking...');
    result.chunking = chunking();
  }
  if (only.has('edits')) {
    log('edits (256 MiB, 16 edits) and unchanged republish...');
    const { registry: r, content, ...e } = await edits();
    result.edits = e;
    result.unchanged = await unchanged(r, content);
  }
  if (only.has('s3')) {
    log('S3 requests per GiB (s3rver)...');
    result.s3 = await s3Requests();
  }
  if (only.has('verify')) {
    log('verify 1 GiB...');
    result.verify = await verify();
  }
  result.loadAverageAtEnd = Math.round((loadavg()[0] ?? 0) * 100) / 100;
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
}

try {
  await main();
} finally {
  rmSync(work, { recursive: true, force: true });
}
