/**
 * The q4 variant of the fixture draft (`artifacts/models/draft/model_q4.onnx`, tools/fixtures/q4.py):
 * chosen by `dtype: q4`, it validates (what lint runs), syncs alone when the artifact says
 * `sync: selected`, loads with its LoRA inputs, takes the adapters, and drafts for the fp32
 * verifier with greedy speculative output still token-identical to verifier-only greedy.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readArtifactYaml, type ArtifactYamlFile } from '../../src/config/artifact-yaml.js';
import { listSourceFiles } from '../../src/artifact/source.js';
import { validateModel } from '../../src/artifact/validate/model.js';
import { publishedModelFiles } from '../../src/artifact/validate/model-graph.js';
import { collect, generate, generateSpeculative } from '../../src/inference/generate.js';
import { InProcessVerifier } from '../../src/inference/in-process-verifier.js';
import { loadLoraAdapter } from '../../src/inference/lora.js';
import { LmSession } from '../../src/inference/model-session.js';
import { TextTokenizer } from '../../src/inference/tokenizer.js';
import { DRAFT_DIR, prompts, SUPPORT_ADAPTER_DIR, VERIFIER_DIR } from './helpers.js';

let q4: LmSession;
let fp32: LmSession;
let verifierModel: LmSession;
let tok: TextTokenizer;

beforeAll(async () => {
  [q4, fp32, verifierModel] = await Promise.all([
    LmSession.load(DRAFT_DIR, { modelFile: 'model_q4.onnx' }),
    LmSession.load(DRAFT_DIR),
    LmSession.load(VERIFIER_DIR),
  ]);
  tok = TextTokenizer.load(DRAFT_DIR);
});
afterAll(async () => Promise.all([q4.release(), fp32.release(), verifierModel.release()]));

describe('the q4 fixture draft', () => {
  it('is what dtype: q4 selects; it validates and syncs alone when selected', async () => {
    const base = readArtifactYaml(DRAFT_DIR);
    const yaml: ArtifactYamlFile = { ...base, value: { ...base.value, dtype: 'q4', sync: 'selected' } };
    const files = publishedModelFiles(DRAFT_DIR, yaml, listSourceFiles(DRAFT_DIR).files);
    const meta = await validateModel({ dir: DRAFT_DIR, yaml, files });
    expect(meta.modelFile).toBe('model_q4.onnx');
    expect(files.map((f) => f.path)).toContain('model_q4.onnx');
    expect(files.map((f) => f.path)).not.toContain('model.onnx');
    // Without a dtype the draft still runs its fp32 graph.
    expect(fp32.modelFile).toBe('model.onnx');
    expect(q4.modelFile).toBe('model_q4.onnx');
  });

  it('generates, with and without the support adapter (same LoRA inputs as fp32)', async () => {
    expect(q4.inputs.lora).toEqual(fp32.inputs.lora);
    const support = loadLoraAdapter(SUPPORT_ADAPTER_DIR, q4.inputs.lora);
    const ids = tok.encode(prompts('support', 1)[0] as string);
    const opts = { maxTokens: 24, eosTokenIds: [] as number[] };
    const plain = await collect(generate(q4, ids, opts));
    const adapted = await collect(generate(q4, ids, { ...opts, lora: support.feeds }));
    const reference = await collect(generate(fp32, ids, opts));
    expect(plain.tokens).toHaveLength(24);
    expect(adapted.tokens).not.toEqual(plain.tokens);
    // Quantized, yet the same model: its greedy output starts like the fp32 draft's.
    expect(plain.tokens.slice(0, 4)).toEqual(reference.tokens.slice(0, 4));
  });

  it('drafts for the fp32 verifier: greedy output equals verifier-only greedy', async () => {
    const verifier = new InProcessVerifier(verifierModel);
    let accepted = 0;
    let rounds = 0;
    for (const text of [...prompts('general', 2), ...prompts('support', 2)]) {
      const ids = tok.encode(text);
      const opts = { maxTokens: 24, eosTokenIds: [] as number[] };
      const ref = await collect(generate(verifierModel, ids, opts));
      const spec = await collect(generateSpeculative(q4, verifier, ids, { ...opts, k: 4 }));
      expect(spec.tokens).toEqual(ref.tokens);
      accepted += spec.done.stats.accepted;
      rounds += spec.done.stats.verifyRounds;
    }
    expect(accepted / rounds).toBeGreaterThan(0.5);
  });
});
