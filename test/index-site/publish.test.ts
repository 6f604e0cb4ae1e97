/**
 * Index artifacts in the registry (issue #20 item 1, artifact side): an index directory built from
 * the committed corpus publishes like every artifact once its embedder model is in the registry
 * (meta pins the embedder's ref and manifest digest), is refused with E_INDEX_EMBEDDER (exit 2)
 * while it is not, and index.json problems (schema, missing chunking, a listed segment file that is
 * missing) are refused naming the file and field. The embedder digest this module computes equals
 * the index engine's.
 */
import { cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ExitCode, UserError } from '../../src/foundation/errors.js';
import { readArtifactYaml } from '../../src/config/artifact-yaml.js';
import { listSourceFiles } from '../../src/artifact/source.js';
import { validateIndexLocal, filesDigest } from '../../src/artifact/validate/index-artifact.js';
import { verifyArtifact } from '../../src/artifact/verify.js';
import { resolveRef } from '../../src/artifact/manifest-store.js';
import { parseRef } from '../../src/artifact/ref.js';
import { embedderDirFiles, embedderFilesDigest } from '../../src/index/index.js';
import { FsStore } from '../../src/registry/fs-store.js';
import { memoryIo } from '../../src/foundation/output.js';
import { publish, setupRegistry } from '../artifact/fixtures.js';
import { EMBEDDER, embedderModelDir, indexDir, tempDir } from './fixtures.js';

const stores: FsStore[] = [];
afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close()));
});

async function registry() {
  const store = new FsStore(join(tempDir(), 'registry'));
  stores.push(store);
  return setupRegistry(store);
}

function local(dir: string) {
  return () => validateIndexLocal({ dir, files: listSourceFiles(dir).files, yaml: readArtifactYaml(dir) });
}

describe('index artifacts', () => {
  it("the embedder digest computed without the engine equals the engine's", () => {
    const files = embedderDirFiles(EMBEDDER);
    expect(filesDigest(files)).toBe(embedderFilesDigest(files));
  });

  it('refuses an index whose embedder is not in the registry, then publishes it once it is', async () => {
    const fx = await registry();
    const parent = tempDir();
    const dir = await indexDir(parent);
    const err = await publish(fx, dir).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).code).toBe('E_INDEX_EMBEDDER');
    expect((err as UserError).exitCode).toBe(ExitCode.Usage);
    expect((err as Error).message).toMatch(
      /index\.json: embedder: kiosk-lsa-embedder \(sha256:[0-9a-f]{64}\) is not a model in the registry/,
    );

    const model = await publish(fx, embedderModelDir(parent));
    const modelManifest = (await resolveRef(fx.store, parseRef(model.ref), fx.trust)).manifest;
    expect(modelManifest.meta).toMatchObject({ role: 'embedder', dim: 64 });
    const index = await publish(fx, dir);
    expect(index.ref).toBe('index/kb@1.0.0');
    const manifest = (await resolveRef(fx.store, parseRef(index.ref), fx.trust)).manifest;
    expect(manifest.meta).toMatchObject({
      format: 'edgectl-index/1',
      embedder: 'model/kiosk-embedder@1.0.0',
      embedderDigest: model.manifestDigest,
      dim: 64,
      segments: 1,
    });
    expect(manifest.meta.newestDocumentTime).toMatch(/^\d{4}-/);
    // Verified like every artifact (signature, pinned chunks).
    const v = await verifyArtifact({
      store: fx.store,
      ref: 'index/kb@1.0.0',
      trust: fx.trust,
      io: memoryIo(),
    });
    expect(v.manifestDigest).toBe(index.manifestDigest);
    expect(v.files).toBe(manifest.files.length);
  });

  it('refuses a bad index.json and a listed segment file that is missing, naming file and field', async () => {
    const dir = await indexDir(tempDir());
    const json = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as Record<string, unknown>;
    const segFile = (json.segments as { files: { path: string }[] }[])[0]!.files[0]!.path;
    rmSync(join(dir, segFile));
    expect(local(dir)).toThrow(
      new RegExp(`index\\.json: segments: segment file ${segFile.replace(/[.]/g, '\\.')}`),
    );
    writeFileSync(join(dir, 'index.json'), JSON.stringify({ ...json, chunking: {} }));
    expect(local(dir)).toThrow(/index\.json: chunking: the chunking parameters are missing/);
    writeFileSync(join(dir, 'index.json'), JSON.stringify({ ...json, format: 'other/1' }));
    expect(local(dir)).toThrow(/index\.json: format: expected "edgectl-index\/1"/);
  });

  it('lint refuses an index whose embedder (the local hint index build leaves) changed since', async () => {
    const dir = await indexDir(tempDir());
    const changed = join(tempDir(), 'embedder');
    cpSync(EMBEDDER, changed, { recursive: true });
    writeFileSync(join(dir, '.edgectl-embedder'), `${changed}\n`);
    expect(local(dir)()).toMatchObject({ format: 'edgectl-index/1' });
    const config = readFileSync(join(EMBEDDER, 'config.json'), 'utf8');
    writeFileSync(join(changed, 'config.json'), config.replace('"pooling"', '"extra": 1, "pooling"'));
    expect(local(dir)).toThrow(
      /index\.json: embedder\.digest: does not match the embedder that built this index/,
    );
  });
});
