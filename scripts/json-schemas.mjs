// Writes schemas/*.schema.json (JSON Schemas of edgectl.yaml, sites/*.yaml, rollouts/*.yaml and
// policy.yaml) from the built zod schemas (dist/src/schemas/json-schemas.js; run the build first).
// Run `npm run docs:schemas` after changing one of those schemas; a test fails when they are stale.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { jsonSchemas } = await import(join(root, 'dist/src/schemas/json-schemas.js'));
mkdirSync(join(root, 'schemas'), { recursive: true });
for (const [file, text] of Object.entries(jsonSchemas())) {
  writeFileSync(join(root, 'schemas', file), text);
  console.log(`wrote schemas/${file}`);
}
