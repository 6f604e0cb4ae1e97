import { Flags } from '@oclif/core';
import { resolve } from 'node:path';
import { BaseCommand } from '../../src/cli/base-command.js';
import { durationFlag, keyFlag, registryFlag, trustFlag } from '../../src/cli/flags.js';
import { resignFleetHead } from '../../src/fleet/service.js';
import type { ResignFleetResult } from '../../src/fleet/resign.js';

export default class FleetResign extends BaseCommand<typeof FleetResign> {
  static override summary = 'Re-sign the fleet head with the current fleet key (after a fleet-key rotation).';
  static override description =
    'Run after `edgectl trust rotate --fleet-key ...` and `edgectl registry init`: sites accept only a head signed by ' +
    "the current trust root's fleet role. The whole log is checked to chain to the head first. Entries and " +
    'snapshots signed by an earlier, unrevoked fleet key stay valid and are left as they are. Objects signed by a ' +
    'revoked key are re-signed in place (same payload, same digests) only with --accept-revoked, after you have ' +
    'checked what that key signed. Signs with the fleet key (--key, keys.fleet, or EDGECTL_SIGNING_KEY).';
  static override examples = [
    '<%= config.bin %> fleet resign',
    '<%= config.bin %> fleet resign --key keys/fleet-2.key --accept-revoked --json',
  ];
  static override flags = {
    registry: registryFlag,
    trust: trustFlag,
    key: keyFlag,
    'accept-revoked': Flags.boolean({
      summary: 'Also re-sign entries and snapshots signed only by a revoked key (you vouch for them).',
    }),
    'head-expires': durationFlag({ summary: 'Lifetime of the signed head (default 7d).' }),
  };

  public async run(): Promise<ResignFleetResult & { registry: string }> {
    const f = this.flags;
    const cfg = this.projectConfig(f.registry);
    const r = await resignFleetHead({
      registryUrl: cfg.registry,
      trustPath: cfg.trustPath,
      keyPath: f.key ? resolve(f.key) : cfg.keys.fleet,
      acceptRevoked: f['accept-revoked'],
      ...(f['head-expires'] !== undefined ? { headTtlMs: f['head-expires'] } : {}),
    });
    if (r.seq === 0) {
      this.out('The fleet log is empty (no head yet): nothing to re-sign.');
      return r;
    }
    this.out(`Re-signed the fleet head (seq ${r.seq}) with the current fleet key.`);
    if (r.entries.length || r.snapshots.length) {
      this.out(
        `  re-signed in place (were signed by a revoked key): ${r.entries.length} entr${r.entries.length === 1 ? 'y' : 'ies'}, ` +
          `${r.snapshots.length} snapshot(s)`,
      );
    }
    if (r.earlierKeyEntries) {
      const n = r.earlierKeyEntries;
      this.out(
        `  ${n} entr${n === 1 ? 'y' : 'ies'} signed by an earlier fleet key, valid through the chain (left as is)`,
      );
    }
    return r;
  }
}
