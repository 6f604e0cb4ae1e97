import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');

describe('edgectl bench speculative (real verifier child, delay proxy)', () => {
  it('reports every mode with verifier counters, ratios and targets', () => {
    if (!existsSync(join(ROOT, 'dist/commands/bench/speculative.js')))
      throw new Error('run `npm run build` first');
    const r = spawnSync(
      join(ROOT, 'node_modules/.bin/node'),
      [
        join(ROOT, 'bin/run.js'),
        'bench',
        'speculative',
        '--draft',
        'artifacts/models/draft',
        '--verifier',
        'artifacts/models/verifier',
        '--limit',
        '3',
        '--concurrency',
        '2',
        '--max-tokens',
        '12',
        '--rtt-ms',
        '4',
        '--k',
        '3',
        '--no-micro',
        '--repeat',
        '2',
        '--json',
      ],
      { cwd: ROOT, encoding: 'utf8', timeout: 120_000 },
    );
    expect(r.status, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as {
      modes: Record<
        string,
        {
          requests: number;
          outputTokens: number;
          verifier: { forwardCalls: number; cpuSeconds: number };
          identicalToCloud?: { same: number; of: number };
        }
      >;
      ratios: Record<string, number | null>;
      perRepeat: Record<string, number | null>[];
      pinning: { server: string; client: string } | null;
      targets: { name: string; met: boolean | null }[];
    };
    expect(Object.keys(report.modes)).toEqual(['cloud', 'speculative', 'edge']);
    expect(report.modes.cloud?.verifier.forwardCalls).toBeGreaterThan(0);
    expect(report.modes.speculative?.verifier.forwardCalls).toBeGreaterThan(0);
    expect(report.modes.edge?.verifier.forwardCalls).toBe(0);
    expect(report.ratios.speculativeVsCloudTokensPerSecond).toBeGreaterThan(0);
    // Two repeats of 3 prompts, pooled; each repeat's own ratios listed.
    expect(report.modes.cloud?.requests).toBe(6);
    expect(report.modes.speculative?.identicalToCloud).toEqual({ same: 6, of: 6 });
    expect(report.perRepeat).toHaveLength(2);
    expect(report.perRepeat[1]?.speculativeVsCloudVerifierCpuPer1k).toBeGreaterThan(0);
    expect(report).toHaveProperty('pinning');
    const identical = report.targets.find((t) => t.name.startsWith('greedy speculative output identical'));
    expect(identical?.met).toBe(true);
  });
});
