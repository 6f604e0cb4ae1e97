import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../src/cli/base-command.js';
import { displayPath } from '../src/fleet/service.js';
import { initProject, type InitResult } from '../src/init/scaffold.js';

export default class Init extends BaseCommand<typeof Init> {
  static override summary =
    'Scaffold a GitOps repository for a fleet (edgectl.yaml, sites/, artifacts/, CI).';
  static override description =
    'Writes edgectl.yaml (registry, trust root and key paths), sites/ with one example site (its secret key goes ' +
    'to .edgectl/sites/<name>/, never into git), artifacts/ with what the example site runs (the bundled draft ' +
    'model, support adapter and default policy: publish them, then the example plans and applies) and a README on ' +
    'the layout, trust/, keys/, a .gitignore that keeps secret keys and local state out of git, a package.json ' +
    'pinning this edgectl (or --edgectl-spec) and .github/workflows/edgectl.yml (plan on pull request, apply on ' +
    'merge to main, publish on tag, canary rollout gated on its exit code; every job installs the pinned edgectl ' +
    'and fails at its first step when a repository variable or secret it needs is missing). Refuses a non-empty ' +
    'directory (a lone .git is fine) unless --force, which writes only the missing files and keeps every existing one.';
  static override examples = [
    '<%= config.bin %> init my-fleet',
    'git init && <%= config.bin %> init .',
    '<%= config.bin %> init my-fleet --edgectl-spec ./edgectl-0.1.0.tgz',
    '<%= config.bin %> init my-fleet --edgectl-spec github:my-org/edgectl#v0.1.0',
    '<%= config.bin %> init . --force --json',
  ];
  static override args = {
    dir: Args.string({ description: 'Directory to scaffold (created if missing).', default: '.' }),
  };
  static override flags = {
    force: Flags.boolean({
      summary: 'Write into a non-empty directory: add missing files, keep existing ones.',
    }),
    'edgectl-spec': Flags.string({
      summary:
        'The edgectl the repository and its CI install: a version, a tarball (path or URL) or a git spec.',
      description:
        'Pinned as devDependencies.edgectl in package.json (default: the version running init). A local ' +
        'tarball is copied into vendor/ and pinned as file:vendor/<name>; commit it.',
      helpValue: '<version|tarball|git spec>',
    }),
  };

  public async run(): Promise<InitResult> {
    const result = initProject({
      dir: this.args.dir,
      force: this.flags.force,
      edgectlSpec: this.flags['edgectl-spec'],
    });
    const show = displayPath();
    this.out(
      `Scaffolded ${show(result.dir)}: ${result.created.length} file(s) written, ${result.kept.length} kept.`,
    );
    for (const f of result.created) this.out(`  + ${f}`);
    for (const f of result.kept) this.out(`  = ${f} (kept)`);
    this.out(
      `Example site ${result.site.name}: key ${result.site.keyid} in ${show(result.site.secretKeyPath)}.`,
    );
    this.out(`CI installs edgectl ${result.edgectl} (package.json devDependencies).`);
    this.out('Next:');
    if (result.dir !== process.cwd()) this.out(`  cd ${show(result.dir)}`);
    for (const c of result.next) this.out(`  ${c}`);
    return result;
  }
}
