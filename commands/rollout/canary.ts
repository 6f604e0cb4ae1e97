import { Args, Flags } from '@oclif/core';
import { resolve } from 'node:path';
import { BaseCommand } from '../../src/cli/base-command.js';
import { keyFlag, registryFlag, singleWriterFlag, trustFlag } from '../../src/cli/flags.js';
import { rolloutExitCode, rolloutWriterTarget, waitFlags } from '../../src/cli/rollout-command.js';
import { renderReport, tickLine } from '../../src/rollout/render.js';
import { startCanary, type RolloutReport } from '../../src/rollout/service.js';
import { displayPath } from '../../src/fleet/service.js';

export default class RolloutCanary extends BaseCommand<typeof RolloutCanary> {
  static override summary =
    'Start a canary rollout of an artifact across sites, judged on verifier feedback.';
  static override description =
    'Selects the sites matching --sites (label selector), orders them into waves (--steps: shares like 10,50,100 ' +
    'or counts like "1 site"), and appends `rollout.start` with wave 1 to the fleet log: the wave\'s sites are ' +
    'assigned the candidate, every other selected site is the baseline. With --wait the controller then judges ' +
    'each wave on signed feedback (canary vs baseline over the same time; anytime-valid sequential tests), ' +
    'advances, promotes, rolls back (instantly: sites still hold the previous generation) or pauses, and exits ' +
    'with 0 promoted, 5 rolled back, 6 paused or inconclusive, 7 timed out. Without --wait it returns once the ' +
    'rollout is started; `rollout resume --wait` drives it later (from any machine: the state is the log). ' +
    '--spec takes the full spec (rollouts/<name>.yaml); flags override it. Signs with the fleet key.';
  static override examples = [
    '<%= config.bin %> rollout canary adapter/support@1.1.0 --sites tier=branch --steps 10,50,100 --wait',
    '<%= config.bin %> rollout canary --spec rollouts/support.yaml --wait --timeout 2h --json',
    '<%= config.bin %> rollout canary model/draft@1.1.0 --sites "region in (eu,uk),tier notin (lab)" --steps "1 site,50%"',
  ];
  static override args = {
    ref: Args.string({
      required: false,
      description: 'Candidate ref (<kind>/<name>@<version>); or `candidate:` in --spec.',
    }),
  };
  static override flags = {
    registry: registryFlag,
    trust: trustFlag,
    key: keyFlag,
    'single-writer': singleWriterFlag,
    sites: Flags.string({
      summary:
        'Label selector of the sites to roll out to, kubectl syntax: k=v, k!=v, k in (a,b), k notin (a,b), k, !k (default: all sites).',
      helpValue: 'k=v,...',
    }),
    steps: Flags.string({
      summary: 'Waves as shares (10,50,100) or counts ("1 site"); default 10,50,100.',
      helpValue: 'list',
    }),
    shadow: Flags.boolean({
      summary:
        'Start with a shadow step: the first wave runs the candidate beside the served adapter, never serving it.',
      description:
        "The candidate adapter re-drafts a sample of the sites' requests after each response (verified, discarded); " +
        'its acceptance is judged against the served drafts of the same requests before any user sees it. ' +
        'Adapters only. Same as `shadow` as the first step of --steps or the spec.',
    }),
    spec: Flags.string({
      summary: 'Rollout spec file (YAML); flags override its fields.',
      helpValue: '<file>',
    }),
    ...waitFlags,
    interval: Flags.string({
      summary: 'Time between controller passes (spec default 30s).',
      helpValue: '<duration>',
    }),
    'step-timeout': Flags.string({
      summary: 'How long a step may stay inconclusive (default 30m).',
      helpValue: '<duration>',
    }),
    'on-inconclusive': Flags.option({
      options: ['pause', 'rollback', 'promote'] as const,
      summary: 'What happens when a step is still inconclusive at its timeout (default pause).',
    })(),
    id: Flags.string({ summary: 'Rollout id (default: <name>-<version>-<random>).', helpValue: '<id>' }),
  };

  public async run(): Promise<RolloutReport> {
    const f = this.flags;
    const cfg = this.projectConfig(f.registry);
    const report = await startCanary({
      ...rolloutWriterTarget(cfg, {
        key: f.key,
        id: undefined,
        io: this.io,
        singleWriter: f['single-writer'],
      }),
      ...(this.args.ref ? { candidate: this.args.ref } : {}),
      ...(f.spec ? { specPath: resolve(f.spec), specDisplay: displayPath()(resolve(f.spec)) } : {}),
      overrides: {
        ...(f.sites !== undefined ? { sites: f.sites } : {}),
        ...(f.steps !== undefined ? { steps: f.steps } : {}),
        ...(f.shadow ? { shadow: true } : {}),
        ...(f.interval !== undefined ? { interval: f.interval } : {}),
        ...(f['step-timeout'] !== undefined ? { stepTimeout: f['step-timeout'] } : {}),
        ...(f['on-inconclusive'] !== undefined ? { onInconclusive: f['on-inconclusive'] } : {}),
      },
      ...(f.id ? { id: f.id } : {}),
      wait: f.wait,
      ...(f.timeout !== undefined ? { timeoutMs: f.timeout } : {}),
      signal: this.signal,
      onTick: (t) => this.io.log('info', tickLine(t)),
    });
    for (const line of renderReport(report)) this.out(line);
    return report;
  }

  protected override exitCodeOf(report: RolloutReport): number {
    return rolloutExitCode(report, this.aborted);
  }
}
