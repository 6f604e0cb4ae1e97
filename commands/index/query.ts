import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../src/cli/base-command.js';
import { queryIndexDir, type IndexQuerySummary } from '../../src/index/service.js';
import { renderQuery } from '../../src/index/render.js';
import { registryFlag, siteDataDirFlag, siteIndexFlag, trustFlag } from '../../src/cli/flags.js';
import { resolveIndexTarget } from '../../src/site/index-target.js';

export default class IndexQuery extends BaseCommand<typeof IndexQuery> {
  static override summary =
    'Query an index locally: hybrid (BM25 + dense, fused by reciprocal rank), BM25 or dense.';
  static override description =
    'Prints the top passages with their scores and their ranks in the BM25 and dense lists; --json gives passage ids, ' +
    "document ids, text, scores, ranks and metadata. A query longer than the encoder's context is truncated for the " +
    'dense side (a warning says so; BM25 sees all of it).';
  static override examples = [
    '<%= config.bin %> index query build/kiosk-index "receipt printer jammed"',
    '<%= config.bin %> index query build/kiosk-index "E-104" --mode bm25 --k 3 --json',
    '<%= config.bin %> index query store-001 "receipt printer jammed" --index kb',
    '<%= config.bin %> index query index/kb@1.1.0 "receipt printer jammed" --json',
  ];
  static override args = {
    index: Args.string({
      required: true,
      description:
        'An index directory, a site (the index its current generation serves), or a registry ref index/<name>@<version>.',
    }),
    text: Args.string({ required: true, description: 'The query.' }),
  };
  static override flags = {
    k: Flags.integer({ summary: 'Passages to return.', default: 5, min: 1, max: 1000 }),
    mode: Flags.option({
      options: ['hybrid', 'bm25', 'dense'] as const,
      default: 'hybrid',
      summary: 'Retrieval mode.',
    })(),
    index: siteIndexFlag,
    'data-dir': siteDataDirFlag,
    registry: registryFlag,
    trust: trustFlag,
    embedder: Flags.string({
      summary: 'Sentence encoder directory (default: the one that built the index here).',
    }),
  };

  public async run(): Promise<IndexQuerySummary> {
    const f = this.flags;
    const cfg = this.projectConfig(f.registry);
    const target = await resolveIndexTarget(this.args.index, {
      projectRoot: cfg.root,
      dataDirFlag: f['data-dir'],
      index: f.index,
      registryUrl: cfg.registry,
      trustPath: cfg.trustPath,
      io: this.io,
    });
    try {
      const r = await queryIndexDir(
        target.dir,
        this.args.text,
        { embedder: f.embedder ?? target.embedderDir, k: f.k, mode: f.mode },
        this.io,
      );
      const result = { ...r, index: target.label };
      for (const line of renderQuery(result)) this.out(line);
      return result;
    } finally {
      target.cleanup();
    }
  }
}
