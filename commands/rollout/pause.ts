import { BaseCommand } from '../../src/cli/base-command.js';
import {
  reasonFlag,
  rolloutIdArgs,
  rolloutWriterFlags,
  rolloutWriterTarget,
} from '../../src/cli/rollout-command.js';
import { renderReport } from '../../src/rollout/render.js';
import { actOnRollout, type RolloutReport } from '../../src/rollout/service.js';

export default class RolloutPause extends BaseCommand<typeof RolloutPause> {
  static override summary =
    'Pause a running rollout: no more judgements, promotions or rollbacks until resumed.';
  static override description =
    'The canary sites keep the candidate while paused. `rollout resume` continues (its timeouts restart), `rollout abort` rolls back. Exit 0 when done.';
  static override examples = ['<%= config.bin %> rollout pause --reason "holiday freeze"'];
  static override args = rolloutIdArgs;
  static override flags = {
    ...rolloutWriterFlags,
    reason: reasonFlag,
  };

  public async run(): Promise<RolloutReport> {
    const f = this.flags;
    const cfg = this.projectConfig(f.registry);
    const report = await actOnRollout('pause', {
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
