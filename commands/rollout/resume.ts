import { Flags } from '@oclif/core';
import { BaseCommand } from '../../src/cli/base-command.js';
import { rolloutIdArgs, rolloutWriterFlags, rolloutWriterTarget } from '../../src/cli/rollout-command.js';
import { parseDuration } from '../../src/registry/duration.js';
import { renderReport, tickLine } from '../../src/rollout/render.js';
import { actOnRollout, waitRollout, type RolloutReport } from '../../src/rollout/service.js';

export default class RolloutResume extends BaseCommand<typeof RolloutResume> {
  static override summary = 'Resume a paused rollout, or (with --wait) drive a running one to its end.';
  static override description =
    'The rollout state is folded from the fleet log, so any machine can continue a rollout whose CI job died: ' +
    '`rollout resume --wait` resumes it if paused (timeouts restart) and runs the controller until it is ' +
    'promoted (exit 0), rolled back (5), paused again (6) or the --timeout passes (7). Two controllers on one ' +
    'rollout never both act: each decision is a create-only fleet entry written against the state it judged.';
  static override examples = [
    '<%= config.bin %> rollout resume --wait',
    '<%= config.bin %> rollout resume support-1.1.0-ab12 --wait --timeout 1h --json',
  ];
  static override args = rolloutIdArgs;
  static override flags = {
    ...rolloutWriterFlags,
    wait: Flags.boolean({ summary: 'Drive the rollout until it is promoted, rolled back or paused.' }),
    timeout: Flags.string({
      summary: 'With --wait: stop waiting after this long (exit 7); the rollout goes on.',
      helpValue: '<duration>',
    }),
    interval: Flags.string({
      summary: "Time between controller passes (default: the spec's).",
      helpValue: '<duration>',
    }),
  };

  public async run(): Promise<RolloutReport> {
    const f = this.flags;
    const cfg = this.projectConfig(f.registry);
    const target = rolloutWriterTarget(cfg, {
      key: f.key,
      id: this.args.id,
      io: this.io,
      singleWriter: f['single-writer'],
    });
    if (!f.wait) {
      const report = await actOnRollout('resume', target);
      for (const line of renderReport(report)) this.out(line);
      return report;
    }
    const controller = new AbortController();
    const stop = () => controller.abort();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    try {
      const report = await waitRollout({
        ...target,
        ...(f.timeout ? { timeoutMs: parseDuration(f.timeout, '--timeout') } : {}),
        ...(f.interval ? { intervalMs: parseDuration(f.interval, '--interval') } : {}),
        signal: controller.signal,
        onTick: (t) => this.io.log('info', tickLine(t)),
      });
      for (const line of renderReport(report)) this.out(line);
      process.exitCode = controller.signal.aborted && report.outcome === 'running' ? 130 : report.exitCode;
      return report;
    } finally {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    }
  }
}
