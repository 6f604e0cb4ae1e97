import { resolve } from 'node:path';
import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../src/cli/base-command.js';
import { keyFlag, registryFlag, trustFlag } from '../../src/cli/flags.js';
import { formatBytes } from '../../src/cli/output.js';
import { PACK_STORE_OPTIONS } from '../../src/artifact/pack.js';
import { publishArtifact, type PublishResult } from '../../src/artifact/publish.js';
import { ARTIFACT_KINDS } from '../../src/artifact/ref.js';
import { loadSigningKey } from '../../src/registry/keys.js';
import { openStore } from '../../src/registry/open-store.js';
import { loadRegistryTrust } from '../../src/registry/trust.js';

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
    const signer = loadSigningKey(
      this.flags.key ? resolve(this.flags.key) : cfg.keys.artifacts,
      process.env,
      {
        flag: '--key',
        configKey: 'keys.artifacts',
      },
    );
    const store = await openStore(cfg.registry, PACK_STORE_OPTIONS);
    try {
      const trust = await loadRegistryTrust(store, cfg.trustPath, new Date());
      const result = await publishArtifact({
        dir: this.args.dir,
        kind: this.flags.kind,
        name: this.flags.name,
        version: this.flags.version,
        description: this.flags.description,
        store,
        signer,
        trust,
        io: this.io,
        concurrency: this.flags.concurrency,
      });
      if (result.created) {
        this.out(`Published ${result.ref} (${result.manifestDigest})`);
        this.out(
          `  ${result.files} file(s), ${formatBytes(result.bytesTotal)}; uploaded ${formatBytes(result.bytesUploaded)} ` +
            `(${result.chunksUploaded} of ${result.chunksTotal} chunks new, ${result.packsUploaded} pack(s)); ${result.requests} requests`,
        );
      } else {
        this.out(
          `${result.ref} is already published with the same content (${result.manifestDigest}); nothing uploaded`,
        );
      }
      return result;
    } finally {
      await store.close();
    }
  }
}
