import { Args, Flags } from '@oclif/core';
import { setTimeout as sleep } from 'node:timers/promises';
import { BaseCommand } from '../../src/cli/base-command.js';
import { exitIfInterrupted, onInterrupt } from '../../src/cli/interrupt.js';
import { registryFlag, trustFlag } from '../../src/cli/flags.js';
import { parseDuration } from '../../src/registry/duration.js';
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
    interval: Flags.string({
      summary: 'Refresh interval of --watch.',
      default: '2s',
      helpValue: '<duration>',
    }),
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
    if (f.watch && this.human) {
      const intervalMs = parseDuration(f.interval, '--interval');
      if (this.io.interactive) {
        const { watchRollout } = await import('../../src/ui/rollout-watch.js');
        const report = await watchRollout(target, intervalMs);
        process.exitCode = report.exitCode;
        exitIfInterrupted();
        return report;
      }
      // Off a TTY: a block of plain lines whenever something changed.
      let last = '';
      const stop = onInterrupt();
      try {
        for (;;) {
          const report = await rolloutStatus(target);
          const text = renderReport(report).join('\n');
          if (text !== last) this.out(`${text}\n`);
          last = text;
          if (report.rollout.status !== 'running' || stop.signal.aborted) {
            process.exitCode = report.exitCode;
            exitIfInterrupted();
            return report;
          }
          await sleep(intervalMs, undefined, { signal: stop.signal }).catch(() => undefined);
        }
      } finally {
        stop.dispose();
      }
    }
    const report = await rolloutStatus(target);
    for (const line of renderReport(report, { events: f.events })) this.out(line);
    process.exitCode = report.exitCode;
    return report;
  }
}
