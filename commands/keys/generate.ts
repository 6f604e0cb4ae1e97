import { Flags } from '@oclif/core';
import { resolve } from 'node:path';
import { BaseCommand } from '../../src/cli/base-command.js';
import { generateKeyPair, writeKeyPair } from '../../src/registry/keys.js';

export interface KeysGenerateResult {
  keyid: string;
  secretKeyPath: string;
  publicKeyPath: string;
}

export default class KeysGenerate extends BaseCommand<typeof KeysGenerate> {
  static override summary = 'Generate an Ed25519 signing key pair.';
  static override description =
    'Writes the secret key to --out (mode 0600, never overwritten unless --force) and the public key to <out>.pub. ' +
    'Reference the secret key from edgectl.yaml (keys.root, keys.artifacts, keys.fleet) or pass it with --key; ' +
    'in CI, put the secret key file content in EDGECTL_SIGNING_KEY instead.';
  static override examples = [
    '<%= config.bin %> keys generate --out keys/root.key',
    '<%= config.bin %> keys generate --out keys/artifacts.key --json',
  ];
  static override flags = {
    out: Flags.string({
      summary: 'Path of the secret key file to create.',
      required: true,
      helpValue: '<path>',
    }),
    force: Flags.boolean({ summary: 'Replace existing key files (the old key is lost).', default: false }),
  };

  public async run(): Promise<KeysGenerateResult> {
    const kp = generateKeyPair();
    const { secretPath, publicPath } = writeKeyPair(resolve(this.flags.out), kp, { force: this.flags.force });
    this.out(`Generated key ${kp.keyid}`);
    this.out(`  secret key: ${secretPath} (mode 0600; keep it out of git)`);
    this.out(`  public key: ${publicPath}`);
    return { keyid: kp.keyid, secretKeyPath: secretPath, publicKeyPath: publicPath };
  }
}
