/**
 * Where edgectl itself is installed: the directory of its package.json. `init` copies the bundled
 * default policy from it and `quickstart` publishes the bundled models, adapters and prompts and
 * runs `bin/run.js` from it. Found by walking up from this module, so it works from src/ (tests
 * through vite-node) and from dist/src/ (the built CLI) alike.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface PackageInfo {
  root: string;
  version: string;
}

let cached: PackageInfo | undefined;

export function edgectlPackage(): PackageInfo {
  if (cached) return cached;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'edgectl') {
        cached = { root: dir, version: pkg.version ?? '0.0.0' };
        return cached;
      }
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error('edgectl: cannot find the package root (package.json named edgectl)');
    dir = parent;
  }
}
