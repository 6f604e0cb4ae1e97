import { BaseCommand } from '../../src/cli/base-command.js';
import { trustFlag } from '../../src/cli/flags.js';
import { showTrust, type TrustSummary } from '../../src/registry/trust-files.js';

export default class TrustShow extends BaseCommand<typeof TrustShow> {
  static override summary = 'Show the trust root: version, expiry, and the keys and threshold of each role.';
  static override description =
    "Verifies the file's own root signatures (exit 4 if they do not verify) and shows it even when expired, " +
    'with expired: true; renew an expired root with `edgectl trust rotate`.';
  static override examples = [
    '<%= config.bin %> trust show',
    '<%= config.bin %> trust show --trust trust/root.json --json',
  ];
  static override flags = { trust: trustFlag };

  public async run(): Promise<TrustSummary> {
    const cfg = this.projectConfig();
    const summary = showTrust(cfg.trustPath, new Date());
    this.out(`Trust root ${summary.path}`);
    this.out(`  version: ${summary.version}`);
    this.out(
      `  expires: ${summary.expires}${summary.expired ? '  (EXPIRED: run `edgectl trust rotate`)' : ''}`,
    );
    for (const [role, r] of Object.entries(summary.roles))
      this.out(`  ${role}: ${r.threshold} of ${r.keyids.join(', ')}`);
    if (summary.revoked.length) this.out(`  revoked: ${summary.revoked.join(', ')}`);
    return summary;
  }
}
