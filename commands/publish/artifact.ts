import { resolve } from 'node:path';
import { Args, Flags } from '@oclif/core';
import type { PublishResult } from '../../src/artifact/publish.js';
import { publishArtifactTo } from '../../src/artifact/service.js';
import { BaseCommand } from '../../src/cli/base-command.js';
import { keyFlag, registryFlag, trustFlag } from '../../src/cli/flags.js';
import { formatBytes } from '../../src/foundation/output.js';
import { ARTIFACT_KINDS } from '../../src/artifact/ref.js';

export default class PublishArtifact extends BaseCommand<typeof PublishArtifact> {
  static override summary = 'Validate, chunk, sign and publish an artifact directory to the registry.';
  static override description =
    'Reads kind, name, version, role (models), base (adapters) and description from <dir>/artifact.yaml; flags ' +
    'override it. The directory is validated for its kind (model: ONNX inputs/outputs against config.json; adapter: ' +
    'PEFT LoRA that fits its base model in the registry; policy: policy.yaml schema), split into content-defined ' +
    'chunks, and only chunks the registry lacks are uploaded (packed into pack blobs). The manifest is signed with an ' +
    'artifacts key and written last, so an interrupted publish leaves no version behind and re-running it completes. ' +
    'Versions are immutable: republishing the same bytes is a no-op, different bytes an error (exit 2).';
  static override examples = [
    '<%= config.bin %> publish artifact artifacts/models/draft',
    '<%= config.bin %> publish artifact ./my-policy --kind policy --name default --version 1.1.0',
    '<%= config.bin %> publish artifact artifacts/adapters/support --registry s3://models/edgectl --json',
  ];
  static override args = {
    dir: Args.directory({ required: true, exists: true, description: 'Artifact source directory.' }),
  };
  static override flags = {
    kind: Flags.string({ summary: 'Artifact kind (overrides artifact.yaml).', options: [...ARTIFACT_KINDS] }),
    name: Flags.string({ summary: 'Artifact name (overrides artifact.yaml).' }),
    version: Flags.string({ summary: 'Semantic version (overrides artifact.yaml).' }),
    description: Flags.string({ summary: 'One-line description (overrides artifact.yaml).' }),
    key: keyFlag,
    registry: registryFlag,
    trust: trustFlag,
    concurrency: Flags.integer({
      summary: 'Pack uploads in flight (each holds one 64 MiB pack in memory).',
      default: 4,
      min: 1,
      max: 64,
    }),
  };

  public async run(): Promise<PublishResult> {
    const cfg = this.projectConfig(this.flags.registry);
    const f = this.flags;
    const result = await publishArtifactTo(
      {
        registryUrl: cfg.registry,
        trustPath: cfg.trustPath,
        io: this.io,
        keyPath: f.key ? resolve(f.key) : cfg.keys.artifacts,
      },
      {
        dir: this.args.dir,
        kind: f.kind,
        name: f.name,
        version: f.version,
        description: f.description,
        concurrency: f.concurrency,
      },
    );
    if (!result.created) {
      this.out(
        `${result.ref} is already published with the same content (${result.manifestDigest}); nothing uploaded`,
      );
      return result;
    }
    this.out(`Published ${result.ref} (${result.manifestDigest})`);
    this.out(
      `  ${result.files} file(s), ${formatBytes(result.bytesTotal)}; uploaded ${formatBytes(result.bytesUploaded)} ` +
        `(${result.chunksUploaded} of ${result.chunksTotal} chunks new, ${result.packsUploaded} pack(s)); ${result.requests} requests`,
    );
    return result;
  }
}
