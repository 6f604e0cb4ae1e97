/**
 * `artifact.yaml`, the optional publishing metadata in an artifact source directory: kind, name,
 * version, role (models), base (adapters) and description; for models also the graph to run (`file:` or
 * `dtype:`) and `sync: selected` to ship only that graph. Command-line flags override it. The file
 * describes the publish and is not itself published as an artifact file.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { readYamlWithSchema } from './yaml-file.js';

export const ARTIFACT_YAML = 'artifact.yaml';

const artifactYamlSchema = z.strictObject({
  kind: z.string().min(1).optional(),
  name: z.string().min(1).optional(),
  // `version: 1.0` is a YAML number: say how to write it rather than "expected string".
  version: z
    .string({
      error: 'expected a semantic version string such as "1.0.0" (quote it if YAML reads it as a number)',
    })
    .min(1)
    .optional(),
  role: z.enum(['draft', 'verifier', 'embedder']).optional(),
  base: z.string().min(1).optional(),
  description: z.string().max(4096).optional(),
  // Models: which ONNX graph runs (src/inference/model-files.ts) and whether a site gets only it.
  file: z.string().min(1).optional(),
  dtype: z.string().min(1).optional(),
  sync: z.enum(['all', 'selected']).optional(),
});

export type ArtifactYaml = z.infer<typeof artifactYamlSchema>;

export interface ArtifactYamlFile {
  value: ArtifactYaml;
  /** Path for messages, or undefined when the directory has no artifact.yaml. */
  file: string | undefined;
  /** Line of a field, for errors found after parsing (e.g. an invalid version). */
  lineOf(field: string): number | undefined;
}

export function readArtifactYaml(dir: string): ArtifactYamlFile {
  const path = join(dir, ARTIFACT_YAML);
  if (!existsSync(path)) return { value: {}, file: undefined, lineOf: () => undefined };
  const parsed = readYamlWithSchema(path, artifactYamlSchema);
  return { value: parsed.value, file: path, lineOf: (field) => parsed.lineOf([field]) };
}
