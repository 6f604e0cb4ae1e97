import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../src/cli/base-command.js';
import { registryFlag, trustFlag } from '../../src/cli/flags.js';
import { formatBytes } from '../../src/foundation/output.js';
import { defaultCacheDir } from '../../src/artifact/chunk-cache.js';
import { prepareLoraModel, type PrepareResult } from '../../src/artifact/model-prepare/prepare.js';
import { prepareFromRef } from '../../src/artifact/model-prepare/prepare-ref.js';
import { openStore } from '../../src/registry/open-store.js';
import { loadTrustInForce } from '../../src/registry/trust-history.js';

export default class ModelPrepare extends BaseCommand<typeof ModelPrepare> {
  static override summary =
    'Give a downloaded ONNX export LoRA inputs, so PEFT adapters apply to it per request.';
  static override description =
    'Rewrites every graph of the model (each variant: fp32, fp16, q4, ...) so the chosen projections take ' +
    'lora.<layer>.<module>.A|B inputs, the same inputs the runtime feeds a per-request adapter (zeros: the base ' +
    'model, bit for bit). Writes a new model artifact directory: config.json gains lora.target_modules and ' +
    'lora.max_rank, artifact.yaml keeps the name with a new version (default: the next minor), weights and external ' +
    'data keep their bytes, so publishing it uploads only the few chunks that changed. <model> is a directory or a ' +
    'published model/<name>@<version>. See docs/operations.md, "LoRA on a downloaded export".';
  static override examples = [
    '<%= config.bin %> model prepare artifacts/models/smollm2 --lora-targets q_proj,v_proj --rank-max 16 --out artifacts/models/smollm2-lora',
    '<%= config.bin %> model prepare model/smollm2@1.0.0 --lora-targets q_proj,k_proj,v_proj,o_proj --rank-max 8 --out ./smollm2-lora --json',
  ];
  static override args = {
    model: Args.string({
      required: true,
      description: 'Model directory, or a published model/<name>@<version>.',
    }),
  };
  static override flags = {
    'lora-targets': Flags.string({
      summary: "Comma-separated projections to adapt (the adapters' target_modules), e.g. q_proj,v_proj.",
      required: true,
    }),
    'rank-max': Flags.integer({
      summary: 'Largest adapter rank the model will accept.',
      required: true,
      min: 1,
    }),
    out: Flags.string({
      summary: 'Directory to write the prepared artifact to (new or empty).',
      required: true,
    }),
    name: Flags.string({
      summary: "Artifact name (default: the source's; a new name loses dedupe against it).",
    }),
    version: Flags.string({ summary: "Artifact version (default: the source's next minor version)." }),
    role: Flags.option({
      options: ['draft', 'verifier'] as const,
      summary: "Model role (default: the source's).",
    })(),
    registry: registryFlag,
    trust: trustFlag,
  };

  public async run(): Promise<PrepareResult> {
    const f = this.flags;
    const common = {
      out: resolve(f.out),
      targets: f['lora-targets'].split(','),
      rankMax: f['rank-max'],
      version: f.version,
      name: f.name,
      role: f.role,
    };
    const source = this.args.model;
    let r: PrepareResult;
    if (existsSync(source) && statSync(source).isDirectory()) {
      r = prepareLoraModel({ ...common, dir: resolve(source) });
    } else {
      const cfg = this.projectConfig(f.registry);
      const store = await openStore(cfg.registry);
      try {
        const trust = await loadTrustInForce(store, cfg.trustPath, new Date());
        r = await prepareFromRef({
          ...common,
          ref: source,
          store,
          trust,
          cacheDir: defaultCacheDir(),
          io: this.io,
        });
      } finally {
        await store.close();
      }
    }
    this.out(
      `Prepared ${r.name ?? 'model'}@${r.version} in ${r.out}: LoRA inputs on ${r.targets.join(', ')} x ${r.layers} layers, rank <= ${r.rankMax}`,
    );
    for (const g of r.graphs)
      this.out(
        `  ${g.file}: ${g.projections} projections, ${formatBytes(g.bytesIn)} -> ${formatBytes(g.bytesOut)}`,
      );
    this.out(`  ${r.filesLinked} other file(s) linked unchanged`);
    return r;
  }
}
