/**
 * The committed exports shaped like real families (tools/fixtures/families.py: SmolLM2/Llama, Qwen2,
 * Phi-3, Gemma 3 text in the onnx-community layout, fp32/fp16/q4): every variant that passes model
 * validation loads and runs in the runtime (same resolution, same session options), float16 caches
 * and logits are converted at the boundary, num_logits_to_keep is fed, Gemma 3's text_config is
 * read and its positions start at 1, and each family's chat template keeps its control tokens.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readArtifactYaml, type ArtifactYamlFile } from '../../src/config/artifact-yaml.js';
import { listSourceFiles } from '../../src/artifact/source.js';
import { validateModel } from '../../src/artifact/validate/model.js';
import { publishedModelFiles } from '../../src/artifact/validate/model-graph.js';
import { ChatTemplate } from '../../src/inference/chat-template.js';
import { LmSession } from '../../src/inference/model-session.js';
import { TextTokenizer } from '../../src/inference/tokenizer.js';

const ROOT = join(import.meta.dirname, '../fixtures/families');
const FAMILIES = readdirSync(ROOT).sort();
const VARIANTS = ['fp32', 'fp16', 'q4'];
const sessions: LmSession[] = [];
afterAll(async () => Promise.all(sessions.map((s) => s.release())));

function selecting(dir: string, dtype: string): ArtifactYamlFile {
  const base = readArtifactYaml(dir);
  return { ...base, value: { ...base.value, dtype, sync: 'selected' } };
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] as number) - (b[i] as number)));
  return m;
}

describe.each(FAMILIES)('family %s', (family) => {
  const dir = join(ROOT, family);

  it('validates and then loads and runs every variant (lint implies load)', async () => {
    expect(FAMILIES).toEqual(['gemma3', 'phi3', 'qwen2', 'smollm2']);
    const rows: Float32Array[] = [];
    for (const dtype of VARIANTS) {
      const yaml = selecting(dir, dtype);
      const files = publishedModelFiles(dir, yaml, listSourceFiles(dir).files);
      const meta = await validateModel({ dir, yaml, files });
      const lm = await LmSession.load(dir, { modelFile: meta.modelFile as string });
      sessions.push(lm);
      expect(lm.inputs.io.cacheType).toBe(dtype === 'fp16' ? 'float16' : 'float32');
      const prompt = [5, 17, 300, 2];
      const a = await lm.forward(prompt);
      const b = await lm.forward([9], a.cache);
      expect(b.cache.length).toBe(5);
      const whole = await lm.forward([...prompt, 9]);
      expect(maxDiff(whole.logits.last(), b.logits.last())).toBeLessThan(dtype === 'fp16' ? 2e-2 : 1e-3);
      const [batched] = await lm.forwardBatch([{ ids: [9], cache: a.cache }, { ids: [1, 2] }]);
      expect(maxDiff(batched?.logits.last() as Float32Array, b.logits.last())).toBeLessThan(
        dtype === 'fp16' ? 2e-2 : 1e-3,
      );
      rows.push(b.logits.last().slice());
    }
    const [fp32, fp16, q4] = rows as [Float32Array, Float32Array, Float32Array];
    expect(maxDiff(fp32, fp16)).toBeLessThan(0.05);
    expect(maxDiff(fp32, q4)).toBeGreaterThan(0); // really quantized
    expect(maxDiff(fp32, q4)).toBeLessThan(0.5);
  });

  it('reads the family config (text_config, eos ids, position offset, logits to keep)', async () => {
    const lm = await LmSession.load(dir);
    sessions.push(lm);
    expect(lm.modelFile).toBe('onnx/model.onnx');
    expect(lm.config.eosTokenIds.length).toBeGreaterThanOrEqual(family === 'smollm2' ? 1 : 2);
    expect(lm.inputs.io.positionOffset).toBe(family === 'gemma3' ? 1 : 0);
    expect(lm.inputs.io.logitsToKeep).toBe(family === 'qwen2' ? 'num_logits_to_keep' : undefined);
    if (family === 'gemma3') expect(lm.config.modelType).toBe('gemma3_text');
  });

  it("renders its own chat template with the template's control tokens only", () => {
    const tokenizer = TextTokenizer.load(dir);
    const t = ChatTemplate.load(dir, tokenizer);
    expect(t.builtIn).toBe(false);
    const { text, ids } = t.encode([
      { role: 'system', content: 'be brief' },
      { role: 'user', content: 'hi <|im_start|><end_of_turn><|end|>' },
    ]);
    expect(tokenizer.decode(ids, { skipSpecialTokens: false })).toBe(text);
    const controls = ids.filter((id) => id >= 1024);
    const inserted = text.split(
      /(<\|im_start\|>|<\|im_end\|>|<\|user\|>|<\|assistant\|>|<\|system\|>|<\|end\|>|<bos>|<start_of_turn>|<end_of_turn>)/,
    );
    // The user's three spelled tokens are text: fewer control tokens than special strings in the text.
    expect(controls.length).toBeGreaterThan(0);
    expect(controls.length).toBeLessThan(inserted.filter((_, i) => i % 2 === 1).length);
  });
});
