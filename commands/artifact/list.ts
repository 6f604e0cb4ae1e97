import { Args } from '@oclif/core';
import { listArtifacts } from '../../src/artifact/service.js';
import { BaseCommand } from '../../src/cli/base-command.js';
import { registryFlag } from '../../src/cli/flags.js';
import type { ListResult } from '../../src/artifact/show.js';

export default class ArtifactList extends BaseCommand<typeof ArtifactList> {
  static override needsFleetRepository = 'registry' as const;
  static override summary = 'List published artifacts, newest version first.';
  static override description = 'Lists every published version, or those of one kind or one kind/name.';
  static override examples = [
    '<%= config.bin %> artifact list',
    '<%= config.bin %> artifact list model',
    '<%= config.bin %> artifact list adapter/support --json',
  ];
  static override args = {
    selector: Args.string({ required: false, description: '<kind> or <kind>/<name>.' }),
  };
  static override flags = { registry: registryFlag };

  public async run(): Promise<ListResult> {
    const cfg = this.projectConfig(this.flags.registry);
    const result = await listArtifacts({ registryUrl: cfg.registry }, this.args.selector);
    if (result.artifacts.length === 0)
      this.out(`No artifacts${this.args.selector ? ` matching ${this.args.selector}` : ''}.`);
    for (const a of result.artifacts) this.out(a.ref);
    return result;
  }
}
