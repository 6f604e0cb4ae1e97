/**
 * `edgectl model prepare`: turns a standard (downloaded) decoder export into a model artifact whose
 * graphs take per-request LoRA inputs on chosen projections, so the runtime's existing LoRA slots
 * (lora-slots.ts, lora.ts) serve PEFT adapters on it unchanged. Every graph file of the directory
 * (each variant: fp32, fp16, q4, ...) is rewritten at the wire level (rewrite.ts); external-data
 * files are hard-linked (copied across file systems) byte for byte; config.json gains
 * `lora: { target_modules, max_rank }`; artifact.yaml keeps the name and takes a new version, so a
 * publish deduplicates against the published original (same name, previous versions). Nothing is
 * written unless every graph has every target module in every layer.
 */
import {
  copyFileSync,
  existsSync,
  linkSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import semver from 'semver';
import { readArtifactYaml } from '../../config/artifact-yaml.js';
import { listSourceFiles } from '../source.js';
import { UserError } from '../../foundation/errors.js';
import { readModel, type WireModel } from '../../inference/lora-graph/onnx-wire.js';
import { addLoraInputs } from '../../inference/lora-graph/rewrite.js';
import { findProjections, type Projection } from '../../inference/lora-graph/targets.js';

export interface PrepareOptions {
  /** The source model directory (an export as downloaded, or a pulled artifact). */
  dir: string;
  out: string;
  /** Module names, e.g. ["q_proj", "v_proj"]. */
  targets: readonly string[];
  /** Largest adapter rank the prepared model accepts (config.json lora.max_rank). */
  rankMax: number;
  /** Version of the prepared artifact; default: the source's next minor version. */
  version?: string | undefined;
  /** Name of the prepared artifact; default: the source's (which is what makes publish dedupe). */
  name?: string | undefined;
  /** Role of the prepared artifact; default: the source's. */
  role?: 'draft' | 'verifier' | undefined;
}

export interface PreparedGraph {
  file: string;
  projections: number;
  bytesIn: number;
  bytesOut: number;
}

export interface PrepareResult {
  out: string;
  name: string | undefined;
  version: string;
  targets: string[];
  rankMax: number;
  layers: number;
  graphs: PreparedGraph[];
  /** Other files, linked or copied unchanged. */
  filesLinked: number;
}

const MAX_RANK_LIMIT = 1024;

function invalid(message: string, suggestion: string, details?: Record<string, unknown>): UserError {
  return new UserError(message, { code: 'E_PREPARE', suggestion, ...(details ? { details } : {}) });
}

function numLayersOf(dir: string): { config: Record<string, unknown>; layers: number } {
  const file = join(dir, 'config.json');
  if (!existsSync(file))
    throw invalid(`${file}: missing`, 'A model directory holds config.json next to its ONNX graphs.');
  const config = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  const text = (config.text_config as Record<string, unknown> | undefined) ?? config;
  const layers = text.num_hidden_layers;
  if (typeof layers !== 'number' || !Number.isInteger(layers) || layers <= 0)
    throw invalid(
      `${file}: num_hidden_layers: expected a positive integer`,
      'Use the config.json of the export.',
    );
  return { config, layers };
}

/** The target projections of one graph, after checking every target module is in every layer. */
function selectProjections(
  file: string,
  model: WireModel,
  targets: readonly string[],
  layers: number,
): Projection[] {
  if (model.graph.inputs.some((n) => n.startsWith('lora.')))
    throw invalid(
      `${file}: the graph already takes lora.* inputs`,
      'Serve adapters on it directly; prepare only exports without LoRA inputs.',
    );
  const all = findProjections(model.graph);
  const found = [...new Set(all.map((p) => p.module))];
  for (const t of targets) {
    if (!found.includes(t)) {
      throw invalid(
        `${file}: --lora-targets: no projection "${t}" in the graph; its layer projections are ${found.join(', ') || '(none found)'}`,
        `Choose --lora-targets among ${found.join(', ') || 'the MatMuls of the decoder layers'} (the names of the adapter's target_modules).`,
        { module: t, found },
      );
    }
    for (let layer = 0; layer < layers; layer++) {
      if (!all.some((p) => p.module === t && p.layer === layer))
        throw invalid(
          `${file}: no ${t} projection in layer ${layer} of ${layers}`,
          'Prepare the full, unpruned export.',
          { module: t, layer },
        );
    }
  }
  const chosen = all.filter((p) => targets.includes(p.module) && p.layer < layers);
  const keys = new Set(chosen.map((p) => `${p.layer}.${p.module}`));
  const branches = new Set(chosen.map((p) => `${p.layer}.${p.module}.${p.inFeatures}x${p.outFeatures}`));
  if (branches.size !== keys.size)
    throw invalid(
      `${file}: a target projection appears with different sizes`,
      'Prepare a plain decoder export.',
    );
  return chosen;
}

function checkOptions(opts: PrepareOptions): string[] {
  const targets = [...new Set(opts.targets.map((t) => t.trim()).filter((t) => t !== ''))];
  if (targets.length === 0)
    throw invalid('--lora-targets: no module names given', 'Pass e.g. --lora-targets q_proj,v_proj.');
  for (const t of targets)
    if (!/^[A-Za-z0-9_]+$/.test(t))
      throw invalid(`--lora-targets: "${t}" is not a module name`, 'Use names such as q_proj, v_proj.');
  if (!Number.isInteger(opts.rankMax) || opts.rankMax < 1 || opts.rankMax > MAX_RANK_LIMIT)
    throw invalid(
      `--rank-max: ${opts.rankMax} is not an integer in 1..${MAX_RANK_LIMIT}`,
      'Pass the largest adapter rank you will serve, e.g. --rank-max 16.',
    );
  if (existsSync(opts.out) && readdirSync(opts.out).length > 0)
    throw invalid(`${opts.out}: the output directory is not empty`, 'Pass a new or empty --out directory.');
  return targets;
}

function linkOrCopy(from: string, to: string): void {
  try {
    linkSync(from, to);
  } catch {
    copyFileSync(from, to);
  }
}

function writeArtifactFiles(
  opts: PrepareOptions,
  config: Record<string, unknown>,
  targets: string[],
): { name: string | undefined; version: string } {
  const yaml = readArtifactYaml(opts.dir).value;
  const from = yaml.version ?? '0.0.0';
  const version = opts.version ?? semver.inc(from, 'minor') ?? '0.1.0';
  const name = opts.name ?? yaml.name;
  const fields: Record<string, string | undefined> = {
    kind: 'model',
    name,
    version,
    role: opts.role ?? yaml.role,
    file: yaml.file,
    dtype: yaml.dtype,
    sync: yaml.sync,
  };
  const lines = Object.entries(fields)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}: ${v}`);
  lines.push(
    `description: ${JSON.stringify(`${name ?? 'model'}@${from} with LoRA inputs on ${targets.join(', ')} (edgectl model prepare)`)}`,
  );
  writeFileSync(join(opts.out, 'artifact.yaml'), `${lines.join('\n')}\n`);
  writeFileSync(
    join(opts.out, 'config.json'),
    `${JSON.stringify({ ...config, lora: { target_modules: targets, max_rank: opts.rankMax } }, null, 2)}\n`,
  );
  return { name, version };
}

/** Prepares `opts.dir` into `opts.out`; throws UserError (exit 2) before writing on bad input. */
export function prepareLoraModel(opts: PrepareOptions): PrepareResult {
  const targets = checkOptions(opts);
  const { config, layers } = numLayersOf(opts.dir);
  const files = listSourceFiles(opts.dir).files;
  const graphs = files.filter((f) => /\.onnx$/.test(f.path));
  if (graphs.length === 0)
    throw invalid(
      `${opts.dir}: no .onnx graph files`,
      'Point at the export directory (model.onnx or onnx/model*.onnx).',
    );
  const rewritten = graphs.map((g) => {
    const file = join(opts.dir, g.path);
    const buf = readFileSync(file);
    let model: WireModel;
    try {
      model = readModel(buf);
    } catch (err) {
      throw invalid(
        `${file}: not an ONNX model (${(err as Error).message})`,
        'Check the file is a complete export, not a Git LFS pointer.',
      );
    }
    const projections = selectProjections(file, model, targets, layers);
    return {
      path: g.path,
      projections: projections.length,
      bytesIn: buf.length,
      bytes: addLoraInputs(model, projections),
    };
  });
  mkdirSync(opts.out, { recursive: true });
  let filesLinked = 0;
  for (const f of files) {
    if (f.path === 'config.json' || /\.onnx$/.test(f.path)) continue;
    mkdirSync(dirname(join(opts.out, f.path)), { recursive: true });
    linkOrCopy(join(opts.dir, f.path), join(opts.out, f.path));
    filesLinked++;
  }
  for (const g of rewritten) {
    mkdirSync(dirname(join(opts.out, g.path)), { recursive: true });
    writeFileSync(join(opts.out, g.path), g.bytes);
  }
  const { name, version } = writeArtifactFiles(opts, config, targets);
  return {
    out: opts.out,
    name,
    version,
    targets,
    rankMax: opts.rankMax,
    layers,
    graphs: rewritten.map((g) => ({
      file: g.path,
      projections: g.projections,
      bytesIn: g.bytesIn,
      bytesOut: g.bytes.length,
    })),
    filesLinked,
  };
}
