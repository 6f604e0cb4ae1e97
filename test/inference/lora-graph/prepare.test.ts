/**
 * `model prepare` on the onnx-community-shaped family fixtures: the prepared graphs run the base
 * model bit for bit without an adapter (every variant), and a PEFT adapter fed per request through
 * the runtime's LoRA slots gives the logits of the original graph with the adapter merged into its
 * weights, W + (alpha / r)·(B·A)ᵀ (the reference is the fp32 export with those initializers
 * rewritten), on the prompt pass and on a cached decode step. The Optimum-style merged decoder
 * (tiny-hf: the projections live in both branches of an `If`) is prepared the same way.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { prepareLoraModel } from '../../../src/artifact/model-prepare/prepare.js';
import { loadLoraAdapter } from '../../../src/inference/lora.js';
import { LmSession } from '../../../src/inference/model-session.js';
import { copyToTemp, maxAbsDiff, removeTempDirs, TINY_HF_DIR } from '../helpers.js';
import { FAMILIES_DIR, mergedModel, writePeftAdapter } from './helpers.js';

const tmp = mkdtempSync(join(tmpdir(), 'edgectl-prepare-'));
afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
  removeTempDirs();
});

const PROMPT = [12, 250, 33, 7, 901, 64, 5];
const NEXT = 42;

interface Pass {
  prompt: Float32Array;
  step: Float32Array;
}

async function run(session: LmSession, lora?: Parameters<LmSession['forward']>[2]): Promise<Pass> {
  const first = await session.forward(PROMPT, undefined, lora);
  const prompt = Float32Array.from(first.logits.last());
  const second = await session.forward([NEXT], first.cache, lora);
  return { prompt, step: Float32Array.from(second.logits.last()) };
}

const VARIANTS = ['onnx/model.onnx', 'onnx/model_fp16.onnx', 'onnx/model_q4.onnx'];
const CASES = [
  ...['smollm2', 'qwen2', 'phi3', 'gemma3'].map((f) => ({
    name: f,
    src: join(FAMILIES_DIR, f),
    files: VARIANTS,
  })),
  { name: 'tiny-hf (merged decoder)', src: TINY_HF_DIR, files: ['model.onnx'] },
];

describe.each(CASES)('model prepare: $name', ({ name, src, files }) => {
  const family = name.split(' ')[0] as string;
  const out = join(tmp, family);
  const prepared = prepareLoraModel({ dir: src, out, targets: ['q_proj', 'v_proj'], rankMax: 8 });

  it('rewrites every variant and records the LoRA settings', () => {
    expect(prepared.graphs.map((g) => g.file).sort()).toEqual(files);
    // A merged decoder has each projection twice (with and without past), one LoRA input pair.
    const copies = files.length === 1 ? 2 : 1;
    for (const g of prepared.graphs) expect(g.projections).toBe(2 * prepared.layers * copies);
    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')) as { lora: unknown };
    expect(config.lora).toEqual({ target_modules: ['q_proj', 'v_proj'], max_rank: 8 });
    expect(readFileSync(join(out, 'artifact.yaml'), 'utf8')).toMatch(/^version: 1\.1\.0$/m);
  });

  it.each(files)('without an adapter %s computes exactly the original', async (file) => {
    const original = await LmSession.load(src, { modelFile: file });
    const session = await LmSession.load(out, { modelFile: file });
    expect(session.inputs.lora?.modules).toEqual(['q_proj', 'v_proj']);
    const [a, b] = [await run(original), await run(session)];
    expect(Array.from(b.prompt)).toEqual(Array.from(a.prompt));
    expect(Array.from(b.step)).toEqual(Array.from(a.step));
  });

  it('serves a PEFT adapter per request as the merged weights would', async () => {
    const session = await LmSession.load(out, { modelFile: files[0] });
    const lora = session.inputs.lora;
    if (!lora) throw new Error('no LoRA slots');
    const size = (m: string) => {
      const s = lora.slots.get(`0.${m}`);
      if (!s) throw new Error(`no slot 0.${m}`);
      return [s.inFeatures, s.outFeatures] as [number, number];
    };
    const adapterDir = join(tmp, `${family}-adapter`);
    const weights = writePeftAdapter(adapterDir, {
      layers: prepared.layers,
      modules: { q_proj: size('q_proj'), v_proj: size('v_proj') },
      r: 4,
      alpha: 8,
    });
    const adapter = loadLoraAdapter(adapterDir, lora);
    expect(adapter.targets).toHaveLength(2 * prepared.layers);

    const mergedDir = copyToTemp(src, 'edgectl-merged-');
    writeFileSync(join(mergedDir, files[0] as string), mergedModel(join(src, files[0] as string), weights));
    const merged = await run(await LmSession.load(mergedDir, { modelFile: files[0] }));
    const base = await run(session);
    const served = await run(session, adapter.feeds);
    // The adapter matters (the comparison below could not pass by accident)...
    expect(maxAbsDiff(served.prompt, base.prompt)).toBeGreaterThan(0.05);
    // ...and equals the merged model up to float32 summation order.
    expect(maxAbsDiff(served.prompt, merged.prompt)).toBeLessThan(2e-5);
    expect(maxAbsDiff(served.step, merged.step)).toBeLessThan(2e-5);
    // The next request without the adapter is the base model again.
    expect(Array.from((await run(session)).prompt)).toEqual(Array.from(base.prompt));
  });
});
