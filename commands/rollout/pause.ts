import { Args, Flags } from '@oclif/core';
import { resolve } from 'node:path';
import { BaseCommand } from '../../src/cli/base-command.js';
import { keyFlag, registryFlag, trustFlag } from '../../src/cli/flags.js';
import { renderReport } from '../../src/rollout/render.js';
import { actOnRollout, type RolloutReport } from '../../src/rollout/service.js';

export default class RolloutPause extends BaseCommand<typeof RolloutPause> {
  static override summary =
    'Pause a running rollout: no more judgements, promotions or rollbacks until resumed.';
  static override description =
    'The canary sites keep the candidate while paused. `rollout resume` continues (its timeouts restart), `rollout abort` rolls back. Exit 0 when done.';
  static override examples = ['<%= config.bin %> rollout pause --reason "holiday freeze"'];
  static override args = {
    id: Args.string({ required: false, description: 'Rollout id (default: the single active rollout).' }),
  };
  static override flags = {
    registry: registryFlag,
    trust: trustFlag,
    key: keyFlag,
    reason: Flags.string({ summary: 'Why (recorded in the fleet log).', helpValue: '<text>' }),
  };

  public async run(): Promise<RolloutReport> {
    const f = this.flags;
    const cfg = this.projectConfig(f.registry);
    const report = await actOnRollout('pause', {
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
