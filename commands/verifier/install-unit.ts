import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { Flags } from '@oclif/core';
import { BaseCommand } from '../../src/cli/base-command.js';
import { UserError } from '../../src/foundation/errors.js';
import {
  describeInstallUnit,
  docsUrl,
  edgectlExec,
  installUnit,
  type InstallUnitResult,
} from '../../src/supervisor/install-unit.js';

export default class VerifierInstallUnit extends BaseCommand<typeof VerifierInstallUnit> {
  static override summary = 'Print (or write with --out) a hardened systemd unit that runs the verifier.';
  static override description =
    'The unit runs `verifier up --foreground` for a model directory with the Node and edgectl running this ' +
    'command, as a dedicated user (--user, default edgectl), with the run directory (pid, state files) as its only ' +
    'writable path, Type=notify readiness, restart on failure and a sandbox rated below 4.0 by `systemd-analyze ' +
    'security`. The model must be a directory (pull a published one first: `edgectl artifact pull ' +
    'model/<name>@<version> --out <dir>`): the sandbox gives the service no place to pull into. Printing needs no root.';
  static override examples = [
    '<%= config.bin %> verifier install-unit --model /opt/edgectl/models/verifier --host 0.0.0.0 --threads 8',
    '<%= config.bin %> verifier install-unit --model /opt/edgectl/models/verifier --out /etc/systemd/system/edgectl-verifier.service',
  ];
  static override flags = {
    model: Flags.string({
      summary: 'Model directory (absolute or relative to here).',
      required: true,
      helpValue: '<dir>',
    }),
    host: Flags.string({ summary: 'Address to bind.', default: '127.0.0.1' }),
    port: Flags.integer({ summary: 'Port to listen on.', default: 8700, min: 1, max: 65535 }),
    threads: Flags.integer({ summary: 'CPU threads per forward pass (default: all cores).', min: 1 }),
    'identity-key': Flags.string({
      summary: 'Ed25519 secret key file that signs /v1/identity.',
      helpValue: '<path>',
    }),
    'run-dir': Flags.string({
      summary: 'Directory for pid and state files (default: /var/lib/edgectl/verifier).',
      helpValue: '<dir>',
    }),
    out: Flags.string({
      summary: 'Write the unit to this file instead of printing it.',
      helpValue: '<file>',
    }),
    user: Flags.string({
      summary: 'System user the verifier runs as.',
      default: 'edgectl',
      helpValue: '<user>',
    }),
    'env-file': Flags.string({
      summary: 'Environment file (default: /etc/edgectl/verifier.env).',
      helpValue: '<file>',
    }),
  };

  public async run(): Promise<InstallUnitResult> {
    const f = this.flags;
    const model = resolve(f.model);
    if (!existsSync(model) || !statSync(model).isDirectory()) {
      throw new UserError(`--model ${f.model}: no such directory`, {
        code: 'E_MODEL',
        suggestion: 'pull a published model first: edgectl artifact pull model/<name>@<version> <dir>',
        details: { path: model },
      });
    }
    const runDir = resolve(f['run-dir'] ?? '/var/lib/edgectl/verifier');
    const args = [
      'verifier',
      'up',
      '--foreground',
      '--model',
      model,
      '--host',
      f.host,
      '--port',
      String(f.port),
    ];
    if (f.threads) args.push('--threads', String(f.threads));
    if (f['identity-key']) args.push('--identity-key', resolve(f['identity-key']));
    args.push('--run-dir', runDir);
    const r = installUnit(
      'edgectl-verifier.service',
      {
        description: 'edgectl verifier: speculative decoding verification and cloud completions',
        documentation: docsUrl(),
        exec: edgectlExec(args),
        workingDirectory: this.projectConfig().root,
        dataDir: runDir,
        user: f.user,
        environmentFile: resolve(f['env-file'] ?? '/etc/edgectl/verifier.env'),
        stopTimeoutSec: 30,
      },
      f.out,
    );
    if (this.human) process.stdout.write(describeInstallUnit(r));
    return r;
  }
}
