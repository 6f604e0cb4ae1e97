import { Flags } from '@oclif/core';
import { BaseCommand } from '../../src/cli/base-command.js';
import { registryFlag, trustFlag } from '../../src/cli/flags.js';
import { fleetLog } from '../../src/fleet/service.js';
import type { FleetLogResult } from '../../src/fleet/log.js';

export default class FleetLog extends BaseCommand<typeof FleetLog> {
  static override needsFleetRepository = 'registry' as const;
  static override summary = 'List the verified entries of the fleet log.';
  static override description =
    "Reads fleet/head.json and the entries up to it, verifies each signature against the trust root's fleet role " +
    'and that they chain, and prints one block per entry: seq, time, signing key id and a summary of its ops.';
  static override examples = ['<%= config.bin %> fleet log', '<%= config.bin %> fleet log --since 40 --json'];
  static override flags = {
    registry: registryFlag,
    trust: trustFlag,
    since: Flags.integer({ summary: 'Only entries after this seq.', min: 0, default: 0 }),
  };

  public async run(): Promise<FleetLogResult> {
    const cfg = this.projectConfig(this.flags.registry);
    const result = await fleetLog({
      registryUrl: cfg.registry,
      trustPath: cfg.trustPath,
      since: this.flags.since,
    });
    if (!result.head) {
      this.out('The fleet log is empty (no head yet): run `edgectl site apply`.');
      return result;
    }
    const h = result.head;
    this.out(
      `Head: seq ${h.seq}, snapshot ${h.snapshotSeq ?? 'none'}, expires ${h.expires}${h.expired ? ' (EXPIRED)' : ''}`,
    );
    for (const e of result.entries) {
      this.out(
        `#${e.seq}  ${e.time}  signed by ${e.keyids.join(', ')}  ${e.opCount} op${e.opCount === 1 ? '' : 's'}`,
      );
      for (const op of e.ops) this.out(`    ${op}`);
    }
    return result;
  }
}
