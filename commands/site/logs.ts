import { existsSync, statSync } from 'node:fs';
import { Flags } from '@oclif/core';
import { BaseCommand } from '../../src/cli/base-command.js';
import { NotFoundError } from '../../src/foundation/errors.js';
import { siteDataDirFlag, siteNameArg } from '../../src/cli/flags.js';
import { followLog, siteLogFile, siteLogTail } from '../../src/runtime/daemon/client.js';
import { resolveSiteDataDir } from '../../src/site/service.js';

export interface SiteLogsResult {
  site: string;
  logFile: string;
  lines: string[];
}

export default class SiteLogs extends BaseCommand<typeof SiteLogs> {
  static override summary = "Show the site daemon's log (<data-dir>/run/site.log).";
  static override description =
    'Prints the last -n lines of the log the detached daemon writes (timestamped lines: syncs, generation ' +
    'switches, feedback uploads, errors). With -f it keeps printing what is appended until Ctrl-C. A daemon run ' +
    'with --foreground logs to its own stderr (journald under systemd) instead.';
  static override examples = [
    '<%= config.bin %> site logs store-001',
    '<%= config.bin %> site logs store-001 -n 200',
    '<%= config.bin %> site logs store-001 -f',
  ];
  static override args = { name: siteNameArg };
  static override flags = {
    'data-dir': siteDataDirFlag,
    follow: Flags.boolean({ char: 'f', summary: 'Keep printing appended lines until interrupted.' }),
    lines: Flags.integer({ char: 'n', summary: 'Lines to show from the end.', default: 50, min: 0 }),
  };

  public async run(): Promise<SiteLogsResult> {
    const site = this.args.name;
    const dataDir = resolveSiteDataDir(this.projectConfig().root, site, this.flags['data-dir']);
    const logFile = siteLogFile(dataDir);
    if (!existsSync(logFile) && !this.flags.follow) {
      throw new NotFoundError(`site ${site} has no daemon log at ${logFile}`, {
        code: 'E_NO_LOG',
        suggestion: `Start the daemon with \`${this.config.bin} site up ${site}\` (a --foreground daemon logs to stderr).`,
      });
    }
    const lines = this.flags.lines === 0 ? [] : siteLogTail(dataDir, this.flags.lines);
    for (const l of lines) this.out(l);
    if (this.flags.follow) {
      const from = existsSync(logFile) ? statSync(logFile).size : 0;
      await followLog(logFile, from, (chunk) => process.stdout.write(chunk), this.signal);
    }
    return { site, logFile, lines };
  }
}
