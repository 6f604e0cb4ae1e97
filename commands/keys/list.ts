import { Flags } from '@oclif/core';
import { join, resolve } from 'node:path';
import { BaseCommand } from '../../src/cli/base-command.js';
import { listKeys, type KeyListing, type KeyListProblem } from '../../src/registry/key-list.js';
import { readTrustRootEnvelope, verifySelfSignedRoot, type TrustRoot } from '../../src/registry/trust.js';

export interface KeysListResult {
  keys: KeyListing[];
  problems: KeyListProblem[];
}

export default class KeysList extends BaseCommand<typeof KeysList> {
  static override summary = 'List signing keys, whether their secret is present and safe, and their roles.';
  static override description =
    'Looks in keys/ of the project and at the key paths in edgectl.yaml (or in --dir). A secret key file must be ' +
    'readable only by its owner (mode 0600); `mode ok: no` means run chmod 600 on it. Roles come from the trust root.';
  static override examples = [
    '<%= config.bin %> keys list',
    '<%= config.bin %> keys list --dir ~/secrets --json',
  ];
  static override flags = {
    dir: Flags.string({ summary: 'Directory to look in (repeatable).', multiple: true, helpValue: '<dir>' }),
  };

  public async run(): Promise<KeysListResult> {
    const cfg = this.projectConfig();
    const dirs = this.flags.dir?.length ? this.flags.dir.map((d) => resolve(d)) : [join(cfg.root, 'keys')];
    const paths = this.flags.dir?.length
      ? []
      : Object.values(cfg.keys).filter((p): p is string => Boolean(p));
    let trust: TrustRoot | undefined;
    try {
      trust = verifySelfSignedRoot(readTrustRootEnvelope(cfg.trustPath), cfg.trustPath);
    } catch {
      trust = undefined; // roles are informative; a missing or broken root is reported by `trust show`
    }
    const result = listKeys(dirs, paths, trust);
    if (result.keys.length === 0) this.out(`No keys found in ${dirs.join(', ')}.`);
    for (const k of result.keys) {
      const mode = k.modeOk === null ? '' : `, mode ok: ${k.modeOk ? 'yes' : 'no'}`;
      const roles = k.roles.length ? `, roles: ${k.roles.join(', ')}` : '';
      this.out(`${k.keyid}  secret: ${k.hasSecret ? 'yes' : 'no'}${mode}${roles}`);
      if (k.secretKeyPath) this.out(`  ${k.secretKeyPath}`);
      if (k.publicKeyPath) this.out(`  ${k.publicKeyPath}`);
    }
    for (const p of result.problems) this.io.log('warn', p.error);
    return result;
  }
}
