import { BaseCommand } from '../../src/cli/base-command.js';
import { siteDataDirFlag, siteNameArg } from '../../src/cli/flags.js';
import { rollbackSite, type RollbackResult } from '../../src/site/rollback.js';
import { describeRollback, resolveSiteDataDir } from '../../src/site/service.js';

export default class SiteRollback extends BaseCommand<typeof SiteRollback> {
  static override summary =
    "Switch a site's current generation back to the previous one, locally and at once.";
  static override description =
    'Verifies the previous generation (every file hashed; damaged files repaired from the chunk cache) and swaps ' +
    'the `current` and `previous` pointers; no registry is needed. The rollback is pinned: later syncs keep this ' +
    'generation for as long as the fleet state still assigns this site the same artifacts, and install the new ' +
    'assignment as soon as the fleet changes it. Rolling back again swaps back. For a fleet-wide rollback, change ' +
    'the assignment in sites/*.yaml and `edgectl site apply` instead.';
  static override examples = [
    '<%= config.bin %> site rollback store-001',
    '<%= config.bin %> site rollback store-001 --data-dir /var/lib/edgectl/store-001 --json',
  ];
  static override args = {
    name: siteNameArg,
  };
  static override flags = {
    'data-dir': siteDataDirFlag,
  };

  public async run(): Promise<RollbackResult> {
    const cfg = this.projectConfig();
    const result = await rollbackSite({
      site: this.args.name,
      dataDir: resolveSiteDataDir(cfg.root, this.args.name, this.flags['data-dir']),
      io: this.io,
    });
    for (const line of describeRollback(result)) this.out(line);
    return result;
  }
}
