import { Flags } from '@oclif/core';
import { BaseCommand } from '../../src/cli/base-command.js';
import {
  reasonFlag,
  rolloutIdArgs,
  rolloutWriterFlags,
  rolloutWriterTarget,
} from '../../src/cli/rollout-command.js';
import { renderReport } from '../../src/rollout/render.js';
import { actOnRollout, type RolloutReport } from '../../src/rollout/service.js';

export default class RolloutPromote extends BaseCommand<typeof RolloutPromote> {
  static override summary = 'Advance a rollout to its next wave now, or with --full to every selected site.';
  static override description =
    'Skips the judgement of the current step (a human decision, recorded with who made it). Without --full the next wave is assigned the candidate (a paused rollout is resumed); with --full every selected site is, and the rollout ends as promoted. Exit 0 when done.';
  static override examples = [
    '<%= config.bin %> rollout promote',
    '<%= config.bin %> rollout promote support-1.1.0-ab12 --full --reason "verified by hand"',
  ];
  static override args = rolloutIdArgs;
  static override flags = {
    ...rolloutWriterFlags,
    reason: reasonFlag,
    full: Flags.boolean({ summary: 'Promote to every selected site and end the rollout.' }),
  };

  public async run(): Promise<RolloutReport> {
    const f = this.flags;
    const cfg = this.projectConfig(f.registry);
    const report = await actOnRollout(f.full ? 'promote-full' : 'promote', {
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
