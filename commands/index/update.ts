import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../src/cli/base-command.js';
import { indexUpdate, type IndexWriteSummary } from '../../src/index/service.js';
import { renderWrite } from '../../src/index/render.js';

export default class IndexUpdate extends BaseCommand<typeof IndexUpdate> {
  static override summary = 'Write a new version of an index for a changed corpus: new segment + tombstones.';
  static override description =
    "Compares the corpus with the index's documents by id and content: unchanged segments are copied byte for byte, " +
    'added and changed documents go into one new segment, and the old versions of changed and deleted ones are ' +
    'tombstoned, so publishing the new version moves only the new segment and the tombstone file. The embedder must ' +
    "be the index's (same digest); by default the one that built it here.";
  static override examples = [
    '<%= config.bin %> index update build/kiosk-index artifacts/corpus/kiosk --out build/kiosk-index-2',
  ];
  static override args = {
    index: Args.string({ required: true, description: 'The current index directory.' }),
    corpus: Args.string({
      required: true,
      description: 'Directory of documents (the whole corpus, as it is now).',
    }),
  };
  static override flags = {
    out: Flags.string({ summary: 'Directory to write the new version to (new or empty).', required: true }),
    embedder: Flags.string({
      summary: 'Sentence encoder directory (default: the one that built the index here).',
    }),
  };

  public async run(): Promise<IndexWriteSummary> {
    const r = await indexUpdate(
      this.args.index,
      this.args.corpus,
      { embedder: this.flags.embedder, out: this.flags.out },
      this.io,
    );
    for (const line of renderWrite('updated', r)) this.out(line);
    return r;
  }
}
