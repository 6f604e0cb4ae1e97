import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../src/cli/base-command.js';
import type { IndexWriteSummary } from '../../src/index/service.js';
import { renderWrite } from '../../src/index/render.js';
import { registryFlag, trustFlag } from '../../src/cli/flags.js';
import { indexBuildFromSource } from '../../src/site/index-sources.js';

export default class IndexBuild extends BaseCommand<typeof IndexBuild> {
  static override summary = 'Build a hybrid (BM25 + dense) retrieval index from a directory of documents.';
  static override description =
    'Reads Markdown (.md), text (.txt) and JSONL (.jsonl: id, text, optional time, other fields kept as metadata) ' +
    'documents, splits them into passages, embeds each with the sentence encoder in --embedder (an ONNX model ' +
    'directory, or a published model ref with role embedder, pulled and verified) and writes an index directory: index.json (the manifest: embedder digest, chunking, counts, newest ' +
    'document time) and one immutable segment. See docs/formats.md, "Index".';
  static override examples = [
    '<%= config.bin %> index build artifacts/corpus/kiosk --embedder artifacts/models/embedder --out build/kiosk-index',
    '<%= config.bin %> index build docs/ --embedder artifacts/models/embedder --out build/docs-index --max-words 64 --json',
    '<%= config.bin %> index build corpus --embedder model/kiosk-embedder@1.0.0 --out build/kb',
  ];
  static override args = {
    corpus: Args.string({ required: true, description: 'Directory of documents.' }),
  };
  static override flags = {
    embedder: Flags.string({
      summary:
        'Sentence encoder: a directory (model.onnx, tokenizer.json, config.json) or a published model ref (role embedder).',
      helpValue: '<dir|model/<name>@<version>>',
      required: true,
    }),
    registry: registryFlag,
    trust: trustFlag,
    out: Flags.string({ summary: 'Directory to write the index to (new or empty).', required: true }),
    'max-words': Flags.integer({ summary: 'Passage length in words, at most.', default: 96, min: 8 }),
    'overlap-words': Flags.integer({ summary: 'Words shared by consecutive passages.', default: 16, min: 0 }),
  };

  public async run(): Promise<IndexWriteSummary> {
    const f = this.flags;
    const cfg = this.projectConfig(f.registry);
    const r = await indexBuildFromSource(
      this.args.corpus,
      {
        embedder: f.embedder,
        out: f.out,
        chunking: { maxWords: f['max-words'], overlapWords: f['overlap-words'] },
      },
      { projectRoot: cfg.root, registryUrl: cfg.registry, trustPath: cfg.trustPath, io: this.io },
    );
    for (const line of renderWrite('built', r)) this.out(line);
    return r;
  }
}
