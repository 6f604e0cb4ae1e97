import { Args, Flags } from '@oclif/core';
import { resolve } from 'node:path';
import { BaseCommand } from '../../src/cli/base-command.js';
import { keyFlag, registryFlag, trustFlag } from '../../src/cli/flags.js';
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
    const report = await actOnRollout('abort', {
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
