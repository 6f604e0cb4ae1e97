/**
 * PEFT adapters published over prepared exports (in-process publish on a directory registry): an
 * adapter fits a prepared Gemma 3 export, whose config.json wraps the text model in `text_config`
 * (the adapter validator read `num_hidden_layers` at the top level only and refused it), and an
 * adapter for a module or a rank the prepared model does not take is refused at publish (exit 2).
 */
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { EdgectlError } from '../../../src/foundation/errors.js';
import { prepareLoraModel } from '../../../src/artifact/model-prepare/prepare.js';
import { FsStore } from '../../../src/registry/fs-store.js';
import { publish, setupRegistry, tempDir } from '../../artifact/fixtures.js';
import { removeTempDirs } from '../helpers.js';
import { FAMILIES_DIR, writePeftAdapter } from './helpers.js';

afterAll(removeTempDirs);

function adapter(
  parent: string,
  name: string,
  base: string,
  modules: Record<string, [number, number]>,
  r: number,
) {
  const dir = join(parent, name);
  writePeftAdapter(dir, { layers: 2, modules, r, alpha: 2 * r });
  writeFileSync(join(dir, 'artifact.yaml'), `kind: adapter\nname: ${name}\nversion: 1.0.0\nbase: ${base}\n`);
  return dir;
}

async function refusal(p: Promise<unknown>): Promise<EdgectlError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(EdgectlError);
    return err as EdgectlError;
  }
  throw new Error('expected the publish to be refused');
}

describe('adapters published over prepared exports', () => {
  it('fit a text_config (Gemma 3) export; other modules and larger ranks are refused', async () => {
    const fx = await setupRegistry(new FsStore(join(tempDir(), 'registry')));
    const parent = tempDir();
    const model = join(parent, 'gemma3-lora');
    prepareLoraModel({
      dir: join(FAMILIES_DIR, 'gemma3'),
      out: model,
      targets: ['q_proj', 'v_proj'],
      rankMax: 4,
      role: 'draft',
    });
    expect((await publish(fx, model)).ref).toBe('model/gemma3@1.1.0');

    const q: [number, number] = [64, 64];
    const kv: [number, number] = [64, 16];
    const base = 'model/gemma3@1.1.0';
    const ok = await publish(fx, adapter(parent, 'fits', base, { q_proj: q, v_proj: kv }, 4));
    expect(ok.ref).toBe('adapter/fits@1.0.0');

    const module = await refusal(publish(fx, adapter(parent, 'module', base, { k_proj: kv }, 2)));
    expect(module.exitCode).toBe(2);
    expect(module.message).toMatch(
      /k_proj not supported by model\/gemma3@1\.1\.0 \(it accepts q_proj, v_proj\)/,
    );
    const rank = await refusal(publish(fx, adapter(parent, 'rank', base, { q_proj: q }, 8)));
    expect(rank.exitCode).toBe(2);
    expect(rank.message).toMatch(/rank 8 exceeds the base model's max_rank 4/);
  });
});
