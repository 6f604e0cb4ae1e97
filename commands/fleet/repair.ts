import { Flags } from '@oclif/core';
import { resolve } from 'node:path';
import { BaseCommand } from '../../src/cli/base-command.js';
import { keyFlag, registryFlag, singleWriterFlag, trustFlag } from '../../src/cli/flags.js';
import type { FleetRepairResult } from '../../src/fleet/repair.js';
import { repairFleetLog } from '../../src/fleet/service.js';

export default class FleetRepair extends BaseCommand<typeof FleetRepair> {
  static override summary = 'Move the fleet head back to the longest valid chain of the fleet log.';
  static override description =
    'Checks every entry of the fleet log from seq 1 (present, signed by the fleet role, chaining, applying to its ' +
    'state digest) and the head and snapshots against that chain. Without --apply it only reports (dry run). With ' +
    '--apply it moves the entries and snapshots that are not on the valid chain to fleet/orphans/ and writes a new ' +
    'head, signed with the fleet key, naming the end of the valid chain. Then run `edgectl site apply` to write again ' +
    'what the dropped entries did. See "Recovering the fleet log" in docs/operations.md.';
  static override examples = [
    '<%= config.bin %> fleet repair',
    '<%= config.bin %> fleet repair --apply --key keys/fleet.key',
    '<%= config.bin %> fleet repair --apply --single-writer --json',
  ];
  static override flags = {
    registry: registryFlag,
    trust: trustFlag,
    key: keyFlag,
    apply: Flags.boolean({ summary: 'Write the repair (default: dry run).', default: false }),
    'single-writer': singleWriterFlag,
  };

  public async run(): Promise<FleetRepairResult> {
    const f = this.flags;
    const cfg = this.projectConfig(f.registry);
    const r = await repairFleetLog({
      registryUrl: cfg.registry,
      trustPath: cfg.trustPath,
      apply: f.apply,
      keyPath: f.key ? resolve(f.key) : cfg.keys.fleet,
      singleWriter: f['single-writer'] || cfg.singleWriter,
      io: this.io,
    });
    for (const p of r.problems)
      this.out(`${p.severity === 'fail' ? 'FAIL' : 'warn'}  seq ${p.seq}: ${p.message}`);
    if (!r.changes) {
      this.out(`The fleet log is valid up to seq ${r.headAfter.seq}: nothing to repair.`);
      return r;
    }
    const verb = r.applied ? 'Moved' : 'Would move';
    const before = r.headBefore ? `seq ${r.headBefore.seq}` : 'none';
    this.out(
      `${verb} the head: ${before} -> seq ${r.headAfter.seq} (snapshot ${r.headAfter.snapshotSeq ?? 'none'}).`,
    );
    for (const d of r.dropped) {
      this.out(
        `${r.applied ? 'Dropped' : 'Would drop'} entry ${d.seq} (${d.digest ?? 'unreadable'}): ${d.reason} -> ${d.orphan}`,
      );
    }
    for (const d of r.droppedSnapshots) {
      this.out(`${r.applied ? 'Dropped' : 'Would drop'} snapshot ${d.seq}: ${d.reason} -> ${d.orphan}`);
    }
    this.out(
      r.applied
        ? 'Repaired. Run `edgectl site apply` to write again what the dropped entries changed.'
        : 'Dry run: nothing written. Run again with --apply to repair.',
    );
    return r;
  }
}
