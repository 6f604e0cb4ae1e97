/**
 * Validation of `adapter` artifacts (docs/formats.md "Artifacts"): a PEFT LoRA directory (adapter_config.json,
 * adapter_model.safetensors) that must fit a base model already in the registry. The base ref comes
 * from artifact.yaml `base:` (or adapter_config.json `base_model_name_or_path` when that is a ref);
 * the base manifest is read and verified, and its config.json `lora` section (`target_modules`,
 * `max_rank`) bounds the adapter's rank and modules. The tensors in the safetensors header must be
 * LoRA A/B matrices of those modules, of layers the base has, with the declared rank.
 */
import { join } from 'node:path';
import { NotFoundError, UserError } from '../../foundation/errors.js';
import { readManifestFile } from '../fetch.js';
import { resolveRef, type LoadedManifest } from '../manifest-store.js';
import { formatRef, parseRef, type ArtifactRef } from '../ref.js';
import {
  invalidFile,
  loraSupportOf,
  parseJsonObject,
  positiveInt,
  readJsonObject,
  requireFiles,
  stringList,
  type Meta,
  type ValidateContext,
} from './common.js';
import { readSafetensorsHeader } from './safetensors.js';

export const ADAPTER_FILES = ['adapter_config.json', 'adapter_model.safetensors'];

/** PEFT tensor names: `...layers.<i>.<parent>.<module>.lora_A|lora_B.weight`. */
const TENSOR_RE = /(?:^|\.)layers\.(\d+)\.(?:[A-Za-z0-9_]+\.)*?([A-Za-z0-9_]+)\.lora_(A|B)\.weight$/;

function baseRefOf(ctx: ValidateContext, config: Record<string, unknown>, configFile: string): ArtifactRef {
  const declared = ctx.yaml.value.base;
  if (declared) {
    try {
      return parseRef(declared);
    } catch (err) {
      const line = ctx.yaml.lineOf('base');
      throw new UserError(
        `${ctx.yaml.file ?? 'artifact.yaml'}${line ? `:${line}` : ''}: base: ${(err as Error).message}`,
        {
          code: 'E_REF',
        },
      );
    }
  }
  const fromPeft = config.base_model_name_or_path;
  if (typeof fromPeft === 'string') {
    try {
      return parseRef(fromPeft);
    } catch {
      // a Hugging Face hub id, not a registry ref: fall through to the error below
    }
  }
  throw invalidFile(
    configFile,
    'base_model_name_or_path',
    'no base model ref for this adapter',
    'set `base: model/<name>@<version>` in artifact.yaml',
  );
}

async function loadBase(ctx: ValidateContext, ref: ArtifactRef): Promise<LoadedManifest> {
  const text = formatRef(ref);
  if (ref.kind !== 'model') {
    throw new UserError(`base ${text} is a ${ref.kind}; an adapter's base must be a model`, {
      code: 'E_ADAPTER_BASE',
    });
  }
  try {
    return await resolveRef(ctx.store, ref, ctx.trust);
  } catch (err) {
    if (err instanceof NotFoundError) {
      throw new UserError(`the adapter's base model ${text} is not in the registry ${ctx.store.url}`, {
        code: 'E_ADAPTER_BASE',
        suggestion: `publish the base model first (edgectl publish artifact <model dir>), or fix base: in artifact.yaml`,
        details: { base: text },
      });
    }
    throw err;
  }
}

export async function validateAdapter(ctx: ValidateContext): Promise<{ meta: Meta; base: LoadedManifest }> {
  requireFiles(ctx, 'adapter', ADAPTER_FILES);
  const { value: config, file: configFile } = readJsonObject(ctx, 'adapter_config.json');
  if (config.peft_type !== undefined && config.peft_type !== 'LORA') {
    throw invalidFile(configFile, 'peft_type', `"${String(config.peft_type)}" is not supported (only LORA)`);
  }
  const rank = positiveInt(config, 'r', configFile);
  if (typeof config.target_modules === 'string') {
    throw invalidFile(
      configFile,
      'target_modules',
      'a regular expression is not supported',
      'list the module names',
    );
  }
  const targets = stringList(config.target_modules, 'target_modules', configFile);
  const alpha = typeof config.lora_alpha === 'number' ? config.lora_alpha : undefined;

  const baseRef = baseRefOf(ctx, config, configFile);
  const base = await loadBase(ctx, baseRef);
  const baseConfigBytes = await readManifestFile(ctx.store, base.manifest, 'config.json');
  const baseWhat = `${base.ref} config.json`;
  if (!baseConfigBytes)
    throw new UserError(`base ${base.ref} has no config.json`, { code: 'E_ADAPTER_BASE' });
  const baseConfig = parseJsonObject(baseConfigBytes.toString('utf8'), baseWhat);
  const support = loraSupportOf(baseConfig, baseWhat);
  if (!support) {
    throw new UserError(
      `base ${base.ref} does not accept LoRA adapters (its config.json has no "lora" section)`,
      {
        code: 'E_ADAPTER_BASE',
        suggestion: 'adapters apply to draft models exported with LoRA inputs',
      },
    );
  }
  if (rank > support.maxRank) {
    throw invalidFile(
      configFile,
      'r',
      `rank ${rank} exceeds the base model's max_rank ${support.maxRank} (${base.ref})`,
    );
  }
  const unsupported = targets.filter((t) => !support.targetModules.includes(t));
  if (unsupported.length > 0) {
    throw invalidFile(
      configFile,
      'target_modules',
      `${unsupported.join(', ')} not supported by ${base.ref} (it accepts ${support.targetModules.join(', ')})`,
    );
  }
  // Multimodal wrappers (Gemma 3) keep the text model's sizes in text_config, as validate/model.ts reads them.
  const textConfig = baseConfig.text_config;
  const baseLayers =
    typeof textConfig === 'object' && textConfig !== null && !Array.isArray(textConfig)
      ? positiveInt(
          textConfig as Record<string, unknown>,
          'num_hidden_layers',
          baseWhat,
          'text_config.num_hidden_layers',
        )
      : positiveInt(baseConfig, 'num_hidden_layers', baseWhat);

  const weightsFile = join(ctx.dir, 'adapter_model.safetensors');
  const tensors = await readSafetensorsHeader(weightsFile);
  if (tensors.size === 0) throw invalidFile(weightsFile, '', 'holds no tensors');
  checkTensors(weightsFile, tensors, { targets, rank, baseLayers, baseRef: base.ref });
  return {
    meta: {
      base: base.ref,
      baseDigest: base.digest,
      rank,
      ...(alpha !== undefined ? { alpha } : {}),
      targetModules: targets,
      tensors: tensors.size,
    },
    base,
  };
}

/** Every tensor is a LoRA A/B matrix of a target module, on a layer the base has, of the adapter's rank. */
function checkTensors(
  weightsFile: string,
  tensors: Awaited<ReturnType<typeof readSafetensorsHeader>>,
  want: { targets: string[]; rank: number; baseLayers: number; baseRef: string },
): void {
  for (const [name, t] of tensors) {
    const m = TENSOR_RE.exec(name);
    if (!m)
      throw invalidFile(
        weightsFile,
        name,
        'is not a LoRA A/B matrix (…layers.<i>.<module>.lora_A|lora_B.weight)',
      );
    const [layer, module, ab] = [Number(m[1]), m[2] as string, m[3]];
    if (!want.targets.includes(module))
      throw invalidFile(weightsFile, name, `module ${module} is not in target_modules`);
    if (layer >= want.baseLayers)
      throw invalidFile(
        weightsFile,
        name,
        `layer ${layer} does not exist in ${want.baseRef} (${want.baseLayers} layers)`,
      );
    const rankDim = ab === 'A' ? t.shape[0] : t.shape[1];
    if (t.shape.length !== 2 || rankDim !== want.rank) {
      throw invalidFile(
        weightsFile,
        name,
        `shape [${t.shape.join(', ')}] does not have rank ${want.rank} (adapter_config.json r)`,
      );
    }
  }
}
