import { BaseCommand } from '../../src/cli/base-command.js';
import {
  reasonFlag,
  rolloutIdArgs,
  rolloutWriterFlags,
  rolloutWriterTarget,
} from '../../src/cli/rollout-command.js';
import { renderReport } from '../../src/rollout/render.js';
import { actOnRollout, type RolloutReport } from '../../src/rollout/service.js';

export default class RolloutAbort extends BaseCommand<typeof RolloutAbort> {
  static override summary = 'Abort a rollout: every canary site goes back to its previous ref at once.';
  static override description =
    'Appends `rollout.abort` and, in the same entry, re-assigns each canary site the ref it had before (or removes the slot if it had none). Sites still hold the previous generation, so the rollback takes effect at their next sync without any download. Exit 0 when done (the report says rolled-back).';
  static override examples = [
    '<%= config.bin %> rollout abort',
    '<%= config.bin %> rollout abort support-1.2.0-9f3c --reason "customer reports"',
  ];
  static override args = rolloutIdArgs;
  static override flags = {
    ...rolloutWriterFlags,
    reason: reasonFlag,
  };

  public async run(): Promise<RolloutReport> {
    const f = this.flags;
    const cfg = this.projectConfig(f.registry);
    const report = await actOnRollout('abort', {
      ...rolloutWriterTarget(cfg, {
        key: f.key,
        id: this.args.id,
        io: this.io,
        singleWriter: f['single-writer'],
      }),
      ...(f.reason ? { reason: f.reason } : {}),
    });
    for (const line of renderReport(report)) this.out(line);
    return report;
  }
}
