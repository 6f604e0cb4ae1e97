/**
 * JSON Schemas for the files people edit, generated from the zod schemas that validate them (zod
 * 4's `z.toJSONSchema`, input side: what may be written, defaults optional), so editors with a
 * YAML language server complete and check `edgectl.yaml`, `sites/*.yaml`, `rollouts/*.yaml` and
 * `policy.yaml` exactly as edgectl will. Refinements that JSON Schema cannot express (ref syntax
 * checks, cross-field rules) stay with edgectl (`edgectl lint`). Committed under schemas/ by
 * `npm run docs:schemas`; a test fails when they are stale.
 */
import { z } from 'zod';
import { configSchema } from '../config/project.js';
import { siteFileSchema } from '../fleet/site-schema.js';
import { policySchema } from '../policy/schema.js';
import { rolloutFileSchema } from '../rollout/spec.js';

const FILES: { file: string; title: string; description: string; schema: z.ZodType }[] = [
  {
    file: 'edgectl.schema.json',
    title: 'edgectl.yaml',
    description: 'edgectl project configuration: registry, trust root, sites directory, key files.',
    schema: configSchema,
  },
  {
    file: 'site.schema.json',
    title: 'sites/<name>.yaml',
    description: 'A site declaration: name, labels, public key, runtime settings and assignments.',
    schema: siteFileSchema,
  },
  {
    file: 'rollout.schema.json',
    title: 'rollouts/<name>.yaml',
    description: 'A rollout spec: candidate, site selector, steps, analysis metrics, limits and timeouts.',
    schema: rolloutFileSchema,
  },
  {
    file: 'policy.schema.json',
    title: 'policy.yaml',
    description: 'A policy artifact: routing, redaction, block rules and abstain thresholds.',
    schema: policySchema,
  },
];

/** File name -> pretty-printed JSON Schema text. */
export function jsonSchemas(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of FILES) {
    const generated = z.toJSONSchema(f.schema, { io: 'input', unrepresentable: 'any' }) as Record<
      string,
      unknown
    >;
    const { $schema, ...rest } = generated;
    const doc = { $schema, title: f.title, description: f.description, ...rest };
    out[f.file] = `${JSON.stringify(doc, null, 2)}\n`;
  }
  return out;
}
