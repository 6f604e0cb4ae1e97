/**
 * Validation of `model` artifacts (DESIGN: Artifacts, Runtime): the Hugging Face Optimum layout
 * (model.onnx, config.json, tokenizer.json, optional generation_config.json) and the I/O contract
 * the runtime relies on. model.onnx is opened with ONNX Runtime and its input and output names are
 * checked against config.json's layer count: inputs `input_ids`, `attention_mask`, optional
 * `position_ids`, `past_key_values.<i>.key|value` for every layer (and no more), optional `use_cache_branch`
 * (Optimum's merged decoder), optional LoRA
 * inputs `lora.<layer>.<module>.A|B`; outputs `logits` and `present.<i>.key|value`. A model that
 * fails here would fail at every site, so it is refused at publish (exit 2).
 */
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
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

export const MODEL_FILES = ['model.onnx', 'config.json', 'tokenizer.json'];
export type ModelRole = 'draft' | 'verifier';

/** Optimum inputs the runtime may feed besides the required ones (`use_cache_branch`: merged decoders). */
const OPTIONAL_INPUTS = new Set(['input_ids', 'attention_mask', 'position_ids', 'use_cache_branch']);
const LORA_INPUT_RE = /^lora\.(\d+)\.([A-Za-z0-9_]+)\.(A|B)$/;

interface OnnxIo {
  inputs: string[];
  outputs: string[];
}

async function readOnnxIo(file: string): Promise<OnnxIo> {
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(file, { graphOptimizationLevel: 'disabled' });
  } catch (err) {
    throw invalidFile(file, '', `ONNX Runtime cannot load it (${(err as Error).message.split('\n')[0]})`);
  }
  try {
    return { inputs: [...session.inputNames], outputs: [...session.outputNames] };
  } finally {
    await session.release();
  }
}

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
  requireFiles(ctx, 'model', MODEL_FILES);
  const { value: config, file: configFile } = readJsonObject(ctx, 'config.json');
  const layers = positiveInt(config, 'num_hidden_layers', configFile);
  const role = roleOf(ctx, config, configFile);
  const lora = loraSupportOf(config, configFile);

  const { value: tokenizer, file: tokenizerFile } = readJsonObject(ctx, 'tokenizer.json');
  if (typeof tokenizer.model !== 'object' || tokenizer.model === null) {
    throw invalidFile(tokenizerFile, 'model', 'missing: expected a Hugging Face tokenizers file');
  }
  if (hasFile(ctx, 'generation_config.json')) readJsonObject(ctx, 'generation_config.json');

  const onnxFile = join(ctx.dir, 'model.onnx');
  const io = await readOnnxIo(onnxFile);
  const inputs = new Set(io.inputs);
  const outputs = new Set(io.outputs);
  const need = (names: string[], have: Set<string>, what: string) => {
    const missing = names.filter((n) => !have.has(n));
    if (missing.length > 0) {
      throw invalidFile(
        onnxFile,
        what,
        `missing ${missing.slice(0, 6).join(', ')}${missing.length > 6 ? ` and ${missing.length - 6} more` : ''} ` +
          `(config.json num_hidden_layers is ${layers})`,
        'export the model in the Optimum decoder layout with past_key_values, or fix num_hidden_layers',
      );
    }
  };
  const kv = (prefix: string) =>
    Array.from({ length: layers }, (_, i) => [`${prefix}.${i}.key`, `${prefix}.${i}.value`]).flat();
  need(['input_ids', 'attention_mask', ...kv('past_key_values')], inputs, 'inputs');
  need(['logits', ...kv('present')], outputs, 'outputs');

  const loraInputs: string[] = [];
  for (const name of io.inputs) {
    if (OPTIONAL_INPUTS.has(name)) continue;
    const pkv = /^past_key_values\.(\d+)\.(key|value)$/.exec(name);
    if (pkv) {
      if (Number(pkv[1]) >= layers) {
        throw invalidFile(onnxFile, 'inputs', `${name} is beyond config.json num_hidden_layers (${layers})`);
      }
      continue;
    }
    const l = LORA_INPUT_RE.exec(name);
    if (l && Number(l[1]) < layers) {
      loraInputs.push(name);
      continue;
    }
    throw invalidFile(
      onnxFile,
      'inputs',
      `unexpected input ${name}`,
      'the runtime feeds only the Optimum decoder inputs',
    );
  }
  if (lora) {
    const expected = Array.from({ length: layers }, (_, i) =>
      lora.targetModules.flatMap((m) => [`lora.${i}.${m}.A`, `lora.${i}.${m}.B`]),
    ).flat();
    need(expected, inputs, 'inputs (LoRA)');
  }
  return {
    role,
    numHiddenLayers: layers,
    ...(optionalPositiveInt(config, 'vocab_size', configFile) ? { vocabSize: config.vocab_size } : {}),
    ...(optionalPositiveInt(config, 'num_key_value_heads', configFile)
      ? { numKeyValueHeads: config.num_key_value_heads }
      : {}),
    ...(lora ? { lora: { targetModules: lora.targetModules, maxRank: lora.maxRank } } : {}),
    loraInputs: loraInputs.length,
    inputs: io.inputs.length,
    outputs: io.outputs.length,
  };
}
