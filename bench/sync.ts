/**
 * Site sync benchmark (`npm run bench:sync`): prints one JSON object. Each figure comes with its
 * baseline from the same run.
 *
 * 1. Steady state: a sync when nothing changed, on a directory registry and on s3rver (a real S3
 *    protocol server on 127.0.0.1): requests and body bytes. Target: 1 request, 0 bytes.
 * 2. A site holding a 256 MiB model gets a new 2 MB adapter version: bytes transferred. Target
 *    <= 2.5 MB. Baseline: the first install of the same site (everything).
 * 3. The 256 MiB model is republished with 16 scattered single-byte edits: share of the model's
 *    bytes fetched. Target <= 3%. Baseline: the model's size.
 * 4. A site 1,000 entries behind (1,000 sites in the fleet, a snapshot every 100 entries, the head
 *    99 entries past the latest snapshot: the worst case) catches up through the snapshot: CPU
 *    seconds of the whole sync. Target <= 1 s. Baseline: the same catch-up replaying every entry.
 *
 * The model is a real (tiny) ONNX draft model published through the normal publish path with its
 * validator; its 256 MiB of weights are synthetic seeded pseudo-random bytes in `weights.bin`
 * (the model validator accepts extra files), so they need not be a trained model. Everything runs
 * with real Ed25519 signatures on registries in a temp directory.
 */
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildEntry, type AppliedFleet } from '../src/fleet/entry.js';
import { buildHead } from '../src/fleet/head.js';
import type { FleetOp } from '../src/fleet/ops.js';
import { readFleet } from '../src/fleet/read.js';
import { signFleetObject } from '../src/fleet/signed.js';
import { buildSnapshot } from '../src/fleet/snapshot.js';
import { PayloadType } from '../src/registry/envelope.js';
import { FsStore } from '../src/registry/fs-store.js';
import { generateKeyPair } from '../src/registry/keys.js';
import { HEAD_KEY, fleetLogKey, snapshotKey } from '../src/registry/layout.js';
import { S3Store } from '../src/registry/s3-store.js';
import type { Store } from '../src/registry/store.js';
import type { SyncResult } from '../src/site/sync.js';
import { seededBytes } from '../test/artifact/fixtures.js';
import { startS3 } from '../test/helpers/s3.js';
import { POLICY_DIR, adapterDir, modelDir, siteWorld, type SiteWorld } from '../test/site/fixtures.js';

const MIB = 1024 * 1024;
const MODEL_BYTES = Number(process.env.SYNC_BENCH_MODEL_MIB ?? 256) * MIB;
const ADAPTER_BYTES = 2 * MIB;
const SITES = Number(process.env.SYNC_BENCH_SITES ?? 1000);
const BEHIND = 1000;
const EVERY = 100;

interface Measured<T> {
  value: T;
  wallMs: number;
  cpuMs: number;
}

async function measure<T>(fn: () => Promise<T>): Promise<Measured<T>> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const value = await fn();
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return { value, wallMs: round(wallMs), cpuMs: round((cpu.user + cpu.system) / 1000) };
}

const round = (n: number) => Math.round(n * 10) / 10;

function traffic(r: SyncResult) {
  return {
    requests: r.requests,
    bytesFetched: r.bytesFetched,
    chunksFetched: r.chunksFetched,
    changed: r.changed,
  };
}

async function steadyState(store: Store): Promise<{ requests: number; bodyBytes: number }> {
  const w = await siteWorld(store);
  await w.publish(POLICY_DIR);
  await w.assign({ policy: 'policy/default@1.0.0' });
  await w.sync();
  store.resetStats();
  const r = await w.sync();
  if (r.changed) throw new Error('steady-state sync changed something');
  rmSync(w.dir, { recursive: true, force: true });
  return { requests: store.stats.requests, bodyBytes: store.stats.bytesRead };
}

async function bigModel(root: string) {
  const store = new FsStore(join(root, 'registry-model'));
  const w = await siteWorld(store);
  const src = join(root, 'src');
  const weights = seededBytes(MODEL_BYTES, 42);
  await w.publish(POLICY_DIR);
  await w.publish(modelDir(src, '1.0.0', weights));
  await w.publish(
    adapterDir(src, { version: '1.0.0', base: 'model/draft@1.0.0', bytes: ADAPTER_BYTES, seed: 1 }),
  );
  const base = {
    model: 'model/draft@1.0.0',
    adapters: ['adapter/support@1.0.0'],
    policy: 'policy/default@1.0.0',
  };
  await w.assign(base);
  const install = await measure(() => w.sync());

  // 2. A new 2 MB adapter version.
  await w.publish(
    adapterDir(src, { version: '1.1.0', base: 'model/draft@1.0.0', bytes: ADAPTER_BYTES, seed: 2 }),
  );
  await w.assign({ ...base, adapters: ['adapter/support@1.1.0'] });
  const adapter = await measure(() => w.sync());

  // 3. 16 scattered single-byte edits of the model.
  const edited = Buffer.from(weights);
  for (let i = 0; i < 16; i++) {
    const at = Math.floor(((i + 0.37) * MODEL_BYTES) / 16);
    edited[at] = (edited[at] ?? 0) ^ 0x5a;
  }
  await w.publish(modelDir(src, '1.1.0', edited));
  await w.assign({ ...base, model: 'model/draft@1.1.0', adapters: ['adapter/support@1.1.0'] });
  const edits = await measure(() => w.sync());
  await store.close();
  return { install, adapter, edits };
}

/** Appends small entries (label changes of other sites) up to `to`, snapshots every EVERY. */
async function extendLog(
  w: SiteWorld,
  from: AppliedFleet,
  to: number,
  clock: () => Date,
): Promise<AppliedFleet> {
  let applied = from;
  const names = Object.keys(applied.state.sites).filter((n) => n !== w.site);
  while (applied.seq < to) {
    const name = names[applied.seq % names.length] as string;
    const decl = applied.state.sites[name]?.declaration;
    if (!decl) throw new Error(`no site ${name}`);
    const ops: FleetOp[] = [
      { op: 'site.put', site: { ...decl, labels: { ...decl.labels, rev: String(applied.seq) } } },
    ];
    const { entry, next } = buildEntry(applied, ops, clock());
    await w.store.putIfAbsent(fleetLogKey(entry.seq), signFleetObject(PayloadType.entry, entry, [w.t.fleet]));
    applied = next;
    if (applied.seq % EVERY === 0) {
      await w.store.putIfAbsent(
        snapshotKey(applied.seq),
        signFleetObject(PayloadType.snapshot, buildSnapshot(applied), [w.t.fleet]),
      );
    }
  }
  const cur = await w.store.head(HEAD_KEY);
  const snapshotSeq = applied.seq >= EVERY ? applied.seq - (applied.seq % EVERY) : null;
  const head = buildHead({
    seq: applied.seq,
    entryDigest: applied.entryDigest as string,
    snapshotSeq,
    now: clock(),
    ttlMs: 7 * 86_400_000,
  });
  await w.store.compareAndSwap(HEAD_KEY, signFleetObject(PayloadType.head, head, [w.t.fleet]), cur?.etag);
  return applied;
}

async function catchUp(root: string) {
  const store = new FsStore(join(root, 'registry-log'));
  const w = await siteWorld(store);
  await w.publish(POLICY_DIR);
  await w.assign({ policy: 'policy/default@1.0.0' });
  const clock = () => new Date();
  // Entry 2 declares the rest of the fleet.
  let applied = (await readFleet(store, w.t.trust, { now: clock() })).applied;
  const decl = applied.state.sites[w.site]?.declaration;
  if (!decl) throw new Error('site not declared');
  const puts: FleetOp[] = [];
  for (let i = 1; i < SITES; i++) {
    const kp = generateKeyPair();
    puts.push({
      op: 'site.put',
      site: {
        name: `store-${String(i + 1).padStart(5, '0')}`,
        labels: { region: ['eu-west', 'us-east', 'ap-south'][i % 3] as string },
        publicKey: { keyid: kp.keyid, key: Buffer.from(kp.publicKey).toString('base64') },
        runtime: {},
      },
    });
  }
  const big = buildEntry(applied, puts, clock());
  await store.putIfAbsent(fleetLogKey(2), signFleetObject(PayloadType.entry, big.entry, [w.t.fleet]));
  applied = big.next;
  applied = await extendLog(w, applied, EVERY - 1, clock);
  const start = await w.sync();
  applied = await extendLog(w, applied, EVERY - 1 + BEHIND, clock);

  const copy = join(root, 'data-copy');
  cpSync(w.dataDir, copy, { recursive: true, verbatimSymlinks: true });
  store.resetStats();
  const viaSnapshot = await measure(() => w.sync());
  const viaSnapshotRequests = store.stats.requests;
  store.resetStats();
  const replay = await measure(() => w.sync({ dataDir: copy, snapshotWhenBehind: Number.POSITIVE_INFINITY }));
  const replayRequests = store.stats.requests;
  await store.close();
  return { from: start.seq, to: applied.seq, viaSnapshot, viaSnapshotRequests, replay, replayRequests };
}

async function main(): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'edgectl-bench-sync-'));
  const s3 = await startS3();
  try {
    const fsSteady = await steadyState(new FsStore(join(root, 'registry-steady')));
    const s3Store = new S3Store(s3.bucket, 'bench-steady', { env: s3.env });
    const s3Steady = await steadyState(s3Store);
    await s3Store.close();

    const model = await bigModel(root);
    const log = await catchUp(root);

    const share = model.edits.value.bytesFetched / MODEL_BYTES;
    const result = {
      benchmark: 'sync',
      date: new Date().toISOString(),
      machine: {
        cpu: cpus()[0]?.model ?? 'unknown',
        cores: cpus().length,
        node: process.version,
        platform: process.platform,
      },
      steadyState: {
        fs: fsSteady,
        s3: s3Steady,
        target: { requests: 1, bodyBytes: 0 },
        pass: [fsSteady, s3Steady].every((s) => s.requests === 1 && s.bodyBytes === 0),
      },
      adapterChange: {
        modelBytes: MODEL_BYTES,
        adapterBytes: ADAPTER_BYTES,
        ...traffic(model.adapter.value),
        wallMs: model.adapter.wallMs,
        targetBytes: 2.5e6,
        pass: model.adapter.value.bytesFetched <= 2.5e6,
        baselineFirstInstall: { ...traffic(model.install.value), wallMs: model.install.wallMs },
      },
      scatteredEdits: {
        edits: 16,
        modelBytes: MODEL_BYTES,
        ...traffic(model.edits.value),
        wallMs: model.edits.wallMs,
        shareFetched: Math.round(share * 10000) / 10000,
        targetShare: 0.03,
        pass: share <= 0.03,
      },
      catchUp: {
        sites: SITES,
        behind: log.to - log.from,
        snapshotEvery: EVERY,
        snapshotUsed: log.viaSnapshot.value.snapshotSeq,
        entriesApplied: log.viaSnapshot.value.entriesApplied,
        cpuMs: log.viaSnapshot.cpuMs,
        wallMs: log.viaSnapshot.wallMs,
        requests: log.viaSnapshotRequests,
        targetCpuMs: 1000,
        pass: log.viaSnapshot.cpuMs <= 1000,
        baselineReplay: {
          entriesApplied: log.replay.value.entriesApplied,
          cpuMs: log.replay.cpuMs,
          wallMs: log.replay.wallMs,
          requests: log.replayRequests,
        },
      },
    };
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  } finally {
    await s3.stop();
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
