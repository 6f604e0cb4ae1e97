/**
 * Nothing a registry serves can crash or fool a reader (issue 14, items 3, 4, 5 and 10), on both
 * backends: a validly signed manifest declaring a 4 GiB or 1 TiB chunk is refused with exit 4 by
 * `artifact verify`, `artifact pull` and `site sync` (real CLI processes); a pack shorter than its
 * manifest declares is refused even where the ranges a version uses are intact; a deleted or
 * oversized head is refused (exit 4), not reported as offline; and the sync agent a daemon runs
 * refuses such a generation and keeps the current one.
 */
import { mkdirSync, readFileSync, readlinkSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { ExitCode } from '../../src/foundation/errors.js';
import { memoryIo } from '../../src/foundation/output.js';
import { silentProgress } from '../../src/artifact/progress.js';
import { pullArtifact } from '../../src/artifact/pull.js';
import { verifyArtifact } from '../../src/artifact/verify.js';
import { manifestDigest, parseManifest, type Manifest } from '../../src/artifact/manifest.js';
import { buildEntry, entryDigest } from '../../src/fleet/entry.js';
import { buildHead } from '../../src/fleet/head.js';
import { readFleet } from '../../src/fleet/read.js';
import { signFleetObject } from '../../src/fleet/signed.js';
import {
  PayloadType,
  decodeEnvelope,
  encodeEnvelope,
  peekPayload,
  signEnvelope,
} from '../../src/registry/envelope.js';
import { FsStore } from '../../src/registry/fs-store.js';
import { writeKeyPair } from '../../src/registry/keys.js';
import {
  HEAD_KEY,
  artifactKey,
  blobKey,
  feedbackKey,
  fleetLogKey,
  snapshotKey,
  trustRootKey,
} from '../../src/registry/layout.js';
import type { RegistryLimits } from '../../src/registry/limits.js';
import { SyncAgent } from '../../src/site/agent.js';
import { readFeedback } from '../../src/feedback/read.js';
import { overwrite } from '../artifact/fixtures.js';
import { runCli } from '../helpers/cli.js';
import { forEachBackend, type MakeStore } from '../helpers/stores.js';
import { publishBasics, siteWorld, tempDir, type SiteWorld } from './fixtures.js';

const GiB = 1024 ** 3;
const TiB = 1024 * GiB;

/** A site that installed seq 1 (policy, model, adapter support@1.0.0). */
async function installed(mk: MakeStore, limits?: Partial<RegistryLimits>): Promise<SiteWorld> {
  const w = await siteWorld(await mk(limits ? { limits } : {}));
  await w.assign(await publishBasics(w, 64 * 1024));
  await w.sync();
  return w;
}

async function adapterManifest(w: SiteWorld, version = '1.0.0'): Promise<Manifest> {
  const key = artifactKey('adapter', 'support', version);
  const obj = await w.store.get(key);
  if (!obj) throw new Error(`missing ${key}`);
  return parseManifest(peekPayload(decodeEnvelope(obj.body, key)), key);
}

/** Signs `m` with the artifacts key (so every signature check passes) and stores it; its digest. */
async function publishSigned(w: SiteWorld, m: Manifest): Promise<string> {
  const env = signEnvelope(PayloadType.artifact, m, [w.t.artifacts]);
  await w.store.putIfAbsent(artifactKey(m.kind, m.name, m.version), encodeEnvelope(env));
  return manifestDigest(m);
}

/** The adapter's manifest as `version`, its first chunk declared `size` bytes (in its real pack). */
function hugeChunk(m: Manifest, version: string, size: number): Manifest {
  const copy = structuredClone(m);
  const file = copy.files.find((f) => f.chunks.length > 0);
  const chunk = file?.chunks[0];
  const blob = copy.blobs.find((b) => b.digest === chunk?.blob);
  if (!file || !chunk || !blob) throw new Error('no chunk');
  file.size += size - chunk.size;
  copy.size += size - chunk.size;
  chunk.size = size;
  blob.size = Math.max(blob.size, chunk.offset + size);
  copy.chunking.max = size;
  return { ...copy, version };
}

/** Pins `ref` (adapter slot) to `digest` in a new fleet entry and head, signed by the fleet key. */
async function pinAdapter(w: SiteWorld, ref: string, digest: string): Promise<void> {
  const applied = (await readFleet(w.store, w.t.trust, { now: new Date() })).applied;
  const op = {
    op: 'assign' as const,
    sites: [w.site],
    slot: 'adapters' as const,
    ref,
    manifestDigest: digest,
  };
  const { entry } = buildEntry(applied, [op], new Date());
  await w.store.putIfAbsent(fleetLogKey(entry.seq), signFleetObject(PayloadType.entry, entry, [w.t.fleet]));
  const head = buildHead({
    seq: entry.seq,
    entryDigest: entryDigest(entry),
    snapshotSeq: null,
    now: new Date(),
    ttlMs: 86_400_000,
  });
  await overwrite(w.store, HEAD_KEY, signFleetObject(PayloadType.head, head, [w.t.fleet]));
}

function localState(w: SiteWorld): { current: string; state: string } {
  return {
    current: readlinkSync(join(w.dataDir, 'current')),
    state: readFileSync(join(w.dataDir, 'state.json'), 'utf8'),
  };
}

async function refusal(p: Promise<unknown>): Promise<{ code?: string; exitCode?: number }> {
  return p.then(
    () => ({ code: 'none (it succeeded)' }),
    (e: unknown) => e as { code?: string; exitCode?: number },
  );
}

/** The sync is refused with `code` (exit 4), recorded as refused, and nothing local moved. */
async function expectSyncRefused(w: SiteWorld, code: string): Promise<void> {
  const before = localState(w);
  expect(await refusal(w.sync())).toMatchObject({ code, exitCode: ExitCode.Verification });
  expect(localState(w)).toEqual(before);
  const last = JSON.parse(readFileSync(join(w.dataDir, 'last-sync.json'), 'utf8'));
  expect(last).toMatchObject({ result: 'refused', error: { code } });
}

forEachBackend((mk) => {
  it('a signed manifest declaring a 4 GiB or a 1 TiB chunk: verify, pull and site sync exit 4', async () => {
    const w = await installed(mk);
    const dir = tempDir('edgectl-bounded-cli-');
    mkdirSync(join(dir, 'trust'), { recursive: true });
    writeFileSync(join(dir, 'trust/root.json'), encodeEnvelope(w.t.envelope));
    writeKeyPair(join(dir, 'keys/fleet.key'), w.t.fleet);
    writeFileSync(join(dir, 'edgectl.yaml'), `registry: ${w.store.url}\n`);
    const env = mk.backend === 's3' ? { ...mk.s3?.env } : {};
    const cli = (...args: string[]) => runCli([...args, '--json'], { cwd: dir, env });
    const base = await adapterManifest(w);
    for (const [version, size] of [
      ['4.0.0', 4 * GiB],
      ['5.0.0', TiB],
    ] as const) {
      const ref = `adapter/support@${version}`;
      await pinAdapter(w, ref, await publishSigned(w, hugeChunk(base, version, size)));
      const before = localState(w);
      // Three processes at once: each only reads the registry (and its own directories).
      const runs = await Promise.all([
        cli('artifact', 'verify', ref),
        cli('artifact', 'pull', ref, join(dir, `out-${version}`), '--cache', join(dir, 'cache')),
        cli('site', 'sync', w.site, '--once', '--data-dir', w.dataDir),
      ]);
      for (const r of runs) {
        expect(r.code, `${size} bytes: ${r.stderr}`).toBe(ExitCode.Verification);
        expect(r.json<{ error: { code: string } }>().error.code).toBe('E_MANIFEST_LIMIT');
      }
      expect(localState(w)).toEqual(before);
    }
  }, 180_000);

  it('a pack shorter than declared is refused, even where the ranges a version uses are intact', async () => {
    const w = await installed(mk);
    const v1 = await adapterManifest(w);
    // Version 2 leaves out the file stored last in the pack, which is then cut off the pack's tail.
    const blob = v1.blobs[0];
    if (!blob || v1.blobs.length !== 1) throw new Error('expected one pack');
    const endOf = (f: Manifest['files'][number]) => Math.max(0, ...f.chunks.map((c) => c.offset + c.size));
    const last = [...v1.files].sort((a, b) => endOf(b) - endOf(a))[0];
    if (!last) throw new Error('no files');
    const files = v1.files.filter((f) => f !== last);
    const v2: Manifest = { ...v1, version: '2.0.0', files, size: v1.size - last.size };
    const used = Math.max(...files.map(endOf));
    expect(used).toBeLessThan(blob.size);
    const digest = await publishSigned(w, v2);
    const bytes = (await w.store.get(blobKey(blob.digest)))?.body ?? Buffer.alloc(0);
    await overwrite(w.store, blobKey(blob.digest), bytes.subarray(0, used));

    const io = memoryIo();
    const opts = { store: w.store, trust: w.t.trust, io, progress: silentProgress };
    expect(await refusal(verifyArtifact({ ...opts, ref: 'adapter/support@2.0.0' }))).toMatchObject({
      code: 'E_BLOB_SIZE',
      exitCode: ExitCode.Verification,
    });
    const pull = pullArtifact({
      ...opts,
      ref: 'adapter/support@2.0.0',
      dir: join(tempDir(), 'out'),
      cacheDir: join(tempDir(), 'cache'),
    });
    expect(await refusal(pull)).toMatchObject({ code: 'E_BLOB_SIZE', exitCode: ExitCode.Verification });
    // A new site (empty chunk cache) syncing version 2 reads the pack: refused.
    await pinAdapter(w, 'adapter/support@2.0.0', digest);
    const fresh = w.sync({ dataDir: join(tempDir(), 'new-site') });
    expect(await refusal(fresh)).toMatchObject({ code: 'E_BLOB_SIZE', exitCode: ExitCode.Verification });

    // Longer than declared is refused as well.
    await overwrite(w.store, blobKey(blob.digest), Buffer.concat([bytes, Buffer.from('extra')]));
    expect(await refusal(verifyArtifact({ ...opts, ref: 'adapter/support@1.0.0' }))).toMatchObject({
      code: 'E_BLOB_SIZE',
    });
  });

  it('a pack declared as 2^52 bytes is refused before it is read', async () => {
    const w = await installed(mk);
    const m = structuredClone(await adapterManifest(w));
    const blob = m.blobs[0];
    if (!blob) throw new Error('no blob');
    blob.size = 2 ** 52;
    await publishSigned(w, { ...m, version: '6.0.0' });
    const requests = w.store.stats.requests;
    const io = memoryIo();
    const run = verifyArtifact({ store: w.store, trust: w.t.trust, io, ref: 'adapter/support@6.0.0' });
    expect(await refusal(run)).toMatchObject({ code: 'E_MANIFEST_LIMIT', exitCode: ExitCode.Verification });
    expect(w.store.stats.requests - requests).toBeLessThanOrEqual(2); // the list and the manifest
  });

  it('a deleted head is refused (exit 4), not reported as offline', async () => {
    const w = await installed(mk);
    await w.store.delete(HEAD_KEY);
    await expectSyncRefused(w, 'E_HEAD_MISSING');
  });

  it('a head over its cap is refused (exit 4) before it is read, not reported as offline', async () => {
    const w = await installed(mk, { head: 4096 });
    await overwrite(w.store, HEAD_KEY, Buffer.alloc(4097, 0x20));
    await expectSyncRefused(w, 'E_OBJECT_TOO_LARGE');
  });

  it('an entry, snapshot, manifest or trust root over its cap is refused (exit 4) by site sync', async () => {
    const CAP = 64 * 1024;
    const junk = Buffer.alloc(CAP + 1, 0x20);
    const cases: [keyof RegistryLimits, (w: SiteWorld) => Promise<void>][] = [
      ['entry', (w) => overwrite(w.store, fleetLogKey(2), junk)],
      ['trustRoot', (w) => w.store.putIfAbsent(trustRootKey(2), junk).then(() => undefined)],
      ['manifest', (w) => overwrite(w.store, artifactKey('adapter', 'support', '1.1.0'), junk)],
    ];
    for (const [kind, spoil] of cases) {
      const w = await installed(mk, { [kind]: CAP });
      const v11 = { ...(await adapterManifest(w)), version: '1.1.0', description: 'next' };
      await pinAdapter(w, 'adapter/support@1.1.0', await publishSigned(w, v11));
      await spoil(w);
      await expectSyncRefused(w, 'E_OBJECT_TOO_LARGE');
    }
    // A new site starts from the snapshot.
    const w = await siteWorld(await mk({ limits: { snapshot: CAP } }));
    await w.assign(await publishBasics(w, 64 * 1024), { snapshotEvery: 1 });
    await overwrite(w.store, snapshotKey(1), junk);
    expect(await refusal(w.sync())).toMatchObject({ code: 'E_OBJECT_TOO_LARGE', exitCode: 4 });
  });

  it('a feedback report over its cap is rejected, the others are read', async () => {
    const store = await mk({ limits: { feedback: 1024 } });
    await store.putIfAbsent(feedbackKey('store-001', 1), Buffer.alloc(1025, 0x20));
    const r = await readFeedback(store, 'store-001', {});
    expect(r.rejected).toEqual([
      { key: feedbackKey('store-001', 1), reason: expect.stringMatching(/1025 bytes, more than the 1024/) },
    ]);
  });

  it('the sync agent refuses a 4 GiB-chunk generation and keeps the current one', async () => {
    const w = await installed(mk);
    const m = hugeChunk(await adapterManifest(w), '4.0.0', 4 * GiB);
    await pinAdapter(w, 'adapter/support@4.0.0', await publishSigned(w, m));
    const agent = new SyncAgent({
      site: w.site,
      dataDir: w.dataDir,
      store: w.store,
      projectTrustPath: w.trustPath,
    });
    const events: string[] = [];
    for (const e of ['refused', 'failed', 'switched', 'sync'] as const) agent.on(e, () => events.push(e));
    const current = (await agent.currentGeneration())?.id;
    const ac = new AbortController();
    const loop = agent.runSyncLoop({ interval: 10, signal: ac.signal });
    await new Promise((r) => setTimeout(r, 400));
    ac.abort();
    const summary = await loop;
    expect(summary.failures).toBeGreaterThanOrEqual(1);
    expect(summary.syncs).toBe(0);
    expect(new Set(events)).toEqual(new Set(['refused']));
    expect((await agent.currentGeneration())?.id).toBe(current);
  });
});

it('fs: a sparse 5 GB head is refused (exit 4) under the default caps, not reported as offline', async () => {
  const w = await siteWorld(new FsStore(tempDir()));
  await w.assign(await publishBasics(w, 64 * 1024));
  await w.sync();
  const root = w.store.url.slice('file:'.length);
  truncateSync(join(root, HEAD_KEY), 5 * GiB);
  await expectSyncRefused(w, 'E_OBJECT_TOO_LARGE');
  // A head that cannot be read as a file (here a directory in its place) is no head: refused.
  rmSync(join(root, HEAD_KEY));
  mkdirSync(join(root, HEAD_KEY));
  await expectSyncRefused(w, 'E_HEAD_MISSING');
});
