import { Args, Flags } from '@oclif/core';
import type { PullResult } from '../../src/artifact/pull.js';
import { pullArtifactInto } from '../../src/artifact/service.js';
import { BaseCommand } from '../../src/cli/base-command.js';
import { registryFlag, trustFlag } from '../../src/cli/flags.js';
import { formatBytes } from '../../src/foundation/output.js';

export default class ArtifactPull extends BaseCommand<typeof ArtifactPull> {
  static override needsFleetRepository = 'registry' as const;
  static override summary =
    'Download a verified artifact into a directory (resumable, through a local chunk cache).';
  static override description =
    'Verifies the manifest under the trust root, fetches only chunks missing from the chunk cache (each checked ' +
    'against its digest), then writes the files into <dir> all-or-nothing, each checked against its SHA-256 and ' +
    'renamed into place. An interrupted pull resumes from the cache; files already in <dir> with the right hash are kept.';
  static override examples = [
    '<%= config.bin %> artifact pull model/draft@1.0.0 ./models/draft',
    '<%= config.bin %> artifact pull policy/default@1.0.0 /tmp/policy --cache /var/cache/edgectl --json',
  ];
  static override args = {
    ref: Args.string({
      required: true,
      description: '<kind>/<name>@<version> or <kind>/<name>@sha256:<digest>.',
    }),
    dir: Args.string({ required: true, description: 'Target directory (created if missing).' }),
  };
  static override flags = {
    registry: registryFlag,
    trust: trustFlag,
    cache: Flags.string({
      summary: 'Chunk cache directory.',
      description: 'Default: ~/.cache/edgectl/chunks ($XDG_CACHE_HOME).',
      helpValue: '<dir>',
    }),
    concurrency: Flags.integer({ summary: 'Ranged reads in flight.', default: 4, min: 1, max: 64 }),
  };

  public async run(): Promise<PullResult> {
    const cfg = this.projectConfig(this.flags.registry);
    const r = await pullArtifactInto(
      { registryUrl: cfg.registry, trustPath: cfg.trustPath, io: this.io },
      {
        ref: this.args.ref,
        dir: this.args.dir,
        cacheDir: this.flags.cache,
        concurrency: this.flags.concurrency,
      },
    );
    this.out(`Pulled ${r.ref} (${r.manifestDigest}) into ${r.dir}`);
    this.out(
      `  ${r.filesWritten} file(s) written, ${r.filesUnchanged} unchanged; fetched ${formatBytes(r.bytesFetched)} ` +
        `(${r.chunksFetched} chunks; ${r.chunksCached} from cache, ${r.chunksSeeded} from existing files); ${r.requests} requests`,
    );
    return r;
  }
}
