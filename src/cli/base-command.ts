/**
 * The one base command every edgectl command extends. It owns the cross-cutting CLI conventions
 * (DESIGN: CLI conventions): `--json` (oclif's enableJsonFlag: the typed result on stdout, nothing
 * else), `--log-level`, TTY/CI detection for progress rendering, and the mapping from thrown errors to
 * exit codes and messages. src/cli is the only part of src/ that imports oclif; commands call one
 * service function in src/ and return its typed result.
 */
import { Command, Flags, type Interfaces } from '@oclif/core';
import { errorToJson, exitCodeOf, isEdgectlError, ExitCode } from './errors.js';
import { isInteractive, stderrIo, type Io, type LogLevel } from './output.js';
import { loadProjectConfig, type ProjectConfig } from '../config/project.js';

export type BaseFlags<T extends typeof Command> = Interfaces.InferredFlags<
  (typeof BaseCommand)['baseFlags'] & T['flags']
>;
export type BaseArgs<T extends typeof Command> = Interfaces.InferredArgs<T['args']>;

export abstract class BaseCommand<T extends typeof Command> extends Command {
  static override enableJsonFlag = true;

  static override baseFlags = {
    'log-level': Flags.option({
      options: ['debug', 'info', 'warn', 'error'] as const,
      default: 'info' as const,
      helpGroup: 'GLOBAL',
      summary: 'Verbosity of progress and logs on stderr.',
    })(),
  };

  protected flags!: BaseFlags<T>;
  protected args!: BaseArgs<T>;
  protected io!: Io;

  public override async init(): Promise<void> {
    await super.init();
    const { args, flags } = await this.parse({
      flags: this.ctor.flags,
      baseFlags: (super.ctor as typeof BaseCommand).baseFlags,
      enableJsonFlag: this.ctor.enableJsonFlag,
      args: this.ctor.args,
      strict: this.ctor.strict,
    });
    this.flags = flags as BaseFlags<T>;
    this.args = args as BaseArgs<T>;
    const level = (this.flags['log-level'] ?? 'info') as LogLevel;
    this.io = stderrIo(level, isInteractive() && !this.jsonEnabled());
  }

  /**
   * Project configuration (edgectl.yaml), with `--registry` applied when given and the command's own
   * `--trust` flag, if it has one, applied to `trustPath`.
   */
  protected projectConfig(registryFlag?: string): ProjectConfig {
    const trust = (this.flags as Record<string, unknown> | undefined)?.trust;
    return loadProjectConfig({ registryFlag, trustFlag: typeof trust === 'string' ? trust : undefined });
  }

  /** True when the command should print human output (no --json). */
  protected get human(): boolean {
    return !this.jsonEnabled();
  }

  /** Writes a human result line on stdout (only without --json). */
  protected out(line: string): void {
    if (this.human) process.stdout.write(`${line}\n`);
  }

  protected override async catch(err: Error & { exitCode?: number }): Promise<void> {
    const code = exitCodeOf(err);
    const debug = this.flags?.['log-level'] === 'debug' || process.argv.includes('debug');
    if (this.jsonEnabled()) {
      process.stdout.write(`${JSON.stringify(errorToJson(err), null, 2)}\n`);
    } else {
      process.stderr.write(`Error: ${err.message}\n`);
      if (isEdgectlError(err) && err.suggestion) process.stderr.write(`  Try: ${err.suggestion}\n`);
      if (!isEdgectlError(err) && code === ExitCode.Usage) {
        process.stderr.write(`  See: ${this.config.bin} ${(this.id ?? '').replaceAll(':', ' ')} --help\n`);
      }
    }
    if (debug && err.stack) process.stderr.write(`${err.stack}\n`);
    process.exitCode = code;
  }
}
