import { Flags } from '@oclif/core';
import { BaseCommand } from '../../src/cli/base-command.js';
import { UserError } from '../../src/foundation/errors.js';
import { siteDataDirFlag, siteNameArg } from '../../src/cli/flags.js';
import { isInteractive } from '../../src/foundation/output.js';
import { SITE_TOKEN_ENV, readSiteDaemon, type SiteDaemonView } from '../../src/runtime/daemon/client.js';
import { describeStatus, resolveSiteDataDir } from '../../src/site/service.js';
import { siteStatus, type SiteStatus } from '../../src/site/status.js';
import { describeDaemon } from '../../src/ui/site-status-format.js';

export type SiteStatusResult = SiteStatus & {
  /** The site daemon: run files, process check and its `/v1/status` when it runs. */
  daemon: {
    state: SiteDaemonView['daemon']['state'];
    pid: number | null;
    url: string | null;
    healthy: boolean | null;
    logFile: string;
    status: SiteDaemonView['status'];
    error: string | null;
  };
};

export default class SiteStatusCommand extends BaseCommand<typeof SiteStatusCommand> {
  static override summary = 'Show what a site serves: applied seq, generation, artifacts, freshness, drift.';
  static override description =
    "Reads the site's data directory (no registry request): the applied fleet seq, the current and previous " +
    'generations and their artifacts, whether current is what the fleet assigns (or pinned by `site rollback`), ' +
    "the last sync attempt, freshness (past the fleet head's expiry the site is frozen: it keeps serving but " +
    'installs nothing new) and drift of the current generation (size and mtime check now, plus what the last sync ' +
    'repaired). When the site daemon runs (`site up`), its /v1/status is included: sync state, the generation ' +
    'serving, requests by route, acceptance, TTFT p95, verifier health and feedback uploads. --watch shows these ' +
    'live, refreshed every second (plain lines when stdout is not a terminal).';
  static override examples = [
    '<%= config.bin %> site status store-001',
    '<%= config.bin %> site status store-001 --watch',
    '<%= config.bin %> site status store-001 --data-dir /var/lib/edgectl/store-001 --json',
  ];
  static override args = {
    name: siteNameArg,
  };
  static override flags = {
    'data-dir': siteDataDirFlag,
    watch: Flags.boolean({
      char: 'w',
      summary: "Live view of the running daemon's status (q or Ctrl-C quits).",
    }),
    interval: Flags.integer({
      summary: 'Refresh interval of --watch in milliseconds.',
      default: 1000,
      min: 100,
      helpValue: '<ms>',
    }),
    token: Flags.string({
      summary: 'Bearer token of a daemon listening on a non-loopback address.',
      env: SITE_TOKEN_ENV,
      helpValue: '<token>',
    }),
  };

  public async run(): Promise<SiteStatusResult | undefined> {
    const cfg = this.projectConfig();
    const site = this.args.name;
    const dataDir = resolveSiteDataDir(cfg.root, site, this.flags['data-dir']);
    if (this.flags.watch) {
      if (this.jsonEnabled()) {
        throw new UserError('--watch and --json cannot be combined', {
          suggestion: "Poll `site status --json` instead, or read the daemon's /v1/status.",
        });
      }
      const { watchSiteStatus } = await import('../../src/ui/site-status-view.js');
      await watchSiteStatus({
        poll: async () => ({ site, at: new Date(), view: await readSiteDaemon(dataDir, this.flags.token) }),
        interactive: isInteractive(process.stdout),
        intervalMs: this.flags.interval,
        signal: this.signal,
      });
      return undefined;
    }
    const status = await siteStatus({ site, dataDir });
    const view = await readSiteDaemon(dataDir, this.flags.token);
    for (const line of describeStatus(status)) this.out(line);
    for (const line of describeDaemon(view)) this.out(line);
    return {
      ...status,
      daemon: {
        state: view.daemon.state,
        pid: view.daemon.pid ?? null,
        url: view.daemon.url ?? null,
        healthy: view.daemon.healthy ?? null,
        logFile: view.daemon.logFile,
        status: view.status,
        error: view.error,
      },
    };
  }
}
