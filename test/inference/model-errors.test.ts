import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { UserError } from '../../src/foundation/errors.js';
import { collect, generate } from '../../src/inference/generate.js';
import { LmSession } from '../../src/inference/model-session.js';
import { copyToTemp, DRAFT_DIR, removeTempDirs, TINY_HF_DIR } from './helpers.js';

afterAll(removeTempDirs);

function patchConfig(dir: string, patch: Record<string, unknown>, file = 'config.json'): void {
  const path = join(dir, file);
  const config = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  writeFileSync(path, JSON.stringify({ ...config, ...patch }, null, 2));
}

async function loadError(dir: string): Promise<UserError> {
  try {
    await LmSession.load(dir);
  } catch (err) {
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).exitCode).toBe(2);
    return err as UserError;
  }
  throw new Error(`loading ${dir} should have failed`);
}

describe('loading a model directory', () => {
  it('names the file, line and field of a bad config.json', async () => {
    const dir = copyToTemp(TINY_HF_DIR);
    patchConfig(dir, { num_key_value_heads: 3 });
    const err = await loadError(dir);
    expect(err.message).toMatch(
      /config\.json:\d+: num_key_value_heads: 3 does not divide num_attention_heads \(4\)/,
    );
    patchConfig(dir, { num_key_value_heads: 2, num_hidden_layers: 'two' });
    expect((await loadError(dir)).message).toMatch(/config\.json:\d+: num_hidden_layers: /);
  });

  it('refuses a graph that does not match config.json', async () => {
    const dir = copyToTemp(TINY_HF_DIR);
    patchConfig(dir, { num_hidden_layers: 3 });
    expect((await loadError(dir)).message).toMatch(
      /does not match config\.json.*missing input past_key_values\.2\.key/,
    );
    patchConfig(dir, { num_hidden_layers: 2, num_key_value_heads: 4 });
    expect((await loadError(dir)).message).toMatch(
      /past_key_values\.0\.key has 2 KV heads, config\.json says num_key_value_heads 4/,
    );
  });

  it('refuses a missing or corrupt graph and eos ids outside the vocabulary', async () => {
    const dir = copyToTemp(TINY_HF_DIR);
    patchConfig(dir, { eos_token_id: [0, 5000] }, 'generation_config.json');
    expect((await loadError(dir)).message).toMatch(/special token id 5000 is outside the vocabulary/);
    patchConfig(dir, { eos_token_id: 0 }, 'generation_config.json');
    writeFileSync(join(dir, 'model.onnx'), 'version https://git-lfs.github.com/spec/v1\n');
    expect((await loadError(dir)).message).toMatch(/model\.onnx: ONNX Runtime cannot load the model/);
    rmSync(join(dir, 'model.onnx'));
    expect((await loadError(dir)).message).toMatch(/no ONNX graph found/);
  });

  it('stops at the context length and refuses to run past it', async () => {
    const dir = copyToTemp(DRAFT_DIR);
    patchConfig(dir, { max_position_embeddings: 12 });
    const model = await LmSession.load(dir);
    const ids = [5, 6, 7, 8, 9, 10, 11, 12, 13, 14];
    const r = await collect(generate(model, ids, { maxTokens: 50, eosTokenIds: [] }));
    expect(r.tokens).toHaveLength(2);
    expect(r.done.finishReason).toBe('length');
    await expect(model.forward([...ids, 1, 2, 3])).rejects.toThrow(
      /context of 13 tokens exceeds the model's 12 positions/,
    );
    await expect(model.forward([5, 2000])).rejects.toThrow(/token id 2000 is outside the vocabulary/);
    await model.release();
  });
});
