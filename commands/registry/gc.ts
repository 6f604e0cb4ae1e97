import { Flags } from '@oclif/core';
import { BaseCommand } from '../../src/cli/base-command.js';
import { durationFlag, registryFlag } from '../../src/cli/flags.js';
import { formatBytes } from '../../src/foundation/output.js';
import { DEFAULT_GC_GRACE_MS, type GcResult } from '../../src/artifact/gc.js';
import { gcRegistryAt } from '../../src/artifact/service.js';

export default class RegistryGc extends BaseCommand<typeof RegistryGc> {
  static override summary = 'Delete blobs that no artifact manifest references.';
  static override description =
    'Marks every blob listed by any manifest, then deletes unreferenced blobs last modified more than --grace ago ' +
    '(default 24h). The grace period protects publishes in progress: they upload packs first and write their ' +
    'manifest last, so a publish that takes less than the grace period never loses a pack. A referenced blob is ' +
    'never deleted; if any manifest cannot be read, nothing is deleted.';
  static override examples = [
    '<%= config.bin %> registry gc --dry-run',
    '<%= config.bin %> registry gc --grace 7d --json',
  ];
  static override flags = {
    registry: registryFlag,
    'dry-run': Flags.boolean({ summary: 'Report what would be deleted; delete nothing.' }),
    grace: durationFlag({
      summary:
        'Keep unreferenced blobs younger than this (e.g. 24h, 7d; 0 = no grace, unsafe during a publish).',
      default: '24h',
      allowZero: true,
      helpValue: false,
    }),
  };

  public async run(): Promise<GcResult> {
    const cfg = this.projectConfig(this.flags.registry);
    const graceMs = this.flags.grace;
    if (graceMs < DEFAULT_GC_GRACE_MS && graceMs > 0) {
      this.io.log(
        'warn',
        `grace ${this.flagText('grace', '24h')} is shorter than the default 24h: a slow publish could lose a pack`,
      );
    }
    if (graceMs === 0) this.io.log('warn', 'no grace period: do not run this while a publish is in progress');
    const r = await gcRegistryAt(
      { registryUrl: cfg.registry, io: this.io },
      { dryRun: this.flags['dry-run'], graceMs },
    );
    this.out(
      `${r.dryRun ? 'Would delete' : 'Deleted'} ${r.deleted} unreferenced blob(s), ${formatBytes(r.bytesFreed)}; ` +
        `kept ${r.referenced} referenced by ${r.manifests} manifest(s) and ${r.keptYoung} younger than the grace period.`,
    );
    return r;
  }
}
