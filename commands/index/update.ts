import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../src/cli/base-command.js';
import type { IndexWriteSummary } from '../../src/index/service.js';
import { renderWrite } from '../../src/index/render.js';
import { registryFlag, siteDataDirFlag, siteIndexFlag, trustFlag } from '../../src/cli/flags.js';
import { indexUpdateFromTarget } from '../../src/site/index-sources.js';

export default class IndexUpdate extends BaseCommand<typeof IndexUpdate> {
  static override summary = 'Write a new version of an index for a changed corpus: new segment + tombstones.';
  static override description =
    "Compares the corpus with the index's documents by id and content: unchanged segments are copied byte for byte, " +
    'added and changed documents go into one new segment, and the old versions of changed and deleted ones are ' +
    'tombstoned, so publishing the new version moves only the new segment and the tombstone file. The embedder must ' +
    "be the index's (same digest); by default the one that built it here, or for a site or a registry ref the one " +
    'it pins (a ref and its embedder are pulled and verified first).';
  static override examples = [
    '<%= config.bin %> index update build/kiosk-index artifacts/corpus/kiosk --out build/kiosk-index-2',
    '<%= config.bin %> index update index/kb@1.0.0 corpus --out build/kb-1.1.0',
  ];
  static override args = {
    index: Args.string({
      required: true,
      description:
        'The current index: a directory, a site (the index it serves; --index when several), or a registry ref index/<name>@<version>.',
    }),
    corpus: Args.string({
      required: true,
      description: 'Directory of documents (the whole corpus, as it is now).',
    }),
  };
  static override flags = {
    out: Flags.string({ summary: 'Directory to write the new version to (new or empty).', required: true }),
    embedder: Flags.string({
      summary:
        'Sentence encoder: a directory or a model ref (default: the one that built the index here, or the one a site or ref pins).',
      helpValue: '<dir|model/<name>@<version>>',
    }),
    index: siteIndexFlag,
    'data-dir': siteDataDirFlag,
    registry: registryFlag,
    trust: trustFlag,
  };

  public async run(): Promise<IndexWriteSummary> {
    const f = this.flags;
    const cfg = this.projectConfig(f.registry);
    const r = await indexUpdateFromTarget(
      this.args.index,
      this.args.corpus,
      { embedder: f.embedder, out: f.out },
      {
        projectRoot: cfg.root,
        dataDirFlag: f['data-dir'],
        index: f.index,
        registryUrl: cfg.registry,
        trustPath: cfg.trustPath,
        io: this.io,
      },
    );
    for (const line of renderWrite('updated', r)) this.out(line);
    return r;
  }
}
