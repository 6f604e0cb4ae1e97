import { Flags } from '@oclif/core';
import { resolve } from 'node:path';
import { BaseCommand } from '../../src/cli/base-command.js';
import { durationFlag, keyFlag, registryFlag, singleWriterFlag, trustFlag } from '../../src/cli/flags.js';
import { renderPlan } from '../../src/fleet/plan.js';
import { applySites } from '../../src/fleet/service.js';
import { DEFAULT_SNAPSHOT_EVERY } from '../../src/fleet/snapshot.js';
import type { ApplyFleetResult } from '../../src/fleet/apply.js';

export default class SiteApply extends BaseCommand<typeof SiteApply> {
  static override summary = 'Append the planned changes to the fleet log and move the head.';
  static override description =
    'Plans like `site plan`, then writes the next signed fleet entry (create-only), a snapshot every ' +
    '--snapshot-every entries, and moves fleet/head.json with compare-and-swap. Nothing to change: nothing is ' +
    'written, except that a head past half its lifetime is re-signed so sites never see it expire. If another ' +
    'apply wins a race the command fails with a retryable conflict (exit 1) and writes nothing of its own; ' +
    '--retries re-plans and tries again. On a registry that does not enforce conditional writes the command is ' +
    'refused (exit 2) unless --single-writer (or singleWriter: true in edgectl.yaml) takes the lease fleet/lease.json. Signs with the fleet key (--key, keys.fleet in edgectl.yaml, or ' +
    'EDGECTL_SIGNING_KEY).';
  static override examples = [
    '<%= config.bin %> site apply --key keys/fleet.key',
    '<%= config.bin %> site apply --retries 3 --json',
    'EDGECTL_SIGNING_KEY="$FLEET_KEY" <%= config.bin %> site apply --registry s3://fleet-registry/prod',
  ];
  static override flags = {
    registry: registryFlag,
    trust: trustFlag,
    key: keyFlag,
    'single-writer': singleWriterFlag,
    retries: Flags.integer({
      summary: 'Retry this many times when another apply wins a race.',
      default: 0,
      min: 0,
    }),
    'snapshot-every': Flags.integer({
      summary: `Write a snapshot every N entries (default ${DEFAULT_SNAPSHOT_EVERY}).`,
      min: 1,
    }),
    'head-expires': durationFlag({ summary: 'Lifetime of the signed head (default 7d).' }),
  };

  public async run(): Promise<ApplyFleetResult & { registry: string }> {
    const f = this.flags;
    const cfg = this.projectConfig(f.registry);
    const result = await applySites({
      registryUrl: cfg.registry,
      trustPath: cfg.trustPath,
      sitesDir: cfg.sitesDir,
      keyPath: f.key ? resolve(f.key) : cfg.keys.fleet,
      retries: f.retries,
      singleWriter: f['single-writer'] || cfg.singleWriter,
      ...(f['snapshot-every'] !== undefined ? { snapshotEvery: f['snapshot-every'] } : {}),
      ...(f['head-expires'] !== undefined ? { headTtlMs: f['head-expires'] } : {}),
      io: this.io,
    });
    for (const line of renderPlan(result)) this.out(line);
    if (result.ops.length > 0) {
      this.out(
        `Applied: fleet seq ${result.previousSeq} -> ${result.seq}${result.snapshot ? ' (snapshot written)' : ''}.`,
      );
    } else if (result.headMoved) {
      this.out(`Re-signed the fleet head at seq ${result.seq}.`);
    }
    return result;
  }
}
