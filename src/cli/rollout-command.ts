/**
 * The `rollout` commands that act on one rollout (pause, resume, abort, promote, undo), generated
 * from one definition: the optional rollout id argument, the flags of a fleet writer (registry,
 * trust root, fleet key, single writer), the action's own flags (`--reason`; promote's `--full`;
 * resume's `--wait`, `--timeout`, `--interval`), and one call into src/rollout/service.ts whose
 * report is rendered and whose outcome is the exit code. Each command file is only its help text.
 */
import { resolve } from 'node:path';
import { Args, Flags } from '@oclif/core';
import type { ProjectConfig } from '../config/project.js';
import { renderReport, tickLine } from '../rollout/render.js';
import {
  actOnRollout,
  waitRollout,
  type RolloutAct,
  type RolloutReport,
  type WriterTarget,
} from '../rollout/service.js';
import { BaseCommand } from './base-command.js';
import { durationFlag, keyFlag, registryFlag, singleWriterFlag, trustFlag } from './flags.js';
import type { Io } from '../foundation/output.js';

export const rolloutIdArgs = {
  id: Args.string({ required: false, description: 'Rollout id (default: the single active rollout).' }),
};

export const rolloutWriterFlags = {
  registry: registryFlag,
  trust: trustFlag,
  key: keyFlag,
  'single-writer': singleWriterFlag,
};

export const reasonFlag = Flags.string({ summary: 'Why (recorded in the fleet log).', helpValue: '<text>' });

/** `--wait`'s flags (canary and resume): drive the rollout to its end, at most this long. */
export const waitFlags = {
  wait: Flags.boolean({ summary: 'Drive the rollout until it is promoted, rolled back or paused.' }),
  timeout: durationFlag({
    summary: 'With --wait: stop waiting after this long (exit 7); the rollout goes on.',
  }),
};

/** The writer target of a rollout command: the project's registry and trust root, `--key` or the fleet key. */
export function rolloutWriterTarget(
  cfg: ProjectConfig,
  opts: { key: string | undefined; id: string | undefined; io: Io; singleWriter?: boolean },
): WriterTarget & { id?: string } {
  return {
    registryUrl: cfg.registry,
    trustPath: cfg.trustPath,
    keyPath: opts.key ? resolve(opts.key) : cfg.keys.fleet,
    singleWriter: (opts.singleWriter ?? false) || cfg.singleWriter,
    io: opts.io,
    ...(opts.id ? { id: opts.id } : {}),
  };
}

/**
 * The exit code of a rollout report: its outcome's (0, 5, 6, 7), or 130 when the run was
 * interrupted (SIGINT or SIGTERM) while the rollout was still running.
 */
export function rolloutExitCode(report: RolloutReport, aborted: boolean): number {
  return aborted && report.outcome === 'running' ? 130 : report.exitCode;
}

/** The help text of one generated command and the action it takes. */
export interface RolloutActionDefinition {
  action: 'pause' | 'resume' | 'abort' | 'promote' | 'undo';
  summary: string;
  description: string;
  examples: string[];
}

const actionFlags = {
  pause: { reason: reasonFlag },
  abort: { reason: reasonFlag },
  undo: { reason: reasonFlag },
  promote: {
    reason: reasonFlag,
    full: Flags.boolean({ summary: 'Promote to every selected site and end the rollout.' }),
  },
  resume: {
    ...waitFlags,
    interval: durationFlag({ summary: "Time between controller passes (default: the spec's)." }),
  },
};

type ActionFlagValues = {
  reason?: string;
  full?: boolean;
  wait?: boolean;
  timeout?: number;
  interval?: number;
};

/** The command class of one rollout action (the default export of commands/rollout/<action>.ts). */
export function rolloutActionCommand(def: RolloutActionDefinition) {
  return class RolloutActionCommand extends BaseCommand<typeof RolloutActionCommand> {
    static override summary = def.summary;
    static override description = def.description;
    static override examples = def.examples;
    static override args = rolloutIdArgs;
    static override flags = { ...rolloutWriterFlags, ...actionFlags[def.action] };

    public async run(): Promise<RolloutReport> {
      const f = this.flags as typeof this.flags & ActionFlagValues;
      const cfg = this.projectConfig(f.registry);
      const target = rolloutWriterTarget(cfg, {
        key: f.key,
        id: this.args.id,
        io: this.io,
        singleWriter: f['single-writer'],
      });
      const act: RolloutAct = def.action === 'promote' && f.full ? 'promote-full' : def.action;
      const report = f.wait
        ? await waitRollout({
            ...target,
            ...(f.timeout !== undefined ? { timeoutMs: f.timeout } : {}),
            ...(f.interval !== undefined ? { intervalMs: f.interval } : {}),
            signal: this.signal,
            onTick: (t) => this.io.log('info', tickLine(t)),
          })
        : await actOnRollout(act, { ...target, ...(f.reason ? { reason: f.reason } : {}) });
      for (const line of renderReport(report)) this.out(line);
      return report;
    }

    protected override exitCodeOf(report: RolloutReport): number | undefined {
      // Only --wait drives the rollout; a single action succeeded (exit 0) whatever the outcome.
      return (this.flags as ActionFlagValues).wait ? rolloutExitCode(report, this.aborted) : undefined;
    }
  };
}
