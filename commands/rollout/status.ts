import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../src/cli/base-command.js';
import { ExitCode } from '../../src/foundation/errors.js';
import { durationFlag, registryFlag, trustFlag } from '../../src/cli/flags.js';
import { interrupted } from '../../src/cli/interrupt.js';
import { pollUntil } from '../../src/cli/watch.js';
import { renderReport } from '../../src/rollout/render.js';
import { rolloutStatus, type RolloutReport } from '../../src/rollout/service.js';

export default class RolloutStatus extends BaseCommand<typeof RolloutStatus> {
  static override needsFleetRepository = 'registry' as const;
  static override summary = 'Show a rollout: waves, sites, metrics with their evidence, and its events.';
  static override description =
    'Folds the rollout from the fleet log and judges its current step from the feedback at hand (nothing is ' +
    'written), then prints the tree of waves, sites and metrics (value per arm, evidence against the boundary, ' +
    'samples). --watch keeps a live view open (a terminal UI on a TTY, plain lines otherwise) until the rollout ' +
    "ends. Exit code: the rollout's outcome (0 promoted or running, 5 rolled back, 6 paused, 7 timed out).";
  static override examples = [
    '<%= config.bin %> rollout status',
    '<%= config.bin %> rollout status support-1.1.0-ab12 --json',
    '<%= config.bin %> rollout status --watch',
  ];
  static override args = {
    id: Args.string({
      required: false,
      description: 'Rollout id (default: the active rollout, else the latest).',
    }),
  };
  static override flags = {
    registry: registryFlag,
    trust: trustFlag,
    watch: Flags.boolean({ summary: 'Keep a live view open until the rollout ends.' }),
    interval: durationFlag({ summary: 'Refresh interval of --watch.', default: '2s' }),
    events: Flags.boolean({ summary: 'List every rollout event of the fleet log.' }),
  };

  public async run(): Promise<RolloutReport> {
    const f = this.flags;
    const cfg = this.projectConfig(f.registry);
    const target = {
      registryUrl: cfg.registry,
      trustPath: cfg.trustPath,
      ...(this.args.id ? { id: this.args.id } : {}),
    };
    if (!f.watch || !this.human) {
      const report = await rolloutStatus(target);
      for (const line of renderReport(report, { events: f.events })) this.out(line);
      return report;
    }
    if (this.io.interactive) {
      const { watchRollout } = await import('../../src/ui/rollout-watch.js');
      return watchRollout(target, f.interval);
    }
    // Off a TTY: a block of plain lines whenever something changed.
    const report = await pollUntil({
      poll: () => rolloutStatus(target),
      render: (r) => `${renderReport(r).join('\n')}\n`,
      done: (r) => r.rollout.status !== 'running',
      intervalMs: f.interval,
      signal: this.signal,
      write: (text) => this.out(text),
      onlyChanges: true,
    });
    return report ?? rolloutStatus(target);
  }

  protected override exitCodeOf(report: RolloutReport): number {
    return interrupted() ? ExitCode.Interrupted : report.exitCode;
  }
}
