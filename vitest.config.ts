/**
 * Two vitest projects (test/projects.ts says which file is which): `unit` (in-process tests, no
 * build, no RGW) runs first, then `e2e` (the CLI and daemons as child processes, RGW), which needs
 * dist/ built (test/setup/build.ts) and the run's Ceph RGW (test/setup/rgw.ts). `vitest run` runs
 * both; `--project unit` or `--project e2e` one (`npm run test:unit`, `npm run test:e2e`).
 */
import { defineConfig } from 'vitest/config';
import { E2E_FILES } from './test/projects.js';

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['test/**/*.test.ts'],
          exclude: [...E2E_FILES],
          // Unit tests surface first: the e2e project starts once every unit file has run.
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: {
          name: 'e2e',
          include: [...E2E_FILES],
          globalSetup: ['test/setup/build.ts', 'test/setup/rgw.ts'],
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
