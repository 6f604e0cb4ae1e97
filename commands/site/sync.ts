import { Flags } from '@oclif/core';
import { BaseCommand } from '../../src/cli/base-command.js';
import { durationFlag, registryFlag, trustFlag, siteDataDirFlag, siteNameArg } from '../../src/cli/flags.js';
import type { LoopSummary } from '../../src/site/agent.js';
import { describeDrift, describeSync, resolveSiteDataDir, syncSite } from '../../src/site/service.js';
import type { SyncResult } from '../../src/site/sync.js';

export default class SiteSync extends BaseCommand<typeof SiteSync> {
  static override summary = "Bring a site's data directory to what the signed fleet state assigns it.";
  static override description =
    'Polls fleet/head.json with a conditional GET (no change: one request, no body), verifies the head, entries or ' +
    'snapshot under the trust root (walked from the pinned root in the data directory), fetches and verifies the ' +
    'assigned manifests and their missing chunks (policies, then adapters, then models), builds a new generation ' +
    'with every file hash-checked, and switches `current` atomically (the old one stays as `previous`). Drifted ' +
    'files of the current generation are repaired first. A verification failure (tampering, rollback, fork, ' +
    'expired head = freeze, a deleted head, an object over its size cap, a pack of another size than its ' +
    'manifest says) exits 4 and changes nothing. An unreachable registry is not an error: the result says ' +
    '"offline": true, a warning goes to stderr, the exit code is 0 and the current generation keeps serving. ' +
    'Without --once, syncs every --interval until SIGINT or SIGTERM.';
  static override examples = [
    '<%= config.bin %> site sync store-001 --once',
    '<%= config.bin %> site sync store-001 --interval 30s --data-dir /var/lib/edgectl/store-001',
    '<%= config.bin %> site sync store-001 --once --verify-all --json',
  ];
  static override args = {
    name: siteNameArg,
  };
  static override flags = {
    'data-dir': siteDataDirFlag,
    registry: registryFlag,
    trust: trustFlag,
    once: Flags.boolean({ summary: 'Sync once and exit (default: loop until interrupted).' }),
    interval: durationFlag({ summary: 'Time between syncs in the loop.', default: '10s' }),
    'verify-all': Flags.boolean({
      summary: 'Hash every installed file for drift, not only those whose size or mtime changed.',
    }),
    concurrency: Flags.integer({
      summary: 'Ranged GETs in flight while fetching chunks.',
      min: 1,
      default: 4,
    }),
  };

  public async run(): Promise<SyncResult | LoopSummary> {
    const f = this.flags;
    const cfg = this.projectConfig(f.registry);
    return syncSite({
      site: this.args.name,
      dataDir: resolveSiteDataDir(cfg.root, this.args.name, f['data-dir']),
      registryUrl: cfg.registry,
      projectTrustPath: cfg.trustPath,
      io: this.io,
      verifyAll: f['verify-all'],
      concurrency: f.concurrency,
      once: f.once,
      intervalMs: f.interval,
      // Only the loop listens for Ctrl-C; a single sync keeps Node's default (exit at once).
      ...(f.once ? {} : { signal: this.signal }),
      onSync: (r) => {
        for (const w of r.warnings) this.io.log('warn', w);
        this.out(describeSync(r));
        for (const line of describeDrift(r)) this.out(line);
      },
    });
  }
}
