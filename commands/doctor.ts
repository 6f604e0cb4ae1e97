import { resolve } from 'node:path';
import { Flags } from '@oclif/core';
import { BaseCommand } from '../src/cli/base-command.js';
import { registryFlag, trustFlag } from '../src/cli/flags.js';
import { runDoctor, type DoctorReport } from '../src/doctor/doctor.js';

const MARK = { ok: 'ok  ', warn: 'WARN', fail: 'FAIL' } as const;

export default class Doctor extends BaseCommand<typeof Doctor> {
  static override summary =
    'Check this machine and project: Node, config, trust root, keys, registry, sites.';
  static override description =
    'Runs every check and prints each with ok, WARN or FAIL and the command that fixes it: Node version (>= 22), ' +
    'edgectl.yaml, the trust root (signature; WARN when it expires within 30 days), the signing keys (present, mode ' +
    '0600, in their trust-root role), the registry (reachable, initialised with this trust root, conditional writes ' +
    'enforced), the site data directories on this machine (state readable, current generation present and ' +
    'unchanged, not frozen or offline) and daemon pid files (stale ones). Exit 1 when any check fails; warnings ' +
    'alone exit 0.';
  static override examples = [
    '<%= config.bin %> doctor',
    '<%= config.bin %> doctor --registry s3://my-bucket/edgectl --json',
  ];
  static override flags = {
    registry: registryFlag,
    trust: trustFlag,
    'run-dir': Flags.string({
      summary: 'Directory of daemon pid and state files (default: .edgectl/run under the project root).',
      env: 'EDGECTL_RUN_DIR',
      helpValue: '<dir>',
    }),
  };

  public async run(): Promise<DoctorReport> {
    const f = this.flags;
    const report = await runDoctor({
      registryFlag: f.registry,
      trustFlag: f.trust,
      ...(f['run-dir'] ? { runDir: resolve(f['run-dir']) } : {}),
    });
    const width = Math.max(...report.checks.map((c) => c.title.length));
    for (const c of report.checks) {
      this.out(`${MARK[c.status]}  ${c.title.padEnd(width)}  ${c.detail}`);
      if (c.fix && c.status !== 'ok') this.out(`      ${' '.repeat(width)}  fix: ${c.fix}`);
    }
    const { ok, warn, fail } = report.counts;
    this.out(`\n${ok} ok, ${warn} warning(s), ${fail} failure(s).`);
    return report;
  }

  protected override exitCodeOf(report: DoctorReport): number | undefined {
    return report.ok ? undefined : 1;
  }
}
