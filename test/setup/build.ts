/**
 * vitest globalSetup: builds dist/ once per test run (`tsc -p tsconfig.build.json`) so tests that
 * run the CLI as a child process use the current sources. Set EDGECTL_SKIP_BUILD=1 when dist/ is
 * already fresh (CI runs `npm run build` before `vitest run`). Type errors are reported but do not
 * stop the run: tsc still emits, and `npm run typecheck` is the gate for types.
 */
import { spawnSync } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export default function setup(): void {
  if (process.env.EDGECTL_SKIP_BUILD === '1') return;
  const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
  const res = spawnSync(
    join(root, 'node_modules/.bin/node'),
    [join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'],
    {
      cwd: root,
      encoding: 'utf8',
    },
  );
  if (res.error) throw res.error;
  // The oclif manifest lets each CLI start load only its own command; a stale one would hide new commands.
  const manifest = spawnSync(join(root, 'node_modules/.bin/node'), [join(root, 'scripts/manifest.mjs')], {
    cwd: root,
    encoding: 'utf8',
  });
  if (manifest.status !== 0)
    process.stderr.write(`warning: scripts/manifest.mjs failed:\n${manifest.stderr}\n`);
  if (res.status !== 0) {
    process.stderr.write(
      `warning: tsc -p tsconfig.build.json reported errors (dist/ was still emitted):\n${res.stdout}${res.stderr}\n`,
    );
  }
}
