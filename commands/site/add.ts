import { Args, Flags } from '@oclif/core';
import { resolve } from 'node:path';
import { BaseCommand } from '../../src/cli/base-command.js';
import { addSite, defaultSiteDataDir, parseLabels, type AddSiteResult } from '../../src/fleet/site-add.js';
import { displayPath } from '../../src/fleet/service.js';

export default class SiteAdd extends BaseCommand<typeof SiteAdd> {
  static override summary = 'Declare a new site: generate its key and write sites/<name>.yaml.';
  static override description =
    "Generates the site's Ed25519 key into its data directory (default .edgectl/sites/<name>, mode 0600, never " +
    'committed) and writes sites/<name>.yaml with its public key, labels, runtime settings and assignments. ' +
    'Refuses a site that already exists; --rekey gives an existing site a new key (only publicKey changes). ' +
    'Commit the YAML, then `edgectl site plan` and `edgectl site apply`.';
  static override examples = [
    '<%= config.bin %> site add store-004 --labels region=eu-west,tier=branch',
    '<%= config.bin %> site add store-004 --labels region=eu-west --model model/draft@1.0.0 --adapter adapter/support@1.0.0 --policy policy/default@1.0.0',
    '<%= config.bin %> site add kiosk-001 --labels tier=branch --model model/draft@1.0.0 --index index/kb@1.0.0',
    '<%= config.bin %> site add store-001 --rekey --data-dir /var/lib/edgectl/store-001',
  ];
  static override args = {
    name: Args.string({ required: true, description: 'Site name (lower-case letters, digits, dashes).' }),
  };
  static override flags = {
    labels: Flags.string({ summary: 'Labels as key=value pairs, comma-separated.', helpValue: 'k=v,...' }),
    'data-dir': Flags.string({
      summary: "The site's local data directory, where its secret key goes.",
      helpValue: '<dir>',
    }),
    listen: Flags.string({
      summary: 'Runtime listen address (default 127.0.0.1:8080).',
      helpValue: '<host:port>',
    }),
    verifier: Flags.string({ summary: 'Cloud verifier URL.', helpValue: '<url>' }),
    interval: Flags.string({ summary: 'Sync poll interval (default 30s).', helpValue: '<duration>' }),
    model: Flags.string({ summary: 'Model ref to assign.', helpValue: 'model/<name>@<version>' }),
    adapter: Flags.string({
      summary: 'Adapter ref to assign (repeatable).',
      multiple: true,
      helpValue: 'adapter/<name>@<version>',
    }),
    policy: Flags.string({ summary: 'Policy ref to assign.', helpValue: 'policy/<name>@<version>' }),
    index: Flags.string({
      summary: 'Retrieval index ref to assign (repeatable).',
      multiple: true,
      helpValue: 'index/<name>@<version>',
    }),
    rekey: Flags.boolean({ summary: 'Replace the key of an existing site instead of adding one.' }),
  };

  public async run(): Promise<AddSiteResult> {
    const cfg = this.projectConfig();
    const { name } = this.args;
    const f = this.flags;
    const result = addSite({
      sitesDir: cfg.sitesDir,
      name,
      dataDir: f['data-dir'] ? resolve(f['data-dir']) : defaultSiteDataDir(cfg.root, name),
      labels: parseLabels(f.labels),
      runtime: { listen: f.listen, verifier: f.verifier, interval: f.interval },
      assignments: { model: f.model, adapters: f.adapter ?? [], policy: f.policy, indexes: f.index ?? [] },
      rekey: f.rekey,
      display: displayPath(),
    });
    const show = displayPath();
    this.out(
      `${result.rekeyed ? 'Re-keyed' : 'Added'} site ${result.name}: ${show(result.file)} (key ${result.keyid}).`,
    );
    this.out(`Secret key: ${show(result.secretKeyPath)} (keep it on the site; never commit it).`);
    this.out('Next: `edgectl site plan`, then `edgectl site apply`.');
    return result;
  }
}
