/**
 * Sites sync indexes (issue #20 item 3), on the fs and S3 (s3rver) registries: an index assigned
 * in `assignments.indexes` is installed with the generation in `indexes/<name>`, with the embedder
 * it pins in `embedders/<name>`, and opens for queries there; an update moves only its new segment;
 * a corrupted or truncated segment of a new index version is refused at sync (exit 4) while the
 * previous generation (and its index) keeps serving; a segment file changed on disk is found by
 * the drift check and repaired.
 */
import { cpSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { parseManifest } from '../../src/artifact/manifest.js';
import { ExitCode, isEdgectlError } from '../../src/foundation/errors.js';
import { updateIndex } from '../../src/index/index.js';
import { decodeEnvelope, peekPayload } from '../../src/registry/envelope.js';
import { artifactKey, blobKey } from '../../src/registry/layout.js';
import { SiteIndexes } from '../../src/runtime/engine/site-indexes.js';
import { describeStatus } from '../../src/site/service.js';
import { siteStatus } from '../../src/site/status.js';
import { overwrite } from '../artifact/fixtures.js';
import { TEST_CONTEXT } from '../runtime/serve/helpers.js';
import { forEachBackend } from '../helpers/stores.js';
import { publishBasics, siteWorld, type SiteWorld } from '../site/fixtures.js';
import { CORPUS, EMBEDDER, embedderModelDir, indexDir, tempDir } from './fixtures.js';

async function currentDir(w: SiteWorld): Promise<string> {
  return join(w.dataDir, readlinkSync(join(w.dataDir, 'current')));
}

async function queryKb(dir: string): Promise<string[]> {
  const ix = await SiteIndexes.open(dir, TEST_CONTEXT);
  try {
    const r = await ix.get('kb')!.reader.query('the receipt printer is jammed', { k: 3 });
    return r.passages.map((p) => p.id);
  } finally {
    await ix.close();
  }
}

/** A site on index/kb@1.0.0, plus a source dir for kb@1.1.0 (one document added). */
async function siteWithIndex(w: SiteWorld) {
  const refs = await publishBasics(w, 32 * 1024);
  const src = tempDir();
  await w.publish(embedderModelDir(src));
  const v1 = await indexDir(src, { out: 'v1' });
  await w.publish(v1);
  await w.assign({ ...refs, indexes: ['index/kb@1.0.0'] });
  const first = await w.sync();
  // kb@1.1.0: the committed corpus plus one document, as `index update` writes it.
  const corpus = join(src, 'corpus');
  cpSync(CORPUS, corpus, { recursive: true });
  writeFileSync(
    join(corpus, 'new.md'),
    '# Self checkout\n\nRestart the self checkout lane from the back panel.\n',
  );
  const v2 = join(src, 'v2');
  await updateIndex(v1, corpus, { embedderDir: EMBEDDER, outDir: v2 });
  writeFileSync(join(v2, 'artifact.yaml'), 'kind: index\nname: kb\nversion: "1.1.0"\n');
  return { refs, first, v2 };
}

async function newSegmentBlob(w: SiteWorld): Promise<{ blob: string; bytes: Buffer }> {
  const key = artifactKey('index', 'kb', '1.1.0');
  const m2 = parseManifest(peekPayload(decodeEnvelope((await w.store.get(key))!.body, key)), key);
  const old = artifactKey('index', 'kb', '1.0.0');
  const m1 = parseManifest(peekPayload(decodeEnvelope((await w.store.get(old))!.body, old)), old);
  const before = new Set(m1.files.flatMap((f) => f.chunks.map((c) => c.blob)));
  const file = m2.files.find((f) => f.path.includes('seg-000002') && f.path.endsWith('passages.jsonl'))!;
  const blob = file.chunks.map((c) => c.blob).find((b) => !before.has(b))!;
  return { blob, bytes: Buffer.from((await w.store.get(blobKey(blob)))!.body) };
}

async function refused(w: SiteWorld, code: RegExp): Promise<void> {
  const err = await w.sync().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isEdgectlError(err) && err.exitCode).toBe(ExitCode.Verification);
  expect(isEdgectlError(err) && err.code).toMatch(code);
}

forEachBackend((mk) => {
  it('installs an assigned index with its embedder; an update moves only the new segment', async () => {
    const w = await siteWorld(await mk());
    const { refs, first, v2 } = await siteWithIndex(w);
    expect(first.changed).toBe(true);
    const gen = await currentDir(w);
    expect(JSON.parse(readFileSync(join(gen, 'indexes/kb/index.json'), 'utf8')).format).toBe(
      'edgectl-index/1',
    );
    expect(readFileSync(join(gen, 'embedders/kb/model.onnx')).length).toBeGreaterThan(1000);
    const info = JSON.parse(readFileSync(join(gen, 'generation.json'), 'utf8')) as {
      artifacts: { slot: string; dir: string }[];
    };
    expect(info.artifacts.map((a) => `${a.slot}:${a.dir}`)).toEqual(
      expect.arrayContaining(['index:indexes/kb', 'embedder:embedders/kb']),
    );
    expect((await queryKb(gen))[0]).toMatch(/printer/);
    // Freshness in `site status`: the index, its ref and its age.
    const status = await siteStatus({ site: w.site, dataDir: w.dataDir });
    expect(status.indexes).toEqual([
      expect.objectContaining({ name: 'kb', ref: 'index/kb@1.0.0', documents: expect.any(Number) }),
    ]);
    expect(status.indexes[0]?.ageSeconds).toBeGreaterThanOrEqual(0);
    expect(describeStatus(status).join('\n')).toMatch(/index age kb: index\/kb@1\.0\.0, \d+ passage\(s\)/);

    await w.publish(v2);
    await w.assign({ ...refs, indexes: ['index/kb@1.1.0'] });
    const second = await w.sync();
    expect(second.changed).toBe(true);
    // Only the new segment and the changed small files moved, not the old segment's vectors.
    const old = readFileSync(join(gen, 'indexes/kb/segments/seg-000001/vectors.f32')).length;
    expect(second.bytesFetched).toBeLessThan(old);
  });

  it('a corrupted or truncated segment is refused at sync (exit 4); the previous index keeps serving', async () => {
    const w = await siteWorld(await mk());
    const { refs, v2 } = await siteWithIndex(w);
    const servedBefore = readlinkSync(join(w.dataDir, 'current'));
    await w.publish(v2);
    const { blob, bytes } = await newSegmentBlob(w);
    const flipped = Buffer.from(bytes);
    flipped[flipped.length - 5] = (flipped[flipped.length - 5] ?? 0) ^ 1;
    await overwrite(w.store, blobKey(blob), flipped);
    await w.assign({ ...refs, indexes: ['index/kb@1.1.0'] });
    await refused(w, /E_CHUNK_HASH|E_FILE_HASH/);
    expect(readlinkSync(join(w.dataDir, 'current'))).toBe(servedBefore);
    expect((await queryKb(await currentDir(w)))[0]).toMatch(/printer/);

    await overwrite(w.store, blobKey(blob), bytes.subarray(0, bytes.length - 7));
    await refused(w, /E_BLOB_SIZE|E_CHUNK_HASH/);
    expect(readlinkSync(join(w.dataDir, 'current'))).toBe(servedBefore);

    // Restored: the new version installs.
    await overwrite(w.store, blobKey(blob), bytes);
    expect((await w.sync()).changed).toBe(true);
  });

  it('a segment file changed on disk is found by the drift check and repaired', async () => {
    const w = await siteWorld(await mk());
    await siteWithIndex(w);
    const gen = await currentDir(w);
    const file = join(gen, 'indexes/kb/segments/seg-000001/passages.jsonl');
    const good = readFileSync(file);
    writeFileSync(file, Buffer.concat([good.subarray(0, 100), Buffer.from('tampered')]));
    const r = await w.sync({ verifyAll: true });
    expect(r.drift?.repaired).toContain('indexes/kb/segments/seg-000001/passages.jsonl');
    expect(readFileSync(file).equals(good)).toBe(true);
  });
});
