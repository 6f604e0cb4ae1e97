/**
 * The sync agent in-process on both registry backends (directory and s3rver): first install,
 * steady state (one request, no body), an assignment change that fetches only the changed chunks,
 * rollback and its pin, drift repair from the cache and from the registry, and offline.
 */
import { createHash } from 'node:crypto';
import {
  appendFileSync,
  existsSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  statSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { OperationalError } from '../../src/foundation/errors.js';
import { processStartTime } from '../../src/supervisor/process-identity.js';
import { parseManifest } from '../../src/artifact/manifest.js';
import { decodeEnvelope, peekPayload } from '../../src/registry/envelope.js';
import { FsStore } from '../../src/registry/fs-store.js';
import { artifactKey, blobKey } from '../../src/registry/layout.js';
import { S3Store } from '../../src/registry/s3-store.js';
import { SyncAgent, currentGeneration } from '../../src/site/agent.js';
import { readGeneration } from '../../src/site/generation.js';
import { rollbackSite } from '../../src/site/rollback.js';
import { siteStatus } from '../../src/site/status.js';
import { syncOnce } from '../../src/site/sync.js';
import { forAllBackends } from '../helpers/stores.js';
import { seededBytes } from '../artifact/fixtures.js';
import { adapterDir, modelDir, policyVariant, publishBasics, siteWorld, tempDir } from './fixtures.js';

function sha256(path: string): string {
  return `sha256:${createHash('sha256').update(readFileSync(path)).digest('hex')}`;
}

/** Every file of the current generation hashes to what generation.json says. */
async function expectCurrentIntact(dataDir: string): Promise<void> {
  const cur = await currentGeneration(dataDir);
  expect(cur).toBeDefined();
  for (const a of cur?.info.artifacts ?? []) {
    for (const f of a.files)
      expect(sha256(join(cur?.dir ?? '', a.dir, f.path)), `${a.dir}/${f.path}`).toBe(f.sha256);
  }
}

forAllBackends((mk) => {
  it('installs, then costs one request and no body when nothing changed', async () => {
    const w = await siteWorld(await mk());
    const refs = await publishBasics(w);
    await w.assign(refs);

    const first = await w.sync();
    expect(first).toMatchObject({ seq: 1, changed: true, headChanged: true, previousGeneration: null });
    expect(first.generation).toMatch(/^[0-9a-f]{20}$/);
    expect(readlinkSync(join(w.dataDir, 'current'))).toBe(`generations/${first.generation}`);
    const info = await readGeneration(join(w.dataDir, 'generations', first.generation ?? ''));
    expect(info?.artifacts.map((a) => [a.slot, a.ref, a.dir])).toEqual([
      ['policy', 'policy/default@1.0.0', 'policy'],
      ['adapter', 'adapter/support@1.0.0', 'adapters/support'],
      ['model', 'model/draft@1.0.0', 'model'],
    ]);
    expect(readFileSync(join(w.dataDir, 'current/policy/policy.yaml'), 'utf8')).toContain('routing:');
    await expectCurrentIntact(w.dataDir);
    const state = JSON.parse(readFileSync(join(w.dataDir, 'state.json'), 'utf8'));
    expect(state).toMatchObject({ site: 'store-001', appliedSeq: 1, generation: first.generation });
    expect(state.assignments.model.ref).toBe('model/draft@1.0.0');

    w.store.resetStats();
    const steady = await w.sync();
    expect(steady).toMatchObject({
      changed: false,
      headChanged: false,
      requests: 1,
      bytesFetched: 0,
      generation: first.generation,
    });
    expect(w.store.stats).toMatchObject({ requests: 1, bytesRead: 0 });
  });

  it('an adapter change fetches only its chunks; rollback is pinned until the fleet changes', async () => {
    const w = await siteWorld(await mk());
    const refs = await publishBasics(w, 512 * 1024);
    await w.assign(refs);
    const g1 = (await w.sync()).generation;

    const src = tempDir();
    const v2 = await w.publish(
      adapterDir(src, { version: '1.1.0', base: 'model/draft@1.0.0', bytes: 64 * 1024, seed: 4 }),
    );
    await w.assign({ ...refs, adapters: ['adapter/support@1.1.0'] });
    w.store.resetStats();
    const r2 = await w.sync();
    expect(r2).toMatchObject({ seq: 2, changed: true, previousGeneration: g1 });
    // Only the new adapter's chunks (its safetensors file) came over, not the 512 KiB model.
    expect(r2.chunksFetched).toBeGreaterThan(0);
    expect(r2.bytesFetched).toBeLessThan(v2.bytesTotal + 32 * 1024);
    expect(readlinkSync(join(w.dataDir, 'previous'))).toBe(`generations/${g1}`);
    await expectCurrentIntact(w.dataDir);

    const rb = await rollbackSite({ site: w.site, dataDir: w.dataDir });
    expect(rb).toMatchObject({ generation: g1, previous: r2.generation, seq: 2 });
    expect(rb.pin?.generation).toBe(g1);
    // The fleet still assigns 1.1.0: the pin holds, nothing is fetched.
    const held = await w.sync();
    expect(held).toMatchObject({ generation: g1, changed: false, pinned: true });
    expect((await siteStatus({ site: w.site, dataDir: w.dataDir })).upToDate).toBe(true);
    // Rolling back again returns to the assigned generation: no pin needed.
    expect(await rollbackSite({ site: w.site, dataDir: w.dataDir })).toMatchObject({
      generation: r2.generation,
      pin: null,
    });
    await rollbackSite({ site: w.site, dataDir: w.dataDir });

    // A new assignment from the fleet releases the pin.
    await w.publish(
      adapterDir(src, { version: '1.2.0', base: 'model/draft@1.0.0', bytes: 64 * 1024, seed: 5 }),
    );
    await w.assign({ ...refs, adapters: ['adapter/support@1.2.0'] });
    const r3 = await w.sync();
    expect(r3).toMatchObject({ seq: 3, changed: true, pinned: false, previousGeneration: g1 });
    const state = JSON.parse(readFileSync(join(w.dataDir, 'state.json'), 'utf8'));
    expect(state.pin).toBeNull();
    // Only current and previous are kept.
    const gens = readdirSync(join(w.dataDir, 'generations'));
    expect(gens.sort()).toEqual([g1, r3.generation].sort());
  });

  it('repairs drift from the chunk cache, and from the registry when the cache lost it', async () => {
    const w = await siteWorld(await mk());
    await w.assign(await publishBasics(w));
    await w.sync();
    const cur = join(w.dataDir, 'current');
    const weights = join(cur, 'model/weights.bin');
    const original = sha256(weights);
    // Different bytes (the size and mtime change too), a deleted file, a file nobody published.
    const bytes = readFileSync(weights);
    bytes[1000] = (bytes[1000] ?? 0) ^ 0xff;
    writeFileSync(weights, bytes);
    unlinkSync(join(cur, 'policy/policy.yaml'));
    writeFileSync(join(cur, 'model/extra.bin'), 'dropped here');

    const found = await siteStatus({ site: w.site, dataDir: w.dataDir });
    expect(found.drift).toMatchObject({
      changed: ['model/weights.bin'],
      missing: ['policy/policy.yaml'],
      extra: ['model/extra.bin'],
    });

    w.store.resetStats();
    const r = await w.sync();
    expect(r.drift?.repaired.sort()).toEqual(['model/extra.bin', 'model/weights.bin', 'policy/policy.yaml']);
    expect(r.requests).toBe(1); // repaired from the cache: only the head poll went out
    expect(sha256(weights)).toBe(original);
    expect(existsSync(join(cur, 'model/extra.bin'))).toBe(false);
    await expectCurrentIntact(w.dataDir);
    const after = await siteStatus({ site: w.site, dataDir: w.dataDir });
    expect(after.drift).toMatchObject({ changed: [], missing: [], extra: [] });

    // The chunk cache is gone: the registry repairs it.
    rmSync(join(w.dataDir, 'chunks'), { recursive: true, force: true });
    appendFileSync(weights, 'x');
    const r2 = await w.sync();
    expect(r2.drift?.repaired).toEqual(['model/weights.bin']);
    expect(r2.bytesFetched).toBeGreaterThan(0);
    expect(sha256(weights)).toBe(original);
  });

  it('--verify-all finds a change that kept size and mtime', async () => {
    const w = await siteWorld(await mk());
    await w.assign(await publishBasics(w));
    await w.sync();
    const cfg = join(w.dataDir, 'current/model/config.json');
    const st = statSync(cfg);
    const text = readFileSync(cfg, 'utf8');
    writeFileSync(cfg, text.replace('"vocab_size":8', '"vocab_size":9'));
    utimesSync(cfg, st.atime, st.mtimeMs / 1000);
    expect((await w.sync()).drift?.changed).toEqual([]);
    const r = await w.sync({ verifyAll: true });
    expect(r.drift?.repaired).toEqual(['model/config.json']);
    expect(readFileSync(cfg, 'utf8')).toBe(text);
  });

  it('a shared (hard-linked) file changed behind its size and mtime is not carried into a new generation', async () => {
    const w = await siteWorld(await mk());
    const refs = await publishBasics(w);
    await w.assign(refs);
    await w.sync();
    const src = tempDir();
    await w.publish(policyVariant(src, '1.1.0'));
    await w.assign({ ...refs, policy: 'policy/default@1.1.0' });
    const g2 = await w.sync();
    // The model is linked from the first generation, not copied.
    const weights = join(w.dataDir, 'current/model/weights.bin');
    expect(statSync(weights).nlink).toBe(2);
    const good = sha256(weights);
    const st = statSync(weights);
    const bytes = readFileSync(weights);
    bytes[5] = (bytes[5] ?? 0) ^ 1;
    writeFileSync(weights, bytes);
    utimesSync(weights, st.atime, st.mtimeMs / 1000);

    await w.publish(policyVariant(src, '1.2.0'));
    await w.assign({ ...refs, policy: 'policy/default@1.2.0' });
    const g3 = await w.sync();
    expect(g3).toMatchObject({ changed: true, previousGeneration: g2.generation });
    expect(sha256(weights)).toBe(good);
    await expectCurrentIntact(w.dataDir);
    // Rolling back to the generation that shares the damaged file repairs it first.
    const rb = await rollbackSite({ site: w.site, dataDir: w.dataDir });
    expect(rb.repaired).toEqual(['model/weights.bin']);
    await expectCurrentIntact(w.dataDir);
  });

  it('a new policy goes live before a large model download completes', async () => {
    const w = await siteWorld(await mk());
    const refs = await publishBasics(w);
    await w.assign({ model: refs.model, policy: refs.policy });
    const g1 = (await w.sync()).generation;
    const src = tempDir();
    await w.publish(policyVariant(src, '1.1.0'));
    await w.publish(modelDir(src, '2.0.0', seededBytes(512 * 1024, 77)));
    await w.assign({ model: 'model/draft@2.0.0', policy: 'policy/default@1.1.0' });

    // The registry drops off when the new model's pack is read (after the policy's).
    const env = decodeEnvelope(
      (await w.store.get(artifactKey('model', 'draft', '2.0.0')))?.body ?? '',
      'model',
    );
    const modelBlobs = new Set(parseManifest(peekPayload(env), 'model').blobs.map((b) => blobKey(b.digest)));
    const flaky = new Proxy(w.store, {
      get(target, prop, receiver) {
        if (prop === 'getRange') {
          return (key: string, start: number, end: number) =>
            modelBlobs.has(key)
              ? Promise.reject(
                  new OperationalError('the registry is unreachable', { code: 'E_REGISTRY_UNREACHABLE' }),
                )
              : target.getRange(key, start, end);
        }
        const value: unknown = Reflect.get(target, prop, receiver);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const r = await w.sync({ store: flaky });
    expect(r).toMatchObject({ offline: true, seq: 1, changed: true });
    // The new policy is live next to the old model; the committed generation stays previous.
    expect(r.generation).not.toBe(g1);
    expect(readFileSync(join(w.dataDir, 'current/policy/policy.yaml'), 'utf8')).toContain('variant 1.1.0');
    expect(sha256(join(w.dataDir, 'current/model/weights.bin'))).toBe(
      sha256(join(w.dataDir, 'previous/model/weights.bin')),
    );
    await expectCurrentIntact(w.dataDir);
    expect(readlinkSync(join(w.dataDir, 'previous'))).toBe(`generations/${g1}`);
    expect(JSON.parse(readFileSync(join(w.dataDir, 'state.json'), 'utf8')).generation).toBe(g1);

    const done = await w.sync();
    expect(done).toMatchObject({ changed: true, seq: 2, previousGeneration: g1 });
    expect(readFileSync(join(w.dataDir, 'current/policy/policy.yaml'), 'utf8')).toContain('variant 1.1.0');
    await expectCurrentIntact(w.dataDir);
  });

  it('offline: reports it, keeps current, and exits cleanly; events tell the daemon', async () => {
    const w = await siteWorld(await mk());
    await w.assign(await publishBasics(w));
    const g = (await w.sync()).generation;
    const unreachable =
      mk.backend === 'fs'
        ? new FsStore(join(tempDir(), 'unmounted'))
        : new S3Store('edgectl-test', 'nowhere', {
            env: { ...mk.s3?.env, AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:9' },
            maxAttempts: 1,
          });
    const agent = new SyncAgent({ site: w.site, dataDir: w.dataDir, store: unreachable });
    const seen: string[] = [];
    agent.on('offline', () => seen.push('offline'));
    agent.on('sync', () => seen.push('sync'));
    const r = await agent.syncOnce();
    await unreachable.close();
    expect(r).toMatchObject({ offline: true, changed: false, generation: g, seq: 1 });
    expect(seen).toEqual(['offline', 'sync']);
    expect(readlinkSync(join(w.dataDir, 'current'))).toBe(`generations/${g}`);
    const status = await siteStatus({ site: w.site, dataDir: w.dataDir });
    expect(status).toMatchObject({ offline: true, generation: g });
    expect(status.lastSync?.result).toBe('offline');
  });
});

describe('sync agent (directory registry)', () => {
  it('runs until aborted and reports each switch', async () => {
    const store = new FsStore(join(tempDir(), 'registry'));
    const w = await siteWorld(store);
    const refs = await publishBasics(w, 64 * 1024);
    await w.assign(refs);
    const agent = new SyncAgent({ site: w.site, dataDir: w.dataDir, store, projectTrustPath: w.trustPath });
    const controller = new AbortController();
    const switched: string[] = [];
    agent.on('switched', (e) => switched.push(e.to));
    let syncs = 0;
    agent.on('sync', () => {
      syncs++;
      if (syncs === 1) {
        // The fleet changes while the loop runs; the next tick installs it.
        void w
          .publish(adapterDir(tempDir(), { version: '1.1.0', base: 'model/draft@1.0.0', seed: 9 }))
          .then(() => w.assign({ ...refs, adapters: ['adapter/support@1.1.0'] }))
          .then(() => agent.syncOnce())
          .then(() => controller.abort());
      }
    });
    const summary = await agent.runSyncLoop({ interval: 60_000, signal: controller.signal });
    expect(summary.failures).toBe(0);
    expect(switched).toHaveLength(2);
    expect((await agent.currentGeneration())?.id).toBe(switched[1]);
    await store.close();
  });

  it('warns when the site key is not the declared one; refuses a damaged state.json, naming it', async () => {
    const store = new FsStore(join(tempDir(), 'registry'));
    const w = await siteWorld(store);
    await w.assign(await publishBasics(w, 64 * 1024));
    const { generateKeyPair, writeKeyPair } = await import('../../src/registry/keys.js');
    writeKeyPair(join(w.dataDir, 'site.key'), generateKeyPair(), { force: true });
    const r = await w.sync();
    expect(r.warnings.join('\n')).toMatch(/is not the key the fleet declares for store-001/);

    const statePath = join(w.dataDir, 'state.json');
    const state = JSON.parse(readFileSync(statePath, 'utf8'));
    writeFileSync(statePath, JSON.stringify({ ...state, appliedSeq: 'one' }));
    const current = readlinkSync(join(w.dataDir, 'current'));
    await expect(w.sync()).rejects.toMatchObject({
      code: 'E_SITE_STATE',
      exitCode: 1,
      message: expect.stringMatching(/state\.json is damaged: appliedSeq: /),
    });
    expect(readlinkSync(join(w.dataDir, 'current'))).toBe(current);
    await store.close();
  });

  it('before the first site apply there is nothing to install, and status says so', async () => {
    const store = new FsStore(join(tempDir(), 'registry'));
    const w = await siteWorld(store);
    const r = await w.sync();
    expect(r).toMatchObject({ seq: 0, generation: null, changed: false, requests: 1 });
    expect(r.warnings.join('\n')).toMatch(/has no fleet head yet: run `edgectl site apply` first/);
    expect(await siteStatus({ site: w.site, dataDir: w.dataDir })).toMatchObject({
      synced: false,
      generation: null,
    });
    await store.close();
  });

  it('a second process cannot sync the same data directory at the same time', async () => {
    const store = new FsStore(join(tempDir(), 'registry'));
    const w = await siteWorld(store);
    await w.assign(await publishBasics(w, 64 * 1024));
    // A live holder: its pid and the start time acquireLock records (a pid alone proves nothing).
    writeFileSync(
      join(w.dataDir, 'sync.lock'),
      JSON.stringify({ pid: process.pid, purpose: 'a sync', startTime: processStartTime('self') }),
    );
    await expect(
      syncOnce({ site: w.site, dataDir: w.dataDir, store, projectTrustPath: w.trustPath }),
    ).rejects.toMatchObject({
      code: 'E_SITE_LOCKED',
    });
    // A lock naming a live process without the identity to prove it is the holder is broken too.
    writeFileSync(join(w.dataDir, 'sync.lock'), JSON.stringify({ pid: process.pid, purpose: 'a sync' }));
    expect(
      (await syncOnce({ site: w.site, dataDir: w.dataDir, store, projectTrustPath: w.trustPath })).changed,
    ).toBe(true);
    // A lock left by a dead process is broken (nothing new to install by now, but no E_SITE_LOCKED).
    writeFileSync(join(w.dataDir, 'sync.lock'), JSON.stringify({ pid: 2 ** 22 + 12345, purpose: 'a sync' }));
    expect(
      (await syncOnce({ site: w.site, dataDir: w.dataDir, store, projectTrustPath: w.trustPath })).changed,
    ).toBe(false);
    await store.close();
  });
});
