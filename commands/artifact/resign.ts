import { Args, Flags } from '@oclif/core';
import { resolve } from 'node:path';
import { BaseCommand } from '../../src/cli/base-command.js';
import { keyFlag, registryFlag, trustFlag } from '../../src/cli/flags.js';
import { resignArtifacts, type ResignedArtifact } from '../../src/artifact/resign.js';
import { loadSigningKey } from '../../src/registry/keys.js';

export default class ArtifactResign extends BaseCommand<typeof ArtifactResign> {
  static override summary =
    'Re-sign published manifests with the current artifacts key (after a key rotation).';
  static override description =
    'Replaces the signatures of a manifest signed by an earlier or revoked artifacts key with the current one; ' +
    'the payload, and so the manifest digest the fleet pins, stays the same. The manifest must verify under an ' +
    "artifacts key of the trust root's chain first; one signed by a revoked key needs --accept-revoked (check it " +
    'first). Already current: nothing written. Signs with --key, keys.artifacts, or EDGECTL_SIGNING_KEY.';
  static override examples = [
    '<%= config.bin %> artifact resign policy/default@1.0.0',
    '<%= config.bin %> artifact resign --all --key keys/artifacts-2.key --json',
  ];
  static override args = {
    ref: Args.string({ description: '<kind>/<name>@<version> or <kind>/<name>@sha256:<digest> (or --all).' }),
  };
  static override flags = {
    registry: registryFlag,
    trust: trustFlag,
    key: keyFlag,
    all: Flags.boolean({ summary: 'Every published manifest (those already current are left alone).' }),
    'accept-revoked': Flags.boolean({
      summary: 'Also re-sign manifests signed only by a revoked key (you vouch for them).',
    }),
  };

  public async run(): Promise<{ registry: string; artifacts: ResignedArtifact[] }> {
    const f = this.flags;
    const cfg = this.projectConfig(f.registry);
    const signer = loadSigningKey(f.key ? resolve(f.key) : cfg.keys.artifacts, process.env, {
      flag: '--key',
      configKey: 'keys.artifacts',
    });
    const r = await resignArtifacts({
      registryUrl: cfg.registry,
      trustPath: cfg.trustPath,
      refs: this.args.ref ? [this.args.ref] : [],
      all: f.all,
      signers: [signer],
      acceptRevoked: f['accept-revoked'],
    });
    for (const a of r.artifacts) {
      this.out(
        a.resigned
          ? `Re-signed ${a.ref} (${a.manifestDigest}) with ${a.signedBy.join(', ')}; was ${a.previousSigners.join(', ')}`
          : `${a.ref} is already signed by the current artifacts key`,
      );
    }
    return r;
  }
}
