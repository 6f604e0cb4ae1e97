import { Flags } from '@oclif/core';
import { BaseCommand } from '../../src/cli/base-command.js';
import { durationFlag, registryFlag, trustFlag } from '../../src/cli/flags.js';
import { pollUntil } from '../../src/cli/watch.js';
import { RecentFeedback } from '../../src/fleet-status/read-recent.js';
import { renderFleetStatus } from '../../src/fleet-status/render.js';
import { fleetStatus, type FleetStatusResult } from '../../src/fleet-status/service.js';

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
    window: durationFlag({ summary: 'How much feedback to sum.', default: '15m' }),
    'stale-after': durationFlag({
      summary: 'A site whose latest report is older than this is stale.',
      default: '5m',
    }),
    watch: Flags.boolean({ summary: 'Refresh every --interval until interrupted.' }),
    interval: durationFlag({ summary: 'Refresh interval of --watch.', default: '5s' }),
  };

  public async run(): Promise<FleetStatusResult | undefined> {
    const f = this.flags;
    const cfg = this.projectConfig(f.registry);
    const opts = {
      registryUrl: cfg.registry,
      trustPath: cfg.trustPath,
      by: f.by,
      windowMs: f.window,
      staleAfterMs: f['stale-after'],
    };
    if (!f.watch) {
      const result = await fleetStatus(opts);
      for (const l of renderFleetStatus(result)) this.out(l);
      return result;
    }
    // With --json each refresh is a JSON line of its own, so oclif must not print the result again.
    if (!this.human) this.markResultStreamed();
    const feedback = new RecentFeedback();
    // On a terminal the view replaces itself; off one, each refresh is a block of lines.
    const clear = this.io.interactive ? '\u001b[H\u001b[2J' : '';
    return pollUntil({
      poll: () => fleetStatus(opts, feedback),
      render: (r) =>
        this.human ? `${clear}${renderFleetStatus(r).join('\n')}\n\n` : `${JSON.stringify(r)}\n`,
      intervalMs: f.interval,
      signal: this.signal,
      write: (text) => process.stdout.write(text),
    });
  }
}
