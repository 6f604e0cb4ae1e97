/**
 * `edgectl observability export`: writes the observability pack (the Grafana dashboard, the
 * Prometheus rule file and its promtool unit tests) into a directory. The same files are committed
 * under docs/observability/, and a test checks the committed copy equals what this writes, so the
 * pack a user exports is the one the tests ran promtool on.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildDashboard } from './dashboard.js';
import { rulesYaml } from './rules.js';
import { ruleTestsYaml } from './rules-tests.js';

export const PACK_FILES = {
  dashboard: 'edgectl-dashboard.json',
  rules: 'edgectl-rules.yml',
  ruleTests: 'edgectl-rules.test.yml',
} as const;

export interface ExportResult {
  dir: string;
  files: string[];
}

/** The pack's files by name, as text. */
export function observabilityPack(): Record<string, string> {
  return {
    [PACK_FILES.dashboard]: `${JSON.stringify(buildDashboard(), null, 2)}\n`,
    [PACK_FILES.rules]: rulesYaml(),
    [PACK_FILES.ruleTests]: ruleTestsYaml(PACK_FILES.rules),
  };
}

export function exportObservability(dir: string): ExportResult {
  mkdirSync(dir, { recursive: true });
  const files: string[] = [];
  for (const [name, text] of Object.entries(observabilityPack())) {
    const path = join(dir, name);
    writeFileSync(path, text);
    files.push(path);
  }
  return { dir, files };
}
