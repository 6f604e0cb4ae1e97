/**
 * The graph half of model validation: which files a model artifact publishes, and loading the
 * graph exactly as a site will (docs/formats.md, "Model graph files"). A site's model directory
 * is the published files and nothing else (no artifact.yaml), so the runtime picks its graph by
 * the default order among them. Validation therefore builds that directory (symbolic links to the
 * published files in a temporary directory), resolves the graph the same way, loads it with the
 * runtime's own `LmSession.load` (same session options, graph optimisation level `all`, same
 * config checks) and runs the two passes every request starts with (an empty cache, then one
 * token on a cache, which takes both branches of a merged decoder's `If`). A model that passes
 * here loads at every site.
 *
 * artifact.yaml's `file:`/`dtype:` choose the graph. With `sync: selected` only that graph and its
 * external data are published; with the default `sync: all` every file is, and a choice other than
 * the default order's is refused, because a site could not know it.
 */
import { mkdtempSync, mkdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { isEdgectlError } from '../../foundation/errors.js';
import { LmSession } from '../../inference/model-session.js';
import {
  defaultModelFiles,
  isGraphFile,
  resolveModelFile,
  selectedGraphFiles,
  type ModelFileChoice,
} from '../../inference/model-files.js';
import type { ArtifactYamlFile } from '../../config/artifact-yaml.js';
import type { SourceFile } from '../source.js';
import { invalidFile } from './common.js';

function yamlPath(dir: string, yaml: ArtifactYamlFile): string {
  return yaml.file ?? join(dir, 'artifact.yaml');
}

function choiceOf(yaml: ArtifactYamlFile): ModelFileChoice & { field?: 'file' | 'dtype' } {
  const v = yaml.value;
  if (v.file !== undefined) return { file: v.file, source: 'artifact.yaml file:', field: 'file' };
  if (v.dtype !== undefined) return { dtype: v.dtype, source: 'artifact.yaml dtype:', field: 'dtype' };
  return {};
}

/** The graph artifact.yaml chooses in the source directory (exit 2 when it does not exist). */
export function chosenGraph(dir: string, yaml: ArtifactYamlFile): string | undefined {
  const choice = choiceOf(yaml);
  if (choice.field === undefined) return undefined;
  try {
    return resolveModelFile(dir, choice);
  } catch (err) {
    if (!isEdgectlError(err)) throw err;
    throw invalidFile(yamlPath(dir, yaml), choice.field, err.message, err.suggestion);
  }
}

/**
 * The source files a model publish ships: all of them, or with `sync: selected` the chosen graph
 * and its external data plus every non-graph file (config, tokenizer, ...).
 */
export function publishedModelFiles(dir: string, yaml: ArtifactYamlFile, files: SourceFile[]): SourceFile[] {
  if (yaml.value.sync !== 'selected') return files;
  const graph = chosenGraph(dir, yaml);
  if (graph === undefined) {
    throw invalidFile(
      yamlPath(dir, yaml),
      'sync',
      'selected needs a graph choice',
      'add `file: onnx/model_q4.onnx` or `dtype: q4` to artifact.yaml, or remove `sync: selected`',
    );
  }
  const keep = selectedGraphFiles(
    graph,
    files.map((f) => f.path),
  );
  return files.filter((f) => !isGraphFile(f.path) || keep.has(f.path));
}

/** What the site will run among the published files (default order), after checking the choice. */
function siteGraph(dir: string, yaml: ArtifactYamlFile, files: readonly SourceFile[]): string {
  const paths = new Set(files.map((f) => f.path));
  const site = defaultModelFiles().find((f) => paths.has(f));
  const chosen = chosenGraph(dir, yaml);
  if (site === undefined) {
    throw invalidFile(
      dir,
      'files',
      `no ONNX graph (looked for ${defaultModelFiles().slice(0, 4).join(', ')}, ...)`,
      'a model directory holds model.onnx (Optimum) or onnx/model*.onnx (onnx-community)',
    );
  }
  if (chosen !== undefined && chosen !== site) {
    throw invalidFile(
      yamlPath(dir, yaml),
      choiceOf(yaml).field ?? 'file',
      `chooses ${chosen}, but a site gets every graph (sync: all) and runs ${site} (the default order)`,
      'add `sync: selected` so that only the chosen graph is published',
    );
  }
  return site;
}

export interface LoadedGraph {
  modelFile: string;
  inputs: string[];
  outputs: string[];
  cacheType: string;
}

/** Loads and runs the graph a site would, from exactly the published files. */
export async function probeModelGraph(
  dir: string,
  yaml: ArtifactYamlFile,
  files: readonly SourceFile[],
): Promise<LoadedGraph> {
  const graph = siteGraph(dir, yaml, files);
  const stage = mkdtempSync(join(tmpdir(), 'edgectl-model-'));
  try {
    for (const f of files) {
      mkdirSync(dirname(join(stage, f.path)), { recursive: true });
      // A relative source path would resolve against the stage directory, not the caller's cwd.
      symlinkSync(resolve(f.absPath), join(stage, f.path));
    }
    let lm: LmSession;
    try {
      lm = await LmSession.load(stage, { modelFile: graph });
    } catch (err) {
      throw relocate(err, stage, dir, graph);
    }
    try {
      const first = await lm.forward([0]);
      const next = await lm.forward([0], first.cache);
      first.cache.release();
      next.cache.release();
      return { modelFile: graph, ...lm.ioNames(), cacheType: lm.inputs.io.cacheType };
    } catch (err) {
      throw relocate(err, stage, dir, graph, 'a forward pass failed: ');
    } finally {
      await lm.release();
    }
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

/** An error from the staging directory, re-pointed at the source file (exit 2). */
function relocate(err: unknown, stage: string, dir: string, graph: string, prefix = ''): Error {
  if (!(err instanceof Error)) return new Error(String(err));
  const message = err.message.split(stage).join(dir);
  const suggestion = isEdgectlError(err) ? err.suggestion : undefined;
  // Name the file the runtime complained about (config.json, the graph), else the graph.
  const named = message.startsWith(`${dir}/`) ? /^([^:]+):(\d+:)? /.exec(message) : null;
  const file = named?.[1] ?? join(dir, graph);
  const text = named ? message.slice(named[0].length) : message;
  return invalidFile(file, '', `${prefix}${text}`, suggestion);
}
