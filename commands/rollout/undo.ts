import { BaseCommand } from '../../src/cli/base-command.js';
import {
  reasonFlag,
  rolloutIdArgs,
  rolloutWriterFlags,
  rolloutWriterTarget,
} from '../../src/cli/rollout-command.js';
import { renderReport } from '../../src/rollout/render.js';
import { actOnRollout, type RolloutReport } from '../../src/rollout/service.js';

export default class RolloutUndo extends BaseCommand<typeof RolloutUndo> {
  static override summary =
    'Undo a promoted rollout: every site that got the candidate goes back to its previous ref.';
  static override description =
    'Instant, without re-running any analysis: the previous refs recorded when the rollout started are re-assigned in one entry (sites keep the previous generation for this). Only a promoted rollout can be undone; abort a running one. Exit 0 when done.';
  static override examples = [
    '<%= config.bin %> rollout undo',
    '<%= config.bin %> rollout undo support-1.1.0-ab12 --json',
  ];
  static override args = rolloutIdArgs;
  static override flags = {
    ...rolloutWriterFlags,
    reason: reasonFlag,
  };

  public async run(): Promise<RolloutReport> {
    const f = this.flags;
    const cfg = this.projectConfig(f.registry);
    const report = await actOnRollout('undo', {
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
