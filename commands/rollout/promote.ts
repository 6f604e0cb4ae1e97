import { Args, Flags } from '@oclif/core';
import { resolve } from 'node:path';
import { BaseCommand } from '../../src/cli/base-command.js';
import { keyFlag, registryFlag, trustFlag } from '../../src/cli/flags.js';
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
  static override args = {
    id: Args.string({ required: false, description: 'Rollout id (default: the single active rollout).' }),
  };
  static override flags = {
    registry: registryFlag,
    trust: trustFlag,
    key: keyFlag,
    reason: Flags.string({ summary: 'Why (recorded in the fleet log).', helpValue: '<text>' }),
    full: Flags.boolean({ summary: 'Promote to every selected site and end the rollout.' }),
  };

  public async run(): Promise<RolloutReport> {
    const f = this.flags;
    const cfg = this.projectConfig(f.registry);
    const report = await actOnRollout(f.full ? 'promote-full' : 'promote', {
      registryUrl: cfg.registry,
      trustPath: cfg.trustPath,
      keyPath: f.key ? resolve(f.key) : cfg.keys.fleet,
      io: this.io,
      ...(this.args.id ? { id: this.args.id } : {}),
      ...(f.reason ? { reason: f.reason } : {}),
    });
    for (const line of renderReport(report)) this.out(line);
    return report;
  }
}
