import { setTimeout as sleep } from 'node:timers/promises';
import { Flags } from '@oclif/core';
import { BaseCommand } from '../../src/cli/base-command.js';
import { exitIfInterrupted, onInterrupt } from '../../src/cli/interrupt.js';
import { registryFlag, trustFlag } from '../../src/cli/flags.js';
import { RecentFeedback } from '../../src/fleet/status/read-recent.js';
import { renderFleetStatus } from '../../src/fleet/status/render.js';
import { fleetStatus, type FleetStatusResult } from '../../src/fleet/status/service.js';
import { parseDuration } from '../../src/registry/duration.js';

export default class FleetStatus extends BaseCommand<typeof FleetStatus> {
  static override needsFleetRepository = 'registry' as const;
  static override summary =
    "The fleet's health by cohort, from signed feedback: sites, versions, freshness, SLIs, rollouts.";
  static override description =
    "Reads the verified fleet state and every site's signed feedback reports of the last --window (only reports " +
    "signed by the site's declared key count) and prints one row per cohort (the value of the site label --by, or " +
    'each site with --by site): sites reporting and stale, the age of the oldest latest report and how many fleet ' +
    'entries behind it is, requests, tokens/s, acceptance, TTFT p95, errors, policy violations, abstentions, ' +
    'verifier passes saved, then the refs running and the active rollouts per cohort. The same figures as the ' +
    'Grafana dashboard (docs/observability.md), without Prometheus. --watch refreshes every --interval until ' +
    'Ctrl-C (exit 130); with --json it prints one JSON document per line per refresh.';
  static override examples = [
    '<%= config.bin %> fleet status',
    '<%= config.bin %> fleet status --by tier --window 1h',
    '<%= config.bin %> fleet status --by region --watch',
    '<%= config.bin %> fleet status --json',
  ];
  static override flags = {
    registry: registryFlag,
    trust: trustFlag,
    by: Flags.string({ summary: 'Site label to group by (`site`: one row per site).', default: 'region' }),
    window: Flags.string({ summary: 'How much feedback to sum.', default: '15m', helpValue: '<duration>' }),
    'stale-after': Flags.string({
      summary: 'A site whose latest report is older than this is stale.',
      default: '5m',
      helpValue: '<duration>',
    }),
    watch: Flags.boolean({ summary: 'Refresh every --interval until interrupted.' }),
    interval: Flags.string({
      summary: 'Refresh interval of --watch.',
      default: '5s',
      helpValue: '<duration>',
    }),
  };

  public async run(): Promise<FleetStatusResult> {
    const f = this.flags;
    const cfg = this.projectConfig(f.registry);
    const opts = {
      registryUrl: cfg.registry,
      trustPath: cfg.trustPath,
      by: f.by,
      windowMs: parseDuration(f.window, '--window'),
      staleAfterMs: parseDuration(f['stale-after'], '--stale-after'),
    };
    if (!f.watch) {
      const result = await fleetStatus(opts);
      for (const l of renderFleetStatus(result)) this.out(l);
      return result;
    }
    return this.watch(opts, parseDuration(f.interval, '--interval'));
  }

  private async watch(
    opts: Parameters<typeof fleetStatus>[0],
    intervalMs: number,
  ): Promise<FleetStatusResult> {
    const stop = onInterrupt();
    const feedback = new RecentFeedback();
    let result: FleetStatusResult | undefined;
    try {
      while (!stop.signal.aborted) {
        result = await fleetStatus(opts, feedback);
        if (this.human) {
          // On a terminal the view replaces itself; off one, each refresh is a block of lines.
          if (this.io.interactive) process.stdout.write('\u001b[H\u001b[2J');
          process.stdout.write(`${renderFleetStatus(result).join('\n')}\n\n`);
        } else process.stdout.write(`${JSON.stringify(result)}\n`);
        await sleep(intervalMs, undefined, { signal: stop.signal }).catch(() => undefined);
      }
    } finally {
      stop.dispose();
    }
    exitIfInterrupted();
    // The JSON lines are already out: oclif must not print the result again.
    if (!this.human) process.exit(process.exitCode ?? 0);
    return result as FleetStatusResult;
  }
}
