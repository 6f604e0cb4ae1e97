/**
 * Model layouts and variants: which graph file runs (artifact.yaml file:/dtype:, --model-file,
 * the default order), what a `sync: selected` publish ships, and that validation loads exactly
 * what a site will (external data missing or truncated, a variant that does not exist).
 */
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ExitCode, UserError } from '../../src/foundation/errors.js';
import { readArtifactYaml } from '../../src/config/artifact-yaml.js';
import { listSourceFiles } from '../../src/artifact/source.js';
import { validateModel } from '../../src/artifact/validate/model.js';
import { publishedModelFiles } from '../../src/artifact/validate/model-graph.js';
import { LmSession } from '../../src/inference/model-session.js';
import { defaultModelFiles, externalDataOf, resolveModelFile } from '../../src/inference/model-files.js';
import { readManifest } from '../../src/artifact/manifest-store.js';
import { FsStore } from '../../src/registry/fs-store.js';
import { makeModelDir, publish, setupRegistry, tempDir } from './fixtures.js';
import { tinyOnnx, tinyOnnxExternalData } from './onnx-fixture.js';

const sessions: LmSession[] = [];
afterEach(async () => {
  await Promise.all(sessions.splice(0).map((s) => s.release()));
});

/** An onnx-community layout: onnx/model.onnx, onnx/model_q4.onnx (+ external data), onnx/model_fp16.onnx. */
function communityDir(yaml = ''): string {
  const dir = makeModelDir(tempDir(), { layers: 2 });
  mkdirSync(join(dir, 'onnx'));
  renameSync(join(dir, 'model.onnx'), join(dir, 'onnx/model.onnx'));
  writeFileSync(join(dir, 'onnx/model_q4.onnx'), tinyOnnx({ layers: 2, externalData: 'model_q4.onnx_data' }));
  writeFileSync(join(dir, 'onnx/model_q4.onnx_data'), tinyOnnxExternalData());
  writeFileSync(join(dir, 'onnx/model_fp16.onnx'), tinyOnnx({ layers: 2 }));
  writeFileSync(join(dir, 'artifact.yaml'), `kind: model\nname: m\nversion: 1.0.0\nrole: draft\n${yaml}`);
  return dir;
}

function ctx(dir: string) {
  const yaml = readArtifactYaml(dir);
  return { dir, yaml, files: publishedModelFiles(dir, yaml, listSourceFiles(dir).files) };
}

async function refused(p: Promise<unknown>, pattern: RegExp): Promise<UserError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(UserError);
  expect((err as UserError).exitCode).toBe(ExitCode.Usage);
  expect((err as Error).message).toMatch(pattern);
  return err as UserError;
}

describe('graph file resolution', () => {
  it('follows the documented default order, dtype, file and names what is missing', () => {
    expect(defaultModelFiles().slice(0, 4)).toEqual([
      'model.onnx',
      'decoder_model_merged.onnx',
      'onnx/model.onnx',
      'onnx/decoder_model_merged.onnx',
    ]);
    const dir = communityDir();
    expect(resolveModelFile(dir)).toBe('onnx/model.onnx');
    expect(resolveModelFile(dir, { dtype: 'q4' })).toBe('onnx/model_q4.onnx');
    expect(resolveModelFile(dir, { dtype: 'float16' })).toBe('onnx/model_fp16.onnx');
    expect(resolveModelFile(dir, { file: 'onnx/model_fp16.onnx' })).toBe('onnx/model_fp16.onnx');
    expect(() => resolveModelFile(dir, { dtype: 'q4f16' })).toThrow(
      /no q4f16 variant .*it has onnx\/model\.onnx, onnx\/model_fp16\.onnx, onnx\/model_q4\.onnx/,
    );
    expect(() => resolveModelFile(dir, { dtype: 'int3' })).toThrow(/unknown model variant "int3"/);
    rmSync(join(dir, 'onnx/model.onnx'));
    expect(resolveModelFile(dir)).toBe('onnx/model_fp16.onnx');
  });

  it('pairs a graph with its own external data only', () => {
    const paths = [
      'onnx/model.onnx_data',
      'onnx/model_q4.onnx_data',
      'onnx/model.onnx_data_1',
      'model.onnx_data',
    ];
    expect(externalDataOf('onnx/model.onnx', paths)).toEqual([
      'onnx/model.onnx_data',
      'onnx/model.onnx_data_1',
    ]);
    expect(externalDataOf('onnx/model_q4.onnx', paths)).toEqual(['onnx/model_q4.onnx_data']);
  });

  it('loads the graph artifact.yaml chooses, and --model-file over it', async () => {
    const dir = communityDir('dtype: q4\nsync: selected\n');
    const lm = await LmSession.load(dir);
    sessions.push(lm);
    expect(lm.modelFile).toBe('onnx/model_q4.onnx');
    const explicit = await LmSession.load(dir, { modelFile: 'onnx/model_fp16.onnx' });
    sessions.push(explicit);
    expect(explicit.modelFile).toBe('onnx/model_fp16.onnx');
    await expect(LmSession.load(dir, { modelFile: 'onnx/nope.onnx' })).rejects.toThrow(
      /--model-file onnx\/nope\.onnx does not exist/,
    );
  });
});

describe('validating layouts and variants (what lints is what a site loads)', () => {
  it('accepts the onnx-community layout and records the graph it runs', async () => {
    const meta = await validateModel(ctx(communityDir()));
    expect(meta).toMatchObject({ modelFile: 'onnx/model.onnx', cacheType: 'float32', numHiddenLayers: 2 });
  });

  it('ships only the chosen graph and its external data with sync: selected', async () => {
    const dir = communityDir('dtype: q4\nsync: selected\n');
    const c = ctx(dir);
    expect(c.files.map((f) => f.path).filter((p) => p.startsWith('onnx/'))).toEqual([
      'onnx/model_q4.onnx',
      'onnx/model_q4.onnx_data',
    ]);
    expect(await validateModel(c)).toMatchObject({ modelFile: 'onnx/model_q4.onnx' });
  });

  it('refuses a choice a site would not follow (sync: all) and a variant that does not exist', async () => {
    await refused(
      validateModel(ctx(communityDir('dtype: q4\n'))),
      /artifact\.yaml: dtype: chooses onnx\/model_q4\.onnx, but a site .* runs onnx\/model\.onnx/,
    );
    await refused(
      validateModel(ctx(communityDir('file: onnx/model_q4.onnx\n'))),
      /artifact\.yaml: file: chooses onnx\/model_q4\.onnx/,
    );
    expect(() => ctx(communityDir('dtype: q4f16\nsync: selected\n'))).toThrow(
      /artifact\.yaml: dtype: .*no q4f16 variant/,
    );
    expect(() => ctx(communityDir('sync: selected\n'))).toThrow(/sync: selected needs a graph choice/);
  });

  it('refuses a variant whose external data is missing or truncated', async () => {
    const missing = communityDir('dtype: q4\nsync: selected\n');
    rmSync(join(missing, 'onnx/model_q4.onnx_data'));
    await refused(validateModel(ctx(missing)), /onnx\/model_q4\.onnx: ONNX Runtime cannot load the model/);
    const truncated = communityDir('dtype: q4\nsync: selected\n');
    writeFileSync(join(truncated, 'onnx/model_q4.onnx_data'), tinyOnnxExternalData().subarray(0, 12));
    await refused(validateModel(ctx(truncated)), /onnx\/model_q4\.onnx: ONNX Runtime cannot load the model/);
  });

  it('refuses a config whose heads do not match the graph', async () => {
    const dir = makeModelDir(tempDir());
    writeFileSync(
      join(dir, 'config.json'),
      JSON.stringify({ num_hidden_layers: 2, vocab_size: 8, hidden_size: 12, num_attention_heads: 3 }),
    );
    await refused(
      validateModel(ctx(dir)),
      /model\.onnx: input past_key_values\.0\.key has 2 KV heads, config\.json says num_key_value_heads 3/,
    );
  });
});

describe('publishing a chosen variant', () => {
  it('publishes only the chosen graph and its external data, and records it in meta', async () => {
    const store = new FsStore(join(tempDir(), 'registry'));
    try {
      const fx = await setupRegistry(store);
      const res = await publish(fx, communityDir('dtype: q4\nsync: selected\n'));
      expect(res.ref).toBe('model/m@1.0.0');
      const loaded = await readManifest(store, 'model', 'm', '1.0.0', fx.trust);
      const paths = loaded?.manifest.files.map((f) => f.path) ?? [];
      expect(paths.filter((p) => p.endsWith('.onnx') || p.includes('.onnx_'))).toEqual([
        'onnx/model_q4.onnx',
        'onnx/model_q4.onnx_data',
      ]);
      expect(loaded?.manifest.meta).toMatchObject({ modelFile: 'onnx/model_q4.onnx', cacheType: 'float32' });
    } finally {
      await store.close();
    }
  });
});
