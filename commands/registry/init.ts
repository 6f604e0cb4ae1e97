import { BaseCommand } from '../../src/cli/base-command.js';
import { registryFlag, trustFlag } from '../../src/cli/flags.js';
import { describeConditionalWrites } from '../../src/registry/conditional-writes.js';
import { initRegistryFromFiles, type InitRegistryResult } from '../../src/registry/init.js';

export default class RegistryInit extends BaseCommand<typeof RegistryInit> {
  static override summary =
    'Initialise a registry: publish the trust root and check conditional-write support.';
  static override description =
    'Writes every version of the project trust root to trust/root/<version>.json (create-only: re-running is a ' +
    "no-op, and a registry holding another trust root is refused), verifies the registry's root chain, and probes " +
    'whether the backend enforces create-only and compare-and-swap writes, from both sides (a wrong precondition ' +
    "refused and a right one accepted): each is reported as enforced, not enforced or broken, with the server's " +
    'answers in --json. Without them (e.g. some S3-compatible ' +
    'servers) concurrent `site apply` runs are not protected against each other.';
  static override examples = [
    '<%= config.bin %> registry init',
    '<%= config.bin %> registry init --registry file:/srv/edgectl-registry',
    'AWS_ENDPOINT_URL_S3=http://minio:9000 <%= config.bin %> registry init --registry s3://models/edgectl --json',
  ];
  static override flags = { registry: registryFlag, trust: trustFlag };

  public async run(): Promise<InitRegistryResult> {
    const cfg = this.projectConfig(this.flags.registry);
    this.io.log('info', `Initialising registry ${cfg.registry}`);
    const result = await initRegistryFromFiles({
      registryUrl: cfg.registry,
      trustPath: cfg.trustPath,
    });
    this.out(
      `Registry ${result.url} ${result.created ? 'initialised' : 'already initialised'}; trust root version ${result.trustVersion}.`,
    );
    const probe = describeConditionalWrites(result.conditionalWriteProbe);
    this.out(
      result.conditionalWrites
        ? `Conditional writes: ${probe}; concurrent writers are safe.`
        : `Conditional writes: ${probe}. Concurrent writers are NOT safe: run one writer at a time (publish, site apply).`,
    );
    return result;
  }
}
