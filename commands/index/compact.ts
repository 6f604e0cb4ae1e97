import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../src/cli/base-command.js';
import { indexCompact, type IndexWriteSummary } from '../../src/index/service.js';
import { renderWrite } from '../../src/index/render.js';

export default class IndexCompact extends BaseCommand<typeof IndexCompact> {
  static override summary = 'Rewrite an index into one segment without its tombstoned passages.';
  static override description =
    'Explicit and measured: a compacted version shares no segment with the previous one, so a site fetches the whole ' +
    'index again. Nothing is re-embedded (the stored vectors are reused).';
  static override examples = [
    '<%= config.bin %> index compact build/kiosk-index-2 --out build/kiosk-index-3',
  ];
  static override args = { index: Args.string({ required: true, description: 'The index directory.' }) };
  static override flags = {
    out: Flags.string({
      summary: 'Directory to write the compacted version to (new or empty).',
      required: true,
    }),
  };

  public async run(): Promise<IndexWriteSummary> {
    const r = indexCompact(this.args.index, this.flags.out);
    for (const line of renderWrite('compacted', r)) this.out(line);
    return r;
  }
}
