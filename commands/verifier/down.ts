import { resolve } from 'node:path';
import { Flags } from '@oclif/core';
import { BaseCommand } from '../../src/cli/base-command.js';
import { durationFlag } from '../../src/cli/flags.js';
import type { DaemonStopResult } from '../../src/supervisor/stop.js';
import { defaultRunDir, stopVerifierDaemon } from '../../src/verifier/server/lifecycle.js';

export default class VerifierDown extends BaseCommand<typeof VerifierDown> {
  static override summary = 'Stop the verifier started by `verifier up`.';
  static override description =
    'Sends SIGTERM, waits for the verifier to drain (up to --timeout), then SIGKILL. Stopping a verifier that is not ' +
    'running is not an error; a stale pid file (process gone or pid reused) is removed.';
  static override examples = [
    '<%= config.bin %> verifier down',
    '<%= config.bin %> verifier down --timeout 30s --json',
  ];
  static override flags = {
    timeout: durationFlag({
      summary: 'Grace period after SIGTERM before SIGKILL.',
      default: '10s',
      helpValue: false,
    }),
    'run-dir': Flags.string({
      summary: 'Directory for pid, state and log files (default: .edgectl/run under the project root).',
      env: 'EDGECTL_RUN_DIR',
      helpValue: '<dir>',
    }),
  };

  public async run(): Promise<DaemonStopResult> {
    const runDir = resolve(this.flags['run-dir'] ?? defaultRunDir(this.projectConfig().root));
    const r = await stopVerifierDaemon(runDir, this.flags.timeout, this.io);
    const messages: Record<DaemonStopResult['status'], string> = {
      stopped: `Verifier stopped (pid ${r.pid}).`,
      killed: `Verifier killed after ${this.flagText('timeout', '10s')} (pid ${r.pid}); it did not stop on SIGTERM.`,
      'not-running': 'Verifier is not running.',
      'stale-removed': `Verifier was not running; removed a stale pid file (pid ${r.pid}).`,
    };
    this.out(messages[r.status]);
    return r;
  }
}
