/**
 * The `artifacts` linter for `edgectl lint`: checks artifact source directories offline, the same
 * way `publish artifact` would before uploading anything: artifact.yaml, file names (no links, no
 * escaping paths) and the kind's own validation (a model's ONNX inputs and outputs against its
 * config, a policy's schema, an index's index.json and segment files). Checks that need the registry
 * (an adapter's base model, an index's embedder) are left to
 * publish. A directory is an artifact when it holds an artifact.yaml; `edgectl lint artifacts/x`
 * lints one directly.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve, sep } from 'node:path';
import { isEdgectlError } from '../foundation/errors.js';
import type { YamlProblem } from '../config/yaml-file.js';
import type { Linter, LintContext } from '../lint/lint.js';
import { ARTIFACT_YAML, readArtifactYaml } from '../config/artifact-yaml.js';
import { checkKind } from './ref.js';
import { listSourceFiles } from './source.js';
import { requireFiles, type LocalValidateContext } from './validate/common.js';
import { validateModel } from './validate/model.js';
import { publishedModelFiles } from './validate/model-graph.js';
import { validatePolicy } from './validate/policy.js';
import { validateIndexLocal } from './validate/index-artifact.js';

const ADAPTER_FILES = ['adapter_config.json', 'adapter_model.safetensors'];

function artifactsRoot(ctx: LintContext): string {
  return resolve(ctx.root, 'artifacts');
}

/** Directories at any depth under `dir` that hold an artifact.yaml. */
export function artifactDirsUnder(dir: string): string[] {
  if (existsSync(join(dir, ARTIFACT_YAML))) return [dir];
  return readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && !e.name.startsWith('.'))
    .flatMap((e) => artifactDirsUnder(join(dir, e.name)));
}

function toProblem(err: unknown, dir: string, ctx: LintContext): YamlProblem[] {
  if (!isEdgectlError(err)) throw err;
  const nested = err.details?.problems;
  if (Array.isArray(nested)) return nested as YamlProblem[];
  const file = typeof err.details?.file === 'string' ? err.details.file : dir;
  const field = typeof err.details?.field === 'string' ? err.details.field : '';
  const prefix = `${file}: ${field ? `${field}: ` : ''}`;
  const message = err.message.startsWith(prefix) ? err.message.slice(prefix.length) : err.message;
  return [{ file: ctx.display(file), line: 1, field, message }];
}

async function lintArtifactDir(dir: string, ctx: LintContext): Promise<YamlProblem[]> {
  try {
    const yaml = readArtifactYaml(dir);
    const kind = yaml.value.kind;
    if (!kind) {
      return [
        {
          file: ctx.display(join(dir, ARTIFACT_YAML)),
          line: 1,
          field: 'kind',
          message: 'missing (model, adapter, policy or index)',
        },
      ];
    }
    checkKind(kind);
    const listed = listSourceFiles(dir).files;
    // A model is linted from exactly the files publish would ship (sync: selected drops variants).
    const files = kind === 'model' ? publishedModelFiles(dir, yaml, listed) : listed;
    // Only the adapter validator needs the registry (its base model); lint checks adapters' files alone.
    const vctx: LocalValidateContext = { dir, files, yaml };
    if (kind === 'model') await validateModel(vctx);
    else if (kind === 'policy') validatePolicy(vctx);
    else if (kind === 'index') validateIndexLocal(vctx);
    else requireFiles(vctx, kind, ADAPTER_FILES);
    return [];
  } catch (err) {
    return toProblem(err, dir, ctx);
  }
}

export const artifactsLinter: Linter = {
  id: 'artifacts',
  defaultTargets: (ctx) => (existsSync(artifactsRoot(ctx)) ? [artifactsRoot(ctx)] : []),
  claims: (path, ctx) => {
    const root = artifactsRoot(ctx);
    return (
      (path === root || path.startsWith(`${root}${sep}`) || existsSync(join(path, ARTIFACT_YAML))) &&
      statSync(path, { throwIfNoEntry: false })?.isDirectory() === true
    );
  },
  async lint(paths, ctx) {
    const dirs = [...new Set(paths.flatMap(artifactDirsUnder))];
    const problems: YamlProblem[] = [];
    for (const dir of dirs) problems.push(...(await lintArtifactDir(dir, ctx)));
    return { files: dirs.length, problems };
  },
};
