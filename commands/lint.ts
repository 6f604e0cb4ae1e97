import { Args } from '@oclif/core';
import { BaseCommand } from '../src/cli/base-command.js';
import { displayPath } from '../src/fleet/service.js';
import { lintFailure, runLint, type LintReport } from '../src/lint/lint.js';
import { defaultLinters } from '../src/lint/linters.js';

export default class Lint extends BaseCommand<typeof Lint> {
  static override summary =
    'Check site declarations and artifact directories offline (file:line: field: problem).';
  static override description =
    'Validates the sites directory (or the given files and directories): schema and unknown fields, name = file ' +
    'name, duplicate names, public keys, ref syntax and the kind each assignment slot takes. Does not contact the ' +
    'registry (`site plan` checks that each ref is published). Artifact directories (any directory under ' +
    'artifacts/ holding an artifact.yaml) get the checks `publish artifact` makes before uploading: artifact.yaml, ' +
    "file names and links, a model's ONNX inputs and outputs against its config, a policy's schema. Exit 2 when there are problems; with --json they " +
    'are listed in error.details.problems.';
  static override examples = [
    '<%= config.bin %> lint',
    '<%= config.bin %> lint sites/store-001.yaml --json',
    '<%= config.bin %> lint artifacts/policies/default',
  ];
  static override strict = false;
  static override args = {
    paths: Args.string({
      description: 'Files or directories to lint (default: the sites directory and artifacts/).',
    }),
  };

  public async run(): Promise<LintReport> {
    const cfg = this.projectConfig();
    const { argv } = await this.parse(Lint);
    if (argv.length === 0) this.warnOutsideRepository(cfg, 'sites');
    const report = await runLint(argv as string[], defaultLinters(), {
      root: cfg.root,
      sitesDir: cfg.sitesDir,
      display: displayPath(),
    });
    if (report.problems.length > 0) throw lintFailure(report);
    this.out(
      `${report.files} file${report.files === 1 ? '' : 's'} checked (${report.linters.join(', ') || 'nothing to lint'}): no problems.`,
    );
    return report;
  }
}
