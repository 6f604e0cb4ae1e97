/**
 * Which ONNX graph of a model directory runs (docs/formats.md, "Model graph files"). A model
 * directory may hold several exports of the same weights in the layouts people download: Optimum's
 * (`model.onnx`, `decoder_model_merged.onnx` at the root), onnx-community's and Xenova's
 * (`onnx/model.onnx`, `onnx/model_q4.onnx`, `onnx/model_fp16.onnx`, `onnx/model_quantized.onnx`,
 * `onnx/decoder_model_merged_q4.onnx`, ...). The choice comes from, in order: an explicit file
 * (`--model-file`), artifact.yaml's `file:`, artifact.yaml's `dtype:` (a variant name such as `q4`),
 * and else the documented default order (`DEFAULT_VARIANT_ORDER`: full precision first). The same
 * function serves the runtime, `generate`, `verifier up`, `lint` and `publish`, so what is
 * validated is what is loaded. `externalDataOf` names the external-data files that travel with a
 * graph (`model_q4.onnx_data`, `model.onnx_data_1`, ...), so a publish can ship only the chosen one.
 */
import { existsSync, statSync } from 'node:fs';
import { basename, join, posix } from 'node:path';
import { readArtifactYaml } from '../config/artifact-yaml.js';
import { UserError } from '../foundation/errors.js';

/** Graph stems: a plain decoder with cache, and Optimum's merged decoder (`use_cache_branch`). */
const STEMS = ['model', 'decoder_model_merged'];
/** Where graphs live: the Optimum root, then onnx-community/Xenova's `onnx/`. */
const FOLDERS = ['', 'onnx/'];
/** Variant suffixes as onnx-community names them; `fp32` has none. */
export const VARIANTS = ['fp32', 'fp16', 'q4', 'q4f16', 'quantized', 'int8', 'uint8', 'bnb4'] as const;
export type ModelVariant = (typeof VARIANTS)[number];
/** transformers.js accepts `q8` for the `_quantized` file; so do we. */
const ALIASES: Record<string, ModelVariant> = { q8: 'quantized', float32: 'fp32', float16: 'fp16' };
/** Without a choice: full precision first (the reference numbers), then the smaller variants. */
export const DEFAULT_VARIANT_ORDER: readonly ModelVariant[] = VARIANTS;

export interface ModelFileChoice {
  /** An explicit graph path relative to the model directory (`--model-file`, artifact.yaml `file:`). */
  file?: string | undefined;
  /** A variant name (artifact.yaml `dtype:`). */
  dtype?: string | undefined;
  /** Where the choice came from, for messages (e.g. "artifact.yaml dtype"). */
  source?: string | undefined;
}

export function normalizeVariant(dtype: string): ModelVariant | undefined {
  const v = ALIASES[dtype] ?? dtype;
  return (VARIANTS as readonly string[]).includes(v) ? (v as ModelVariant) : undefined;
}

/** Candidate relative paths of one variant, in lookup order. */
export function variantFiles(variant: ModelVariant): string[] {
  const suffix = variant === 'fp32' ? '' : `_${variant}`;
  return FOLDERS.flatMap((folder) => STEMS.map((stem) => `${folder}${stem}${suffix}.onnx`));
}

/** Every graph path the default order would consider, in that order. */
export function defaultModelFiles(): string[] {
  return DEFAULT_VARIANT_ORDER.flatMap(variantFiles);
}

function isFile(path: string): boolean {
  return existsSync(path) && statSync(path).isFile();
}

/**
 * The graph file to load, relative to `dir`. Throws UserError (exit 2) when a named file or variant
 * is absent (listing the graphs the directory does have) or a variant name is unknown.
 */
export function resolveModelFile(dir: string, choice: ModelFileChoice = {}): string {
  const present = defaultModelFiles().filter((f) => isFile(join(dir, f)));
  const have = present.length > 0 ? `it has ${present.join(', ')}` : 'it has no ONNX graph';
  if (choice.file !== undefined) {
    if (isFile(join(dir, choice.file))) return choice.file;
    throw new UserError(`${dir}: ${choice.source ?? 'model file'} ${choice.file} does not exist (${have})`, {
      code: 'E_MODEL_FILE',
      suggestion: 'Name a graph file that exists in the model directory, relative to it.',
      details: { dir, file: choice.file, present },
    });
  }
  if (choice.dtype !== undefined) {
    const variant = normalizeVariant(choice.dtype);
    if (variant === undefined) {
      throw new UserError(`${choice.source ?? 'dtype'}: unknown model variant "${choice.dtype}"`, {
        code: 'E_MODEL_VARIANT',
        suggestion: `Use one of ${VARIANTS.join(', ')} (q8 is an alias of quantized).`,
      });
    }
    const found = variantFiles(variant).find((f) => isFile(join(dir, f)));
    if (found !== undefined) return found;
    throw new UserError(
      `${dir}: no ${variant} variant (looked for ${variantFiles(variant).join(', ')}; ${have})`,
      {
        code: 'E_MODEL_VARIANT',
        suggestion: 'Copy the variant into the model directory, or choose another dtype / --model-file.',
        details: { dir, dtype: variant, present },
      },
    );
  }
  const first = present[0];
  if (first !== undefined) return first;
  throw new UserError(
    `${dir}: no ONNX graph found (looked for ${defaultModelFiles().slice(0, 4).join(', ')}, ...)`,
    {
      code: 'E_MODEL',
      suggestion:
        'A model directory holds model.onnx (Optimum layout) or onnx/model*.onnx (onnx-community layout), config.json and tokenizer.json.',
    },
  );
}

/**
 * External-data files that belong to a graph, among `paths` (relative, "/"-separated): onnx
 * writes `<graph>.onnx_data` (and `_1`, `_2`, ... when split) or `<graph>.onnx.data`.
 */
export function externalDataOf(graph: string, paths: readonly string[]): string[] {
  const folder = posix.dirname(graph);
  const name = posix.basename(graph);
  return paths.filter((p) => {
    if (posix.dirname(p) !== folder) return false;
    const b = posix.basename(p);
    return b === `${name}.data` || b === `${name}_data` || /^_data_\d+$/.test(b.slice(name.length));
  });
}

/** Whether a path is a graph or external data of any graph (the files a selected sync may drop). */
export function isGraphFile(path: string): boolean {
  const b = basename(path);
  return /\.onnx$/.test(b) || /\.onnx(_data(_\d+)?|\.data)$/.test(b);
}

/** The graph plus its external data; other graphs and their data are left out. */
export function selectedGraphFiles(graph: string, paths: readonly string[]): Set<string> {
  return new Set([graph, ...externalDataOf(graph, paths)]);
}

/**
 * The choice a model directory's own artifact.yaml makes (`file:` wins over `dtype:`), overridden by
 * an explicit `--model-file`. A directory without artifact.yaml (a site's materialized model) has
 * none: a publish that selects a file ships only that graph or refuses (see validate/model.ts).
 */
export function modelChoiceFor(dir: string, explicit?: string): ModelFileChoice {
  if (explicit !== undefined) return { file: explicit, source: '--model-file' };
  const yaml = readArtifactYaml(dir).value;
  if (yaml.file !== undefined) return { file: yaml.file, source: 'artifact.yaml file' };
  if (yaml.dtype !== undefined) return { dtype: yaml.dtype, source: 'artifact.yaml dtype' };
  return {};
}
