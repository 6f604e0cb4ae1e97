import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Flags } from '@oclif/core';
import { BaseCommand } from '../src/cli/base-command.js';
import { runQuickstart, type QuickstartSummary } from '../src/quickstart/quickstart.js';
import { summaryLines } from '../src/quickstart/summary.js';

export default class Quickstart extends BaseCommand<typeof Quickstart> {
  static override summary =
    'Run the whole loop on this machine: publish, a 3-site fleet, traffic, a good and a bad canary.';
  static override description =
    'In a workspace directory (default: edgectl-quickstart in the temp directory) it creates keys, a trust root ' +
    'and a registry; publishes the bundled draft model, the support adapter (1.0.0 and 1.1.0: the good bytes; ' +
    '1.2.0: the bad bytes) and the default policy; starts the cloud verifier; declares, applies and starts three ' +
    'sites; sends support chats to them (model draft:support); runs `rollout canary adapter/support@1.1.0 --wait` ' +
    '(promoted) and `rollout canary adapter/support@1.2.0 --wait` (rolled back); measures the verifier CPU against ' +
    'cloud-only serving; prints a summary and stops everything it started (also on an error or Ctrl-C; --keep ' +
    'leaves the verifier and sites running). Every step is an edgectl command run as a child process with --json. ' +
    'Rerunning replaces the previous quickstart workspace; any other non-empty directory is refused. Exit 0 when ' +
    'both rollouts ended as expected, 1 otherwise, 130 on Ctrl-C.';
  static override examples = [
    '<%= config.bin %> quickstart',
    '<%= config.bin %> quickstart --dir ./demo --keep',
    '<%= config.bin %> quickstart --json > summary.json',
  ];
  static override flags = {
    dir: Flags.string({
      summary: 'Workspace directory (created; a previous quickstart workspace is replaced).',
      helpValue: '<dir>',
    }),
    keep: Flags.boolean({ summary: 'Leave the verifier and the sites running at the end.' }),
    registry: Flags.string({
      summary: 'Registry URL (default: a directory in the workspace). Use a fresh S3 prefix per run.',
      helpValue: '<url>',
    }),
  };

  public async run(): Promise<QuickstartSummary> {
    this.signal.addEventListener('abort', () =>
      this.io.log('warn', 'interrupted: stopping what the quickstart started...'),
    );
    const summary = await runQuickstart({
      dir: this.flags.dir ?? join(tmpdir(), 'edgectl-quickstart'),
      keep: this.flags.keep,
      registry: this.flags.registry,
      io: this.io,
      progress: this.io,
      signal: this.signal,
    });
    for (const line of summaryLines(summary, this.config.bin)) this.out(line);
    return summary;
  }

  protected override exitCodeOf(summary: QuickstartSummary): number | undefined {
    return summary.ok ? undefined : 1;
  }
}
