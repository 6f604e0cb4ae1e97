/**
 * publish / verify / pull / gc against a real registry, on both backends (temp directory and
 * s3rver): round trips, immutability, deduplication, every tampering case (exit 4, nothing
 * written), invalid input (exit 2, registry untouched), resumable pulls and gc safety.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ExitCode, UserError, type EdgectlError } from '../../src/foundation/errors.js';
import { memoryIo } from '../../src/foundation/output.js';
import { ChunkCache } from '../../src/artifact/chunk-cache.js';
import { fetchChunks } from '../../src/artifact/fetch.js';
import { gcRegistry } from '../../src/artifact/gc.js';
import { parseManifest, type Manifest } from '../../src/artifact/manifest.js';
import { readManifest } from '../../src/artifact/manifest-store.js';
import { PACK_STORE_OPTIONS } from '../../src/artifact/pack.js';
import { silentProgress } from '../../src/artifact/progress.js';
import { pullArtifact } from '../../src/artifact/pull.js';
import { verifyArtifact } from '../../src/artifact/verify.js';
import { digestOf } from '../../src/foundation/digest.js';
import { PayloadType, encodeEnvelope, peekPayload, signEnvelope } from '../../src/registry/envelope.js';
import { generateKeyPair } from '../../src/registry/keys.js';
import { artifactKey, blobKey, trustRootKey } from '../../src/registry/layout.js';
import type { Store } from '../../src/registry/store.js';
import { createTrustRoot, loadRegistryTrust } from '../../src/registry/trust.js';
import { forAllBackends, forEachBackend } from '../helpers/stores.js';
import {
  makeAdapterDir,
  makeModelDir,
  makePolicyDir,
  overwrite,
  publish,
  seededBytes,
  setupRegistry,
  tempDir,
  type RegistryFixture,
} from './fixtures.js';

async function rejection(p: Promise<unknown>): Promise<EdgectlError> {
  const err = await p.then(
    () => {
      throw new Error('expected a failure');
    },
    (e: unknown) => e,
  );
  return err as EdgectlError;
}

async function expectExit(p: Promise<unknown>, code: number, pattern: RegExp): Promise<EdgectlError> {
  const err = await rejection(p);
  expect(err.message).toMatch(pattern);
  expect(err.exitCode).toBe(code);
  return err;
}

function verify(fx: RegistryFixture, ref: string) {
  return verifyArtifact({ store: fx.store, ref, trust: fx.trust, io: memoryIo(), progress: silentProgress });
}

function pull(fx: RegistryFixture, ref: string, dir: string, cacheDir: string, store: Store = fx.store) {
  return pullArtifact({
    store,
    ref,
    trust: fx.trust,
    dir,
    cacheDir,
    io: memoryIo(),
    progress: silentProgress,
  });
}

async function keys(store: Store, prefix: string): Promise<string[]> {
  return (await store.list(prefix)).map((o) => o.key);
}

async function loadManifest(
  fx: RegistryFixture,
  ref: { kind: 'model' | 'policy' | 'adapter'; name: string; version: string },
) {
  const m = await readManifest(fx.store, ref.kind, ref.name, ref.version, fx.trust);
  if (!m) throw new Error('manifest missing');
  return m;
}

/** Writes a manifest signed with the fixture's artifacts key (a faulty but authorized publisher). */
async function writeSigned(fx: RegistryFixture, m: Manifest): Promise<void> {
  const env = signEnvelope(PayloadType.artifact, m, [fx.signer]);
  await overwrite(fx.store, artifactKey(m.kind, m.name, m.version), encodeEnvelope(env));
}

forAllBackends((mk) => {
  const setup = async () => setupRegistry(await mk({ s3: PACK_STORE_OPTIONS.s3 }));

  it('publish -> verify -> pull round trip; a second pull fetches nothing', async () => {
    const fx = await setup();
    const weights = seededBytes(3 * 1024 * 1024 + 17, 1);
    const src = makeModelDir(tempDir(), { weights });
    const res = await publish(fx, src);
    expect(res).toMatchObject({ ref: 'model/draft@1.0.0', created: true, files: 4, packsUploaded: 1 });
    expect(res.bytesUploaded).toBe(res.bytesTotal);
    expect(res.chunksUploaded).toBe(res.chunksTotal);

    const v = await verify(fx, 'model/draft@1.0.0');
    expect(v).toMatchObject({
      ref: 'model/draft@1.0.0',
      manifestDigest: res.manifestDigest,
      files: 4,
      blobs: 1,
    });
    expect(v.signedBy).toEqual([fx.signer.keyid]);
    expect(v.bytesVerified).toBe(res.bytesTotal);
    // Digest refs resolve to the same manifest.
    expect((await verify(fx, `model/draft@${res.manifestDigest}`)).ref).toBe('model/draft@1.0.0');

    const out = join(tempDir(), 'out');
    const cache = join(tempDir(), 'cache');
    const p = await pull(fx, 'model/draft@1.0.0', out, cache);
    expect(p).toMatchObject({ filesWritten: 4, filesUnchanged: 0, chunksCached: 0 });
    expect(p.chunksFetched).toBe(p.chunksTotal);
    expect(readFileSync(join(out, 'weights.bin')).equals(weights)).toBe(true);
    expect(readFileSync(join(out, 'model.onnx')).equals(readFileSync(join(src, 'model.onnx')))).toBe(true);
    expect(readdirSync(out).sort()).toEqual(['config.json', 'model.onnx', 'tokenizer.json', 'weights.bin']);
    // One ranged GET for all chunks (one pack), plus the manifest.
    expect(p.requests).toBeLessThanOrEqual(3);

    const again = await pull(fx, 'model/draft@1.0.0', out, cache);
    expect(again).toMatchObject({ filesWritten: 0, filesUnchanged: 4, chunksFetched: 0, bytesFetched: 0 });
  });

  it('republish: same bytes is a no-op (bytesUploaded 0); different bytes exit 2 with the original intact', async () => {
    const fx = await setup();
    const parent = tempDir();
    const src = makePolicyDir(parent, { extra: seededBytes(300_000, 3) });
    const first = await publish(fx, src);
    const key = artifactKey('policy', 'default', '1.0.0');
    const before = (await fx.store.get(key))?.body;

    fx.store.resetStats();
    const same = await publish(fx, src);
    expect(same).toMatchObject({
      created: false,
      bytesUploaded: 0,
      chunksUploaded: 0,
      manifestDigest: first.manifestDigest,
    });
    expect(same.requests).toBeLessThanOrEqual(2);

    writeFileSync(join(src, 'data.bin'), seededBytes(300_000, 4));
    const err = await expectExit(
      publish(fx, src),
      ExitCode.Usage,
      /policy\/default@1\.0\.0 is already published with different content \(changed: data\.bin\)/,
    );
    expect(err.code).toBe('E_VERSION_EXISTS');
    expect((await fx.store.get(key))?.body.equals(before as Buffer)).toBe(true);
    await verify(fx, 'policy/default@1.0.0');
  });

  it('a new version uploads only changed chunks; an unchanged new version uploads nothing', async () => {
    const fx = await setup();
    const weights = seededBytes(4 * 1024 * 1024, 5);
    const v1 = makeModelDir(tempDir(), { weights, version: '1.0.0' });
    await publish(fx, v1);

    const edited = Buffer.from(weights);
    edited.write('edgectl', 1_000_000);
    edited.write('edgectl', 3_000_000);
    const v2 = makeModelDir(tempDir(), { weights: edited, version: '1.1.0' });
    const r2 = await publish(fx, v2);
    expect(r2.dedupSources).toEqual(['model/draft@1.0.0']);
    expect(r2.bytesUploaded).toBeGreaterThan(0);
    expect(r2.bytesUploaded).toBeLessThan(weights.length * 0.25);

    const v3 = makeModelDir(tempDir(), { weights: edited, version: '1.2.0' });
    fx.store.resetStats();
    const r3 = await publish(fx, v3);
    expect(r3).toMatchObject({ created: true, bytesUploaded: 0, chunksUploaded: 0, packsUploaded: 0 });
    expect(r3.chunksReused).toBe(r3.chunksTotal);
    // O(files), not O(chunks): list + the previous manifests + the manifest write.
    expect(r3.requests).toBeLessThanOrEqual(10);
    for (const v of ['1.0.0', '1.1.0', '1.2.0']) await verify(fx, `model/draft@${v}`);
    const out = join(tempDir(), 'out');
    await pull(fx, 'model/draft@1.2.0', out, join(tempDir(), 'cache'));
    expect(readFileSync(join(out, 'weights.bin')).equals(edited)).toBe(true);
  });

  it('refuses symlinks and unsafe names in the source directory (exit 2, registry untouched)', async () => {
    const fx = await setup();
    const src = makePolicyDir(tempDir());
    symlinkSync('/etc/passwd', join(src, 'passwd'));
    await expectExit(publish(fx, src), ExitCode.Usage, /passwd: is a symbolic link/);
    const src2 = makePolicyDir(tempDir());
    mkdirSync(join(src2, 'sub'));
    symlinkSync('..', join(src2, 'sub', 'up'));
    await expectExit(publish(fx, src2), ExitCode.Usage, /sub\/up: is a symbolic link/);
    const src3 = makePolicyDir(tempDir());
    writeFileSync(join(src3, 'a\\..\\b'), 'x');
    await expectExit(publish(fx, src3), ExitCode.Usage, /unsafe file name: contains a backslash/);
    expect(await keys(fx.store, 'artifacts/')).toEqual([]);
    expect(await keys(fx.store, 'blobs/')).toEqual([]);
  });

  it('refuses invalid semver and unknown kinds, naming where they came from (exit 2)', async () => {
    const fx = await setup();
    const src = makePolicyDir(tempDir());
    writeFileSync(join(src, 'artifact.yaml'), 'kind: policy\nname: default\nversion: 1.0\n');
    await expectExit(
      publish(fx, src),
      ExitCode.Usage,
      /artifact\.yaml:3: version: expected a semantic version string/,
    );
    writeFileSync(join(src, 'artifact.yaml'), 'kind: policy\nname: default\nversion: "1.0"\n');
    await expectExit(
      publish(fx, src),
      ExitCode.Usage,
      /artifact\.yaml:3: version: "1\.0" is not a semantic version/,
    );
    await expectExit(
      publish(fx, src, { version: '01.0.0' }),
      ExitCode.Usage,
      /--version: "01\.0\.0" is not a semantic version/,
    );
    await expectExit(
      publish(fx, src, { kind: 'dataset', version: '1.0.0' }),
      ExitCode.Usage,
      /--kind: unknown artifact kind "dataset"/,
    );
    expect(await keys(fx.store, 'blobs/')).toEqual([]);
  });

  it('adapters: base must be in the registry and accept the rank and modules', async () => {
    const fx = await setup();
    const parent = tempDir();
    await expectExit(
      publish(fx, makeAdapterDir(parent, { base: 'model/draft@1.0.0' })),
      ExitCode.Usage,
      /the adapter's base model model\/draft@1\.0\.0 is not in the registry/,
    );
    await publish(
      fx,
      makeModelDir(parent, {
        loraModules: ['q_proj', 'v_proj'],
        lora: { target_modules: ['q_proj', 'v_proj'], max_rank: 8 },
      }),
    );
    const ok = await publish(
      fx,
      makeAdapterDir(parent, { base: 'model/draft@1.0.0', r: 4, modules: ['q_proj'] }),
    );
    expect(ok.ref).toBe('adapter/support@1.0.0');
    expect(ok.dedupSources).toContain('model/draft@1.0.0');
    const shown = await loadManifest(fx, { kind: 'adapter', name: 'support', version: '1.0.0' });
    expect(shown.manifest.meta).toMatchObject({
      base: 'model/draft@1.0.0',
      rank: 4,
      targetModules: ['q_proj'],
    });
    await expectExit(
      publish(fx, makeAdapterDir(parent, { base: 'model/draft@1.0.0', r: 16, name: 'big' })),
      ExitCode.Usage,
      /adapter_config\.json: r: rank 16 exceeds the base model's max_rank 8/,
    );
    await expectExit(
      publish(fx, makeAdapterDir(parent, { base: 'model/draft@1.0.0', modules: ['gate_proj'], name: 'mlp' })),
      ExitCode.Usage,
      /target_modules: gate_proj not supported by model\/draft@1\.0\.0/,
    );
    await expectExit(
      publish(fx, makeAdapterDir(parent, { base: 'model/draft@1.0.0', tensorRank: 2, name: 'lying' })),
      ExitCode.Usage,
      /does not have rank 4/,
    );
    await expectExit(
      publish(fx, makeAdapterDir(parent, { base: 'model/draft@1.0.0', layers: 3, name: 'deep' })),
      ExitCode.Usage,
      /layer 2 does not exist in model\/draft@1\.0\.0/,
    );
  });

  describe('tampering is refused with exit 4 and nothing written', () => {
    const published = async () => {
      const fx = await setup();
      const weights = seededBytes(1024 * 1024, 9);
      await publish(fx, makeModelDir(tempDir(), { weights }));
      const loaded = await loadManifest(fx, { kind: 'model', name: 'draft', version: '1.0.0' });
      return { fx, loaded, weights };
    };
    const pullNothingWritten = async (fx: RegistryFixture, pattern: RegExp) => {
      const out = join(tempDir(), 'out');
      await expectExit(
        pull(fx, 'model/draft@1.0.0', out, join(tempDir(), 'cache')),
        ExitCode.Verification,
        pattern,
      );
      expect(existsSync(out) ? readdirSync(out) : []).toEqual([]);
    };

    // Chunk 3 lies inside the file, the last one also ends it (its file hash closes in the same range).
    it.each([['3'], ['last']])('a modified chunk (%s): names the file and chunk', async (which) => {
      const { fx, loaded } = await published();
      const m = loaded.manifest;
      const file = m.files.find((f) => f.path === 'weights.bin');
      const index = which === 'last' ? (file?.chunks.length ?? 0) - 1 : 3;
      const chunk = file?.chunks[index];
      if (!chunk) throw new Error('fixture');
      const pack = (await fx.store.get(blobKey(chunk.blob)))?.body as Buffer;
      const bad = Buffer.from(pack);
      bad[chunk.offset + 10] = (bad[chunk.offset + 10] as number) ^ 0xff;
      await overwrite(fx.store, blobKey(chunk.blob), bad);
      const pattern = new RegExp(`file weights\\.bin chunk ${index} is corrupt`);
      const err = await expectExit(verify(fx, 'model/draft@1.0.0'), ExitCode.Verification, pattern);
      expect(err.code).toBe('E_CHUNK_HASH');
      await pullNothingWritten(fx, pattern);
    });

    it('a blob larger than the manifest says', async () => {
      const { fx, loaded } = await published();
      const blob = loaded.manifest.blobs[0]?.digest as string;
      const pack = (await fx.store.get(blobKey(blob)))?.body as Buffer;
      await overwrite(fx.store, blobKey(blob), Buffer.concat([pack, Buffer.from('trailing junk')]));
      const err = await expectExit(
        verify(fx, 'model/draft@1.0.0'),
        ExitCode.Verification,
        /is larger than the \d+ bytes the signed manifest says \(extra bytes were added\)/,
      );
      expect(err.code).toBe('E_BLOB_SIZE');
    });

    it('a modified manifest, a replaced signature, another payload type', async () => {
      const { fx, loaded } = await published();
      const key = artifactKey('model', 'draft', '1.0.0');
      const env = loaded.envelope;
      const payload = peekPayload(env) as Manifest;
      const forged = {
        ...env,
        payload: Buffer.from(JSON.stringify({ ...payload, description: 'evil' })).toString('base64'),
      };
      await overwrite(fx.store, key, encodeEnvelope(forged));
      await expectExit(verify(fx, 'model/draft@1.0.0'), ExitCode.Verification, /bad signature/);
      await pullNothingWritten(fx, /bad signature/);

      const stranger = generateKeyPair();
      await overwrite(fx.store, key, encodeEnvelope(signEnvelope(PayloadType.artifact, payload, [stranger])));
      await expectExit(verify(fx, 'model/draft@1.0.0'), ExitCode.Verification, /signed by unknown key/);

      await overwrite(fx.store, key, encodeEnvelope(signEnvelope(PayloadType.entry, payload, [fx.signer])));
      await expectExit(verify(fx, 'model/draft@1.0.0'), ExitCode.Verification, /wrong payload type/);
      await pullNothingWritten(fx, /wrong payload type/);

      // A validly signed manifest of another version copied over this one.
      const other = signEnvelope(PayloadType.artifact, { ...payload, version: '9.9.9' }, [fx.signer]);
      await overwrite(fx.store, key, encodeEnvelope(other));
      await expectExit(
        verify(fx, 'model/draft@1.0.0'),
        ExitCode.Verification,
        /describes model\/draft@9\.9\.9, not model\/draft@1\.0\.0/,
      );
    });

    it('a manifest signed below the artifacts threshold', async () => {
      const store = await mk({ s3: PACK_STORE_OPTIONS.s3 });
      const root = generateKeyPair();
      const [a, b] = [generateKeyPair(), generateKeyPair()];
      const env = createTrustRoot({
        rootKeys: [root],
        artifactsKeys: [a, b],
        threshold: { artifacts: 2 },
        expires: new Date(Date.now() + 86_400_000),
      });
      await store.putIfAbsent(trustRootKey(1), encodeEnvelope(env));
      const pinned = join(tempDir(), 'root.json');
      writeFileSync(pinned, encodeEnvelope(env));
      const trust = await loadRegistryTrust(store, pinned, new Date());
      const fx: RegistryFixture = {
        store,
        trust,
        trustPath: pinned,
        rootEnvelope: env,
        rootKey: root,
        signer: a,
        signerPath: '',
        dir: '',
      };
      // publish itself refuses to write a manifest that cannot meet the threshold...
      await expectExit(publish(fx, makePolicyDir(tempDir())), ExitCode.Usage, /needs 2 signatures/);
      // ...and a manifest written with one signature does not verify.
      await publish(fx, makePolicyDir(tempDir()), { trust: undefined });
      await expectExit(
        verifyArtifact({
          store,
          ref: 'policy/default@1.0.0',
          trust,
          io: memoryIo(),
          progress: silentProgress,
        }),
        ExitCode.Verification,
        /below threshold: 1 of 2 required valid signatures/,
      );
    });

    it('path traversal in a signed manifest: exit 2 and nothing written outside the target', async () => {
      const { fx, loaded } = await published();
      const m = structuredClone(loaded.manifest) as Manifest;
      (m.files[0] as { path: string }).path = '../escape.txt';
      await writeSigned(fx, m);
      const parent = tempDir();
      const out = join(parent, 'out');
      await expectExit(
        pull(fx, 'model/draft@1.0.0', out, join(tempDir(), 'cache')),
        ExitCode.Usage,
        /unsafe path "..\/escape\.txt": escapes the artifact/,
      );
      expect(existsSync(join(parent, 'escape.txt'))).toBe(false);
      await expectExit(verify(fx, 'model/draft@1.0.0'), ExitCode.Usage, /escapes the artifact/);
    });

    it('a manifest whose file hash does not match its (valid) chunks', async () => {
      const { fx, loaded } = await published();
      const m = structuredClone(loaded.manifest) as Manifest;
      const f = m.files.find((x) => x.path === 'weights.bin') as { sha256: string };
      f.sha256 = `sha256:${'0'.repeat(64)}`;
      await writeSigned(fx, parseManifest(m, 'test'));
      await expectExit(
        verify(fx, 'model/draft@1.0.0'),
        ExitCode.Verification,
        /file weights\.bin hashes to sha256:[0-9a-f]{64}, the signed manifest says sha256:0{64}/,
      );
      await pullNothingWritten(fx, /file weights\.bin: every chunk verifies but the file hashes to/);
    });

    it('a missing blob', async () => {
      const { fx, loaded } = await published();
      await fx.store.delete(blobKey(loaded.manifest.blobs[0]?.digest as string));
      await expectExit(
        verify(fx, 'model/draft@1.0.0'),
        ExitCode.Verification,
        /blob sha256:[0-9a-f]+ is missing from the registry/,
      );
      await pullNothingWritten(fx, /is missing from the registry/);
    });
  });

  it('pull resumes after an interruption, reusing the cache; older files in the target seed it', async () => {
    const fx = await setup();
    const weights = seededBytes(6 * 1024 * 1024, 11);
    await publish(fx, makeModelDir(tempDir(), { weights }), { packTarget: 1024 * 1024 });
    const loaded = await loadManifest(fx, { kind: 'model', name: 'draft', version: '1.0.0' });
    const cacheDir = join(tempDir(), 'cache');
    // A store whose connection drops after three ranged reads.
    let reads = 0;
    const flaky = new Proxy(fx.store, {
      get(target, prop, receiver) {
        if (prop === 'getRange') {
          return async (key: string, start: number, end: number) => {
            if (++reads > 3) throw new Error('connection reset');
            return target.getRange(key, start, end);
          };
        }
        return Reflect.get(target, prop, receiver) as unknown;
      },
    }) as Store;
    await expect(
      fetchChunks(flaky, loaded.manifest, new ChunkCache(cacheDir), { concurrency: 1 }),
    ).rejects.toThrow(/connection reset/);

    const out = join(tempDir(), 'out');
    const resumed = await pull(fx, 'model/draft@1.0.0', out, cacheDir);
    expect(resumed.chunksCached).toBeGreaterThan(0);
    expect(resumed.chunksFetched).toBe(resumed.chunksTotal - resumed.chunksCached);
    expect(readFileSync(join(out, 'weights.bin')).equals(weights)).toBe(true);

    // v2 changes a little; pulled into the same directory with an EMPTY cache, the old files seed it.
    const edited = Buffer.from(weights);
    edited.write('v2', 2_000_000);
    await publish(fx, makeModelDir(tempDir(), { weights: edited, version: '2.0.0' }));
    const p2 = await pull(fx, 'model/draft@2.0.0', out, join(tempDir(), 'fresh-cache'));
    expect(p2.chunksSeeded).toBeGreaterThan(0);
    expect(p2.bytesFetched).toBeLessThan(edited.length / 4);
    expect(readFileSync(join(out, 'weights.bin')).equals(edited)).toBe(true);
  });

  it('gc deletes only unreferenced blobs past the grace period, never a referenced one', async () => {
    const fx = await setup();
    const weights = seededBytes(2 * 1024 * 1024, 13);
    await publish(fx, makeModelDir(tempDir(), { weights, version: '1.0.0' }));
    const edited = Buffer.from(weights);
    edited.write('x', 100);
    await publish(fx, makeModelDir(tempDir(), { weights: edited, version: '1.1.0' }));
    const orphan = seededBytes(50_000, 99);
    const orphanKey = blobKey(digestOf(orphan));
    await fx.store.putIfAbsent(orphanKey, orphan);
    const referenced = (await keys(fx.store, 'blobs/')).filter((k) => k !== orphanKey);
    expect(referenced.length).toBeGreaterThanOrEqual(2);

    const young = await gcRegistry({ store: fx.store, dryRun: false, io: memoryIo() });
    expect(young).toMatchObject({ deleted: 0, keptYoung: 1, manifests: 2 });

    const dry = await gcRegistry({ store: fx.store, dryRun: true, graceMs: 0, io: memoryIo() });
    expect(dry).toMatchObject({
      dryRun: true,
      deleted: 1,
      deletedKeys: [orphanKey],
      bytesFreed: orphan.length,
    });
    expect(await keys(fx.store, 'blobs/')).toContain(orphanKey);

    const real = await gcRegistry({ store: fx.store, dryRun: false, graceMs: 0, io: memoryIo() });
    expect(real).toMatchObject({ deleted: 1, referenced: referenced.length });
    expect((await keys(fx.store, 'blobs/')).sort()).toEqual(referenced.sort());
    await verify(fx, 'model/draft@1.0.0');
    await verify(fx, 'model/draft@1.1.0');

    // A manifest gc cannot read stops it before anything is deleted.
    await fx.store.putIfAbsent(orphanKey, orphan);
    await fx.store.putIfAbsent(
      artifactKey('model', 'broken', '1.0.0'),
      Buffer.from('{"not": "an envelope"}'),
    );
    await expectExit(
      gcRegistry({ store: fx.store, dryRun: false, graceMs: 0, io: memoryIo() }),
      ExitCode.Error,
      /gc stopped, nothing deleted/,
    );
    expect(await keys(fx.store, 'blobs/')).toContain(orphanKey);
  });
});

forEachBackend(() => {
  it('two publishers racing on one version: exactly one wins, the other gets a clear error', async () => {
    const { FsStore } = await import('../../src/registry/fs-store.js');
    const fx = await setupRegistry(new FsStore(join(tempDir(), 'registry')));
    const a = makePolicyDir(tempDir(), { extra: seededBytes(200_000, 1) });
    const b = makePolicyDir(tempDir(), { extra: seededBytes(200_000, 2) });
    const results = await Promise.allSettled([publish(fx, a), publish(fx, b)]);
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    expect(lost[0]?.reason).toBeInstanceOf(UserError);
    expect((lost[0]?.reason as Error).message).toMatch(
      /already published with different content .*published by another publisher while this one ran/,
    );
    await verify(fx, 'policy/default@1.0.0');

    // Racing with the same bytes: both succeed, one created it.
    const c = makePolicyDir(tempDir(), { version: '2.0.0', extra: seededBytes(200_000, 3) });
    const same = await Promise.all([publish(fx, c), publish(fx, c)]);
    expect(same.map((r) => r.created).sort()).toEqual([false, true]);
    expect(same[0]?.manifestDigest).toBe(same[1]?.manifestDigest);
    await fx.store.close();
  });
}, ['fs']);
