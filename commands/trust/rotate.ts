import { Flags } from '@oclif/core';
import { resolve } from 'node:path';
import { BaseCommand } from '../../src/cli/base-command.js';
import { parseExpiry } from '../../src/foundation/duration.js';
import { rotateTrustFile, type RotateResult } from '../../src/registry/trust-files.js';

export default class TrustRotate extends BaseCommand<typeof TrustRotate> {
  static override summary = 'Write the next version of the trust root: new keys, thresholds or expiry.';
  static override description =
    "Version N+1 must be signed by a threshold of version N's root keys (--key) and of its own root keys " +
    '(--new-key, or the unchanged root keys). Without --new-key the root keys stay the same; --artifacts-key and ' +
    "--fleet-key replace those roles' keys. Also use it to renew an expiring or expired root. Then run " +
    '`edgectl registry init` to publish the new version; sites walk from their pinned version to it.';
  static override examples = [
    '<%= config.bin %> trust rotate --key keys/root.key --expires 365d',
    '<%= config.bin %> trust rotate --key keys/root.key --new-key keys/root2.key',
    '<%= config.bin %> trust rotate --key keys/root.key --artifacts-key keys/artifacts2.key.pub',
    '<%= config.bin %> trust rotate --key keys/root.key --fleet-key keys/fleet2.key.pub --revoke keys/fleet.key.pub',
  ];
  static override flags = {
    trust: Flags.string({
      summary: 'Trust root file (default: trust/root.json of the project).',
      aliases: ['root'],
      helpValue: '<path>',
    }),
    key: Flags.string({
      summary: 'Current root secret key file (repeatable).',
      multiple: true,
      helpValue: '<path>',
    }),
    'new-key': Flags.string({
      summary: 'Secret key file of the new root keys (repeatable; replaces the root role).',
      multiple: true,
      helpValue: '<path>',
    }),
    'artifacts-key': Flags.string({
      summary: 'New artifacts role key file (repeatable).',
      multiple: true,
      helpValue: '<path>',
    }),
    'fleet-key': Flags.string({
      summary: 'New fleet role key file (repeatable).',
      multiple: true,
      helpValue: '<path>',
    }),
    revoke: Flags.string({
      summary:
        'Revoke a compromised key (key id or key file; repeatable): removed from every role, its signatures stop counting.',
      multiple: true,
      helpValue: '<keyid|path>',
    }),
    threshold: Flags.integer({ summary: 'New root threshold (default: unchanged).', min: 1 }),
    'artifacts-threshold': Flags.integer({
      summary: 'New artifacts threshold (default: unchanged).',
      min: 1,
    }),
    'fleet-threshold': Flags.integer({ summary: 'New fleet threshold (default: unchanged).', min: 1 }),
    expires: Flags.string({
      summary: 'Validity of the new version: a duration (365d) or an ISO time.',
      default: '365d',
      helpValue: '<duration|time>',
    }),
  };

  public async run(): Promise<RotateResult> {
    const cfg = this.projectConfig();
    const now = new Date();
    const f = this.flags;
    const current = f.key?.length ? f.key : cfg.keys.root ? [cfg.keys.root] : [];
    const thresholds = {
      ...(f.threshold !== undefined ? { root: f.threshold } : {}),
      ...(f['artifacts-threshold'] !== undefined ? { artifacts: f['artifacts-threshold'] } : {}),
      ...(f['fleet-threshold'] !== undefined ? { fleet: f['fleet-threshold'] } : {}),
    };
    const result = rotateTrustFile({
      path: cfg.trustPath,
      currentKeyPaths: current.map((p) => resolve(p)),
      newKeyPaths: (f['new-key'] ?? []).map((p) => resolve(p)),
      artifactsKeyPaths: (f['artifacts-key'] ?? []).map((p) => resolve(p)),
      fleetKeyPaths: (f['fleet-key'] ?? []).map((p) => resolve(p)),
      thresholds,
      revoke: (f.revoke ?? []).map((k) => (k.startsWith('sha256:') ? k : resolve(k))),
      expires: parseExpiry(f.expires, now),
      now,
    });
    this.out(
      `Rotated trust root ${result.path}: version ${result.previousVersion} -> ${result.version} (expires ${result.expires}).`,
    );
    for (const [role, r] of Object.entries(result.roles))
      this.out(`  ${role}: ${r.threshold} of ${r.keyids.join(', ')}`);
    if (result.revoked.length) this.out(`  revoked: ${result.revoked.join(', ')}`);
    this.out('Next: `edgectl registry init` publishes the new version (docs/operations.md "Key rotation").');
    return result;
  }
}
