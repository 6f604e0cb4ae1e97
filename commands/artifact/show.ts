import { Args } from '@oclif/core';
import { showArtifactIn } from '../../src/artifact/service.js';
import { BaseCommand } from '../../src/cli/base-command.js';
import { registryFlag, trustFlag } from '../../src/cli/flags.js';
import { formatBytes } from '../../src/foundation/output.js';
import type { ShowResult } from '../../src/artifact/show.js';

export default class ArtifactShow extends BaseCommand<typeof ArtifactShow> {
  static override needsFleetRepository = 'registry' as const;
  static override summary = "Show an artifact's signed manifest: files, sizes, digests, metadata.";
  static override description =
    'The signature is checked against the trust root when one is available; without a trust root the manifest is ' +
    'shown unverified (verified: false). Use `artifact verify` to check the content as well.';
  static override examples = [
    '<%= config.bin %> artifact show model/draft@1.0.0',
    '<%= config.bin %> artifact show policy/default@sha256:4f2a... --json',
  ];
  static override args = {
    ref: Args.string({
      required: true,
      description: '<kind>/<name>@<version> or <kind>/<name>@sha256:<digest>.',
    }),
  };
  static override flags = { registry: registryFlag, trust: trustFlag };

  public async run(): Promise<ShowResult> {
    const cfg = this.projectConfig(this.flags.registry);
    const target = { registryUrl: cfg.registry, trustPath: cfg.trustPath, io: this.io };
    const r = await showArtifactIn(target, this.args.ref, this.flags.trust !== undefined);
    this.out(`${r.ref}  ${r.manifestDigest}`);
    this.out(
      `  ${r.verified ? `signed by ${r.signedBy.join(', ')}` : 'signature NOT verified (no trust root)'}`,
    );
    this.out(
      `  created ${r.created}; ${formatBytes(r.size)} in ${r.files.length} file(s), ${r.chunks} chunks, ${r.blobs} blob(s)`,
    );
    if (r.description) this.out(`  ${r.description}`);
    for (const [k, v] of Object.entries(r.meta))
      this.out(`  ${k}: ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`);
    for (const f of r.files)
      this.out(`  ${f.sha256.slice(0, 19)}  ${formatBytes(f.size).padStart(10)}  ${f.path}`);
    return r;
  }
}
