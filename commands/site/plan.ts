import { Flags } from '@oclif/core';
import { BaseCommand } from '../../src/cli/base-command.js';
import { registryFlag, trustFlag } from '../../src/cli/flags.js';
import { renderPlan } from '../../src/fleet/plan.js';
import { planSites, type SitePlanResult } from '../../src/fleet/service.js';

export default class SitePlan extends BaseCommand<typeof SitePlan> {
  static override needsFleetRepository = 'registry' as const;
  static override summary = 'Show how the fleet log would change to match sites/*.yaml.';
  static override description =
    'Reads and verifies the fleet head, snapshot and entries from the registry, resolves every assigned ref to its ' +
    'signed manifest, and prints the per-site diff (+ added, ~ changed, - removed) and the ops `site apply` would ' +
    'write. Writes nothing. With --detailed-exitcode (as terraform plan does): exit 0 when there is nothing to ' +
    'change, 2 when there is, and 1 for any error (invalid input included), so CI can tell the three apart.';
  static override examples = [
    '<%= config.bin %> site plan',
    '<%= config.bin %> site plan --detailed-exitcode --json',
    '<%= config.bin %> site plan --registry s3://fleet-registry/prod',
  ];
  static override flags = {
    registry: registryFlag,
    trust: trustFlag,
    'detailed-exitcode': Flags.boolean({
      summary: 'Exit 2 when there are changes, 0 when there are none, 1 on any error.',
    }),
  };

  public async run(): Promise<SitePlanResult> {
    const cfg = this.projectConfig(this.flags.registry);
    const result = await planSites({
      registryUrl: cfg.registry,
      trustPath: cfg.trustPath,
      sitesDir: cfg.sitesDir,
    });
    if (result.headExpired) this.io.log('warn', 'the fleet head has expired; `site apply` will re-sign it');
    this.out(`Fleet at seq ${result.seq} (${result.registry}).`);
    for (const line of renderPlan(result)) this.out(line);
    return result;
  }

  /** Not an error: the result is still printed, only the exit code says "changes pending". */
  protected override exitCodeOf(result: SitePlanResult): number | undefined {
    return this.flags['detailed-exitcode'] && result.changes ? 2 : undefined;
  }

  /** With --detailed-exitcode, exit 2 means "changes", so every error (even invalid input) exits 1. */
  protected override exitCodeOfError(code: number): number {
    return this.flags?.['detailed-exitcode'] && code !== 0 ? 1 : code;
  }
}
