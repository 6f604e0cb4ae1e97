/**
 * The unit/e2e split (test/projects.ts) stays true: every listed end-to-end file exists and starts
 * something outside the test process, and no other test file does (a unit test that spawns the CLI
 * or a daemon would make `npm run test:unit` slow and machine-dependent again).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from './helpers/cli.js';
import { E2E_FILES, E2E_MARKERS } from './projects.js';

function testFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return testFiles(p);
    return e.name.endsWith('.test.ts') ? [relative(REPO_ROOT, p)] : [];
  });
}

describe('test projects (unit / e2e)', () => {
  const all = testFiles(join(REPO_ROOT, 'test'));
  const e2e = new Set(E2E_FILES);

  it('lists only end-to-end files that exist and start processes', () => {
    const missing = E2E_FILES.filter((f) => !existsSync(join(REPO_ROOT, f)));
    expect(missing, 'listed in test/projects.ts but missing (moved? update the list)').toEqual([]);
    const inProcess = E2E_FILES.filter((f) => !E2E_MARKERS.test(readFileSync(join(REPO_ROOT, f), 'utf8')));
    expect(inProcess, 'listed as e2e but start no process: move them to the unit project').toEqual([]);
  });

  it('keeps every file that starts a process out of the unit project', () => {
    const spawning = all.filter(
      (f) => !e2e.has(f) && E2E_MARKERS.test(readFileSync(join(REPO_ROOT, f), 'utf8')),
    );
    expect(spawning, 'unit files that start processes: add them to E2E_FILES in test/projects.ts').toEqual(
      [],
    );
    expect(all.length - e2e.size).toBeGreaterThan(50);
  });
});
