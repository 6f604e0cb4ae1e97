import { Args, Flags } from '@oclif/core';
import { verifyArtifactIn } from '../../src/artifact/service.js';
import type { VerifyResult } from '../../src/artifact/verify.js';
import { BaseCommand } from '../../src/cli/base-command.js';
import { registryFlag, trustFlag } from '../../src/cli/flags.js';
import { formatBytes } from '../../src/foundation/output.js';

export default class ArtifactVerify extends BaseCommand<typeof ArtifactVerify> {
  static override needsFleetRepository = 'registry' as const;
  static override summary =
    "Verify a published artifact: signature, every blob's size, every chunk and file hash.";
  static override description =
    "Walks the registry's trust chain from the pinned trust root, checks the manifest signature under the artifacts " +
    'role, then reads every chunk and checks chunk and file SHA-256 digests and sizes. Exit 4 names the file and ' +
    'chunk that failed. Nothing is written.';
  static override examples = [
    '<%= config.bin %> artifact verify model/draft@1.0.0',
    '<%= config.bin %> artifact verify adapter/support@1.0.0 --registry s3://models/edgectl --json',
  ];
  static override args = {
    ref: Args.string({
      required: true,
      description: '<kind>/<name>@<version> or <kind>/<name>@sha256:<digest>.',
    }),
  };
  static override flags = {
    registry: registryFlag,
    trust: trustFlag,
    concurrency: Flags.integer({ summary: 'Ranged reads in flight.', default: 4, min: 1, max: 64 }),
  };

  public async run(): Promise<VerifyResult> {
    const cfg = this.projectConfig(this.flags.registry);
    const target = { registryUrl: cfg.registry, trustPath: cfg.trustPath, io: this.io };
    const r = await verifyArtifactIn(target, this.args.ref, this.flags.concurrency);
    this.out(`Verified ${r.ref} (${r.manifestDigest})`);
    this.out(
      `  signed by ${r.signedBy.join(', ')}; ${r.files} file(s), ${r.chunks} chunks in ${r.blobs} blob(s), ${formatBytes(r.bytesVerified)}`,
    );
    return r;
  }
}
