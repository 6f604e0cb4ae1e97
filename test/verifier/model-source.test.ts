import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { memoryIo } from '../../src/foundation/output.js';
import type { ProjectConfig } from '../../src/config/project.js';
import { FsStore } from '../../src/registry/fs-store.js';
import { resolveModelSource } from '../../src/verifier/server/model-source.js';
import { publish, setupRegistry, tempDir, type RegistryFixture } from '../artifact/fixtures.js';
import { VERIFIER_DIR } from './helpers.js';
import { embedderModelDir } from '../index-site/fixtures.js';

describe('resolveModelSource', () => {
  let fx: RegistryFixture;
  let cfg: ProjectConfig;
  const savedCache = process.env.XDG_CACHE_HOME;

  beforeAll(async () => {
    process.env.XDG_CACHE_HOME = tempDir('edgectl-cache-');
    const registryDir = join(tempDir(), 'registry');
    fx = await setupRegistry(new FsStore(registryDir));
    await publish(fx, VERIFIER_DIR);
    await publish(fx, embedderModelDir(tempDir('edgectl-embedder-')));
    const root = tempDir('edgectl-project-');
    cfg = {
      root,
      file: undefined,
      registry: `file:${registryDir}`,
      registrySource: 'flag',
      trustPath: fx.trustPath,
      sitesDir: join(root, 'sites'),
      keys: {},
      singleWriter: false,
    };
  });
  afterAll(() => {
    if (savedCache === undefined) delete process.env.XDG_CACHE_HOME;
    else process.env.XDG_CACHE_HOME = savedCache;
  });

  it('uses a directory as is', async () => {
    expect(await resolveModelSource(VERIFIER_DIR, cfg, memoryIo())).toEqual({
      dir: VERIFIER_DIR,
      ref: undefined,
    });
  });

  it('pulls a published ref, verified, into the project', async () => {
    const src = await resolveModelSource('model/verifier@1.0.0', cfg, memoryIo());
    expect(src.ref).toBe('model/verifier@1.0.0');
    expect(src.dir).toBe(join(cfg.root, '.edgectl/artifacts/model/verifier/1.0.0'));
    const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');
    for (const f of ['model.onnx', 'config.json', 'tokenizer.json']) {
      expect(sha(join(src.dir, f))).toBe(sha(join(VERIFIER_DIR, f)));
    }
  });

  it('explains what was expected for bad values (exit 2)', async () => {
    const file = join(tempDir(), 'model.onnx');
    writeFileSync(file, 'x');
    await expect(resolveModelSource(file, cfg, memoryIo())).rejects.toMatchObject({
      exitCode: 2,
      code: 'E_MODEL',
    });
    await expect(resolveModelSource('no/such/dir', cfg, memoryIo())).rejects.toMatchObject({
      code: 'E_MODEL',
    });
    await expect(resolveModelSource('policy/default@1.0.0', cfg, memoryIo())).rejects.toMatchObject({
      code: 'E_REF',
    });
    await expect(resolveModelSource('model/absent@1.0.0', cfg, memoryIo())).rejects.toMatchObject({
      exitCode: 3,
    });
  });

  it('refuses an embedder, by directory or by ref, naming it (exit 2, nothing pulled)', async () => {
    const dir = embedderModelDir(tempDir('edgectl-embedder-dir-'));
    await expect(resolveModelSource(dir, cfg, memoryIo())).rejects.toMatchObject({
      exitCode: 2,
      code: 'E_MODEL_ROLE',
      message: `--model ${dir} is an embedder (a sentence encoder), not a language model`,
    });
    await expect(
      resolveModelSource('model/kiosk-embedder@1.0.0', cfg, memoryIo(), 'model', '--verifier'),
    ).rejects.toMatchObject({
      exitCode: 2,
      code: 'E_MODEL_ROLE',
      message:
        '--verifier model/kiosk-embedder@1.0.0 is an embedder (a sentence encoder), not a language model',
    });
    expect(existsSync(join(cfg.root, '.edgectl/artifacts/model/kiosk-embedder'))).toBe(false);
  });
});
