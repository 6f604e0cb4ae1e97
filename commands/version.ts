import { BaseCommand } from '../src/cli/base-command.js';
import { versionInfo, type VersionInfo } from '../src/cli/version.js';

export default class Version extends BaseCommand<typeof Version> {
  static override summary = 'Print the edgectl version (also `edgectl --version` and `-v`).';
  static override description =
    'Prints the edgectl version, the Node.js running it and the platform; --json gives them as an object.';
  static override examples = [
    '<%= config.bin %> version',
    '<%= config.bin %> version --json',
    '<%= config.bin %> -v',
  ];

  public async run(): Promise<VersionInfo> {
    const info = versionInfo(this.config.version);
    this.out(`edgectl ${info.version} (node ${info.node}, ${info.platform}-${info.arch})`);
    return info;
  }
}
