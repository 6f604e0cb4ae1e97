import { resolve } from 'node:path';
import { Flags } from '@oclif/core';
import { BaseCommand } from '../../src/cli/base-command.js';
import { siteNameArg } from '../../src/cli/flags.js';
import {
  describeInstallUnit,
  docsUrl,
  edgectlExec,
  installUnit,
  type InstallUnitResult,
} from '../../src/supervisor/install-unit.js';
import { parseListen } from '../../src/runtime/daemon/listen.js';

export default class SiteInstallUnit extends BaseCommand<typeof SiteInstallUnit> {
  static override summary = 'Print (or write with --out) a hardened systemd unit that runs a site daemon.';
  static override description =
    'The unit runs `site up <name> --foreground` with the Node and edgectl running this command, as a dedicated ' +
    'user (--user, default edgectl), with the data directory as its only writable path (a StateDirectory when it is ' +
    'under /var/lib), Type=notify readiness (the daemon runs systemd-notify once it serves), restart on failure and ' +
    'a sandbox rated below 4.0 by `systemd-analyze security`. The project directory (edgectl.yaml: registry, trust ' +
    'root) is its working directory; EDGECTL_SITE_TOKEN and AWS_* go in the --env-file. Printing needs no root.';
  static override examples = [
    '<%= config.bin %> site install-unit store-001',
    '<%= config.bin %> site install-unit store-001 --listen 0.0.0.0:8081 --out /etc/systemd/system/edgectl-site-store-001.service',
  ];
  static override args = { name: siteNameArg };
  static override flags = {
    out: Flags.string({
      summary: 'Write the unit to this file instead of printing it.',
      helpValue: '<file>',
    }),
    user: Flags.string({
      summary: 'System user the daemon runs as.',
      default: 'edgectl',
      helpValue: '<user>',
    }),
    'data-dir': Flags.string({
      summary: "The site's data directory on the machine (default: /var/lib/edgectl/<name>).",
      helpValue: '<dir>',
    }),
    'env-file': Flags.string({
      summary: 'Environment file for the token and credentials (default: /etc/edgectl/site-<name>.env).',
      helpValue: '<file>',
    }),
    listen: Flags.string({
      summary: "Address to serve on (default: the declaration's runtime.listen).",
      helpValue: '<host:port>',
    }),
  };

  public async run(): Promise<InstallUnitResult> {
    const { name } = this.args;
    const f = this.flags;
    if (f.listen) parseListen(f.listen);
    const dataDir = resolve(f['data-dir'] ?? `/var/lib/edgectl/${name}`);
    const args = ['site', 'up', name, '--foreground', '--data-dir', dataDir];
    if (f.listen) args.push('--listen', f.listen);
    const r = installUnit(
      `edgectl-site-${name}.service`,
      {
        description: `edgectl site ${name}: sync loop and OpenAI-compatible API`,
        documentation: docsUrl(),
        exec: edgectlExec(args),
        workingDirectory: this.projectConfig().root,
        dataDir,
        user: f.user,
        environmentFile: resolve(f['env-file'] ?? `/etc/edgectl/site-${name}.env`),
        // --drain (10 s) plus the feedback flush (5 s), with room to spare.
        stopTimeoutSec: 30,
      },
      f.out,
    );
    if (this.human) process.stdout.write(describeInstallUnit(r));
    return r;
  }
}
