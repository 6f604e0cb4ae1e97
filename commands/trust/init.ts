import { Flags } from '@oclif/core';
import { resolve } from 'node:path';
import { BaseCommand } from '../../src/cli/base-command.js';
import { parseExpiry } from '../../src/foundation/duration.js';
import { initTrustFile, type TrustSummary } from '../../src/registry/trust-files.js';

export default class TrustInit extends BaseCommand<typeof TrustInit> {
  static override summary = 'Create the trust root (version 1) signed by the root key.';
  static override description =
    'The trust root lists the keys of three roles: root (signs trust roots), artifacts (signs manifests) and fleet ' +
    '(signs fleet log entries, snapshots and the head). One key may hold every role. Keys default to keys.root, ' +
    'keys.artifacts and keys.fleet of edgectl.yaml; the root key may also come from EDGECTL_SIGNING_KEY. ' +
    'The root is written to trust/root.json (and archived as trust/root/1.json); publish it with `registry init`.';
  static override examples = [
    '<%= config.bin %> trust init --key keys/root.key',
    '<%= config.bin %> trust init --key keys/root.key --artifacts-key keys/artifacts.key.pub --fleet-key keys/fleet.key.pub --expires 365d',
    '<%= config.bin %> trust init --key keys/r1.key --key keys/r2.key --threshold 2',
  ];
  static override flags = {
    key: Flags.string({ summary: 'Root secret key file (repeatable).', multiple: true, helpValue: '<path>' }),
    'artifacts-key': Flags.string({
      summary: 'Key file (public or secret) of the artifacts role (repeatable; default: the root keys).',
      multiple: true,
      helpValue: '<path>',
    }),
    'fleet-key': Flags.string({
      summary: 'Key file (public or secret) of the fleet role (repeatable; default: the root keys).',
      multiple: true,
      helpValue: '<path>',
    }),
    threshold: Flags.integer({ summary: 'Signatures required from root keys.', min: 1, default: 1 }),
    'artifacts-threshold': Flags.integer({
      summary: 'Signatures required from artifacts keys.',
      min: 1,
      default: 1,
    }),
    'fleet-threshold': Flags.integer({ summary: 'Signatures required from fleet keys.', min: 1, default: 1 }),
    expires: Flags.string({
      summary: 'Validity: a duration (365d, 12h) or an ISO time.',
      default: '365d',
      helpValue: '<duration|time>',
    }),
    out: Flags.string({
      summary: 'Trust root file (default: trust/root.json of the project).',
      helpValue: '<path>',
    }),
    force: Flags.boolean({
      summary: 'Replace an existing trust root (sites pinned to it will refuse the new one).',
    }),
  };

  public async run(): Promise<TrustSummary> {
    const cfg = this.projectConfig();
    const now = new Date();
    const f = this.flags;
    const rootKeys = f.key?.length ? f.key : cfg.keys.root ? [cfg.keys.root] : [];
    const artifacts = f['artifacts-key']?.length
      ? f['artifacts-key']
      : cfg.keys.artifacts
        ? [cfg.keys.artifacts]
        : [];
    const fleet = f['fleet-key']?.length ? f['fleet-key'] : cfg.keys.fleet ? [cfg.keys.fleet] : [];
    const summary = initTrustFile({
      out: f.out ? resolve(f.out) : cfg.trustPath,
      rootKeyPaths: rootKeys.map((p) => resolve(p)),
      artifactsKeyPaths: artifacts.map((p) => resolve(p)),
      fleetKeyPaths: fleet.map((p) => resolve(p)),
      thresholds: { root: f.threshold, artifacts: f['artifacts-threshold'], fleet: f['fleet-threshold'] },
      expires: parseExpiry(f.expires, now),
      force: f.force,
      now,
    });
    this.out(
      `Created trust root version ${summary.version} at ${summary.path} (expires ${summary.expires}).`,
    );
    for (const [role, r] of Object.entries(summary.roles)) {
      this.out(`  ${role}: ${r.threshold} of ${r.keyids.join(', ')}`);
    }
    this.out('Next: `edgectl registry init` publishes it to the registry.');
    return summary;
  }
}
