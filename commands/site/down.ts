import { BaseCommand } from '../../src/cli/base-command.js';
import { durationFlag, siteDataDirFlag, siteNameArg } from '../../src/cli/flags.js';
import type { DaemonStopResult } from '../../src/supervisor/stop.js';
import { stopSiteDaemon } from '../../src/runtime/daemon/client.js';
import { resolveSiteDataDir } from '../../src/site/service.js';

export default class SiteDown extends BaseCommand<typeof SiteDown> {
  static override summary = 'Stop the site daemon started by `site up`.';
  static override description =
    'Sends SIGTERM: the daemon stops syncing, lets in-flight streams finish, spools the open feedback window and ' +
    'tries one last upload. Past --timeout it is killed (SIGKILL); anything spooled is uploaded at the next start. ' +
    'Stopping a site that is not running is not an error; a stale pid file is removed.';
  static override examples = [
    '<%= config.bin %> site down store-001',
    '<%= config.bin %> site down store-001 --timeout 30s --json',
  ];
  static override args = { name: siteNameArg };
  static override flags = {
    'data-dir': siteDataDirFlag,
    timeout: durationFlag({ summary: 'Grace period after SIGTERM before SIGKILL.', default: '30s' }),
  };

  public async run(): Promise<DaemonStopResult> {
    const site = this.args.name;
    const dataDir = resolveSiteDataDir(this.projectConfig().root, site, this.flags['data-dir']);
    const r = await stopSiteDaemon(dataDir, this.flags.timeout, this.io);
    const messages: Record<DaemonStopResult['status'], string> = {
      stopped: `Site ${site} stopped (pid ${r.pid}).`,
      killed: `Site ${site} killed after ${this.flagText('timeout', '30s')} (pid ${r.pid}); it did not stop on SIGTERM.`,
      'not-running': `Site ${site} is not running.`,
      'stale-removed': `Site ${site} was not running; removed a stale pid file (pid ${r.pid}).`,
    };
    this.out(messages[r.status]);
    return r;
  }
}
