/**
 * The JSON Schemas published for editors (schemas/*.schema.json) are generated from the zod schemas
 * edgectl validates with: the committed files must equal what the generator writes now (run
 * `npm run build && npm run docs:schemas` after changing a schema), and they must carry what an
 * editor needs: required fields, no unknown fields where edgectl refuses them, the patterns.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { jsonSchemas } from '../../src/schemas/json-schemas.js';
import { REPO_ROOT } from '../helpers/cli.js';

type Schema = {
  required?: string[];
  additionalProperties?: unknown;
  properties?: Record<string, Schema>;
  pattern?: string;
};

it('the committed schemas are up to date', () => {
  const generated = jsonSchemas();
  expect(Object.keys(generated).sort()).toEqual([
    'edgectl.schema.json',
    'policy.schema.json',
    'rollout.schema.json',
    'site.schema.json',
  ]);
  for (const [file, text] of Object.entries(generated))
    expect(
      readFileSync(join(REPO_ROOT, 'schemas', file), 'utf8'),
      `schemas/${file} is stale: npm run docs:schemas`,
    ).toBe(text);
});

it('the schemas say what edgectl checks', () => {
  const s = Object.fromEntries(Object.entries(jsonSchemas()).map(([f, t]) => [f, JSON.parse(t) as Schema]));
  const site = s['site.schema.json'] as Schema;
  expect(site.required).toEqual(expect.arrayContaining(['name', 'publicKey']));
  expect(site.additionalProperties).toBe(false);
  expect(site.properties?.name?.pattern).toBe('^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$');
  const cfg = s['edgectl.schema.json'] as Schema;
  expect(Object.keys(cfg.properties ?? {})).toEqual(
    expect.arrayContaining(['registry', 'trust', 'sites', 'keys']),
  );
  expect(cfg.additionalProperties).toBe(false);
  expect(Object.keys(s['rollout.schema.json']?.properties ?? {})).toEqual(
    expect.arrayContaining(['candidate', 'sites', 'steps']),
  );
  expect(Object.keys(s['policy.schema.json']?.properties ?? {}).length).toBeGreaterThan(2);
});
