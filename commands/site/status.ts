import { BaseCommand } from '../../src/cli/base-command.js';
import { siteDataDirFlag, siteNameArg } from '../../src/cli/flags.js';
import { describeStatus, resolveSiteDataDir } from '../../src/site/service.js';
import { siteStatus, type SiteStatus } from '../../src/site/status.js';

export default class SiteStatusCommand extends BaseCommand<typeof SiteStatusCommand> {
  static override summary = 'Show what a site serves: applied seq, generation, artifacts, freshness, drift.';
  static override description =
    "Reads the site's data directory only (no registry request): the applied fleet seq, the current and previous " +
    'generations and their artifacts, whether current is what the fleet assigns (or pinned by `site rollback`), ' +
    "the last sync attempt, freshness (past the fleet head's expiry the site is frozen: it keeps serving but " +
    'installs nothing new) and drift of the current generation (size and mtime check now, plus what the last sync ' +
    'repaired).';
  static override examples = [
    '<%= config.bin %> site status store-001',
    '<%= config.bin %> site status store-001 --data-dir /var/lib/edgectl/store-001 --json',
  ];
  static override args = {
    name: siteNameArg,
  };
  static override flags = {
    'data-dir': siteDataDirFlag,
  };

  public async run(): Promise<SiteStatus> {
    const cfg = this.projectConfig();
    const status = await siteStatus({
      site: this.args.name,
      dataDir: resolveSiteDataDir(cfg.root, this.args.name, this.flags['data-dir']),
    });
    for (const line of describeStatus(status)) this.out(line);
    return status;
  }
}
