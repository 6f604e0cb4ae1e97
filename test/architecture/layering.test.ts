/**
 * The layering rule (docs/architecture.md "Layers", .dependency-cruiser.cjs) is what `npm run lint`
 * enforces on the real tree; these tests show it fails on an upward import or on a new
 * top-level folder nobody placed in a layer, so the rule cannot silently stop checking anything.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

const repo = resolve(import.meta.dirname, '../..');
const config = join(repo, '.dependency-cruiser.cjs');
const depcruise = join(repo, 'node_modules/dependency-cruiser/bin/dependency-cruiser.mjs');
const dirs: string[] = [];

function cruise(cwd: string, targets: string[]): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, [depcruise, ...targets, '--config', config], {
    cwd,
    encoding: 'utf8',
  });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

function tree(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'edgectl-layers-'));
  dirs.push(root);
  writeFileSync(join(root, 'tsconfig.json'), JSON.stringify({ compilerOptions: { module: 'nodenext' } }));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('layering rule', () => {
  it('fails an upward import, naming the rule and both files', () => {
    const root = tree({
      'src/foundation/digest.ts': "import { serve } from '../runtime/serve.js';\nexport const d = serve;\n",
      'src/runtime/serve.ts': "import { x } from '../registry/store.js';\nexport const serve = x;\n",
      'src/registry/store.ts': 'export const x = 1;\n',
    });
    const r = cruise(root, ['src']);
    expect(r.status).not.toBe(0);
    expect(r.out).toMatch(/layer-0-foundation: src\/foundation\/digest\.ts → src\/runtime\/serve\.ts/);
    expect(r.out).not.toMatch(/src\/runtime\/serve\.ts → src\/registry/);
  }, 60_000);

  it('fails a top-level folder that has no layer', () => {
    const root = tree({
      'src/misc/thing.ts': "import { x } from '../registry/store.js';\nexport const y = x;\n",
      'src/registry/store.ts': 'export const x = 1;\n',
    });
    const r = cruise(root, ['src']);
    expect(r.status).not.toBe(0);
    expect(r.out).toContain('every-src-folder-has-a-layer');
  }, 60_000);
});
