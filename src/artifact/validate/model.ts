/**
 * Validation of `model` artifacts (docs/formats.md "Artifacts", docs/running-sites.md): config.json, tokenizer.json,
 * optional generation_config.json and an ONNX graph in the Optimum layout (model.onnx,
 * decoder_model_merged.onnx) or the onnx-community one (onnx/model.onnx, onnx/model_q4.onnx, ...),
 * chosen by artifact.yaml `file:`/`dtype:` (model-graph.ts). The graph is checked by loading it as
 * a site will and running it (model-graph.ts: same file, session options, inputs), so its I/O
 * contract is the runtime's own: `input_ids`, `attention_mask`, optional `position_ids`,
 * `use_cache_branch`, `num_logits_to_keep`, `past_key_values.<i>.key|value` for every layer and no
 * more, optional LoRA inputs `lora.<layer>.<module>.A|B`; outputs `logits` and `present.<i>.*`.
 * A model that fails here would fail at every site, so it is refused at lint and publish (exit 2).
 */
import { join } from 'node:path';
import {
  hasFile,
  invalidFile,
  loraSupportOf,
  optionalPositiveInt,
  positiveInt,
  readJsonObject,
  requireFiles,
  type Meta,
  type LocalValidateContext,
} from './common.js';
import { validateEmbedderModel } from './embedder-model.js';
import { probeModelGraph } from './model-graph.js';

/** Files every model artifact has besides its graph (model-files.ts finds the graph). */
export const MODEL_FILES = ['config.json', 'tokenizer.json'];
export type ModelRole = 'draft' | 'verifier';

const LORA_INPUT_RE = /^lora\.(\d+)\.([A-Za-z0-9_]+)\.(A|B)$/;

function roleOf(ctx: LocalValidateContext, config: Record<string, unknown>, configFile: string): ModelRole {
  const fromConfig = (config.edgectl as { role?: unknown } | undefined)?.role;
  const declared = ctx.yaml.value.role;
  if (declared && fromConfig !== undefined && fromConfig !== declared) {
    throw invalidFile(
      configFile,
      'edgectl.role',
      `is "${String(fromConfig)}" but artifact.yaml says role: ${declared}`,
    );
  }
  const role = declared ?? fromConfig;
  if (role !== 'draft' && role !== 'verifier') {
    throw invalidFile(
      ctx.yaml.file ?? join(ctx.dir, 'artifact.yaml'),
      'role',
      role === undefined ? 'a model needs a role' : `unknown role ${JSON.stringify(role)}`,
      'set `role: draft` or `role: verifier` in artifact.yaml',
    );
  }
  return role;
}

export async function validateModel(ctx: LocalValidateContext): Promise<Meta> {
  // An index's sentence encoder is a model artifact too, checked as the index engine opens it.
  if (ctx.yaml.value.role === 'embedder') return validateEmbedderModel(ctx);
  requireFiles(ctx, 'model', MODEL_FILES);
  const { value: config, file: configFile } = readJsonObject(ctx, 'config.json');
  const layers = positiveInt(
    (config.text_config as Record<string, unknown> | undefined) ?? config,
    'num_hidden_layers',
    configFile,
    config.text_config === undefined ? 'num_hidden_layers' : 'text_config.num_hidden_layers',
  );
  const role = roleOf(ctx, config, configFile);
  const lora = loraSupportOf(config, configFile);

  const { value: tokenizer, file: tokenizerFile } = readJsonObject(ctx, 'tokenizer.json');
  if (typeof tokenizer.model !== 'object' || tokenizer.model === null) {
    throw invalidFile(tokenizerFile, 'model', 'missing: expected a Hugging Face tokenizers file');
  }
  if (hasFile(ctx, 'generation_config.json')) readJsonObject(ctx, 'generation_config.json');

  const textConfig = config.text_config;
  const text =
    typeof textConfig === 'object' && textConfig !== null ? (textConfig as Record<string, unknown>) : config;
  const graph = await probeModelGraph(ctx.dir, ctx.yaml, ctx.files);
  const loraInputs = graph.inputs.filter((n) => LORA_INPUT_RE.test(n));
  if (lora) {
    const expected = Array.from({ length: layers }, (_, i) =>
      lora.targetModules.flatMap((m) => [`lora.${i}.${m}.A`, `lora.${i}.${m}.B`]),
    ).flat();
    const missing = expected.filter((n) => !graph.inputs.includes(n));
    if (missing.length > 0) {
      throw invalidFile(
        join(ctx.dir, graph.modelFile),
        'inputs (LoRA)',
        `missing ${missing.slice(0, 6).join(', ')}${missing.length > 6 ? ` and ${missing.length - 6} more` : ''}`,
        'export the draft with LoRA inputs for every target module in config.json lora.target_modules',
      );
    }
  }
  return {
    role,
    numHiddenLayers: layers,
    modelFile: graph.modelFile,
    cacheType: graph.cacheType,
    ...(optionalPositiveInt(text, 'vocab_size', configFile) ? { vocabSize: text.vocab_size } : {}),
    ...(optionalPositiveInt(text, 'num_key_value_heads', configFile)
      ? { numKeyValueHeads: text.num_key_value_heads }
      : {}),
    ...(lora ? { lora: { targetModules: lora.targetModules, maxRank: lora.maxRank } } : {}),
    loraInputs: loraInputs.length,
    inputs: graph.inputs.length,
    outputs: graph.outputs.length,
  };
}
