/**
 * The one base command every edgectl command extends. It owns the cross-cutting CLI conventions
 * (DESIGN: CLI conventions): `--json` (oclif's enableJsonFlag: the typed result on stdout, nothing
 * else), `--log-level`, TTY/CI detection for progress rendering, and the mapping from thrown errors to
 * exit codes and messages. src/cli is the only part of src/ that imports oclif; commands call one
 * service function in src/ and return its typed result.
 */
import { Command, Flags, type Interfaces } from '@oclif/core';
import { errorToJson, exitCodeOf, isEdgectlError, ExitCode } from './errors.js';
import { isInteractive, stderrIo, type Io, type LogFormat, type LogLevel } from './output.js';
import { loadProjectConfig, type ProjectConfig } from '../config/project.js';
import { editDistance } from './hooks/not-found.js';

/** The known flag closest to a mistyped one, if it is close enough to be what was meant. */
export function closestFlag(typed: string, known: readonly string[]): string | undefined {
  let best: { name: string; d: number } | undefined;
  for (const name of known) {
    const d = name.startsWith(typed) && typed.length >= 3 ? 0 : editDistance(typed, name);
    if (!best || d < best.d) best = { name, d };
  }
  return best && best.d <= Math.max(1, Math.floor(typed.length / 3)) ? best.name : undefined;
}

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
    'log-format': Flags.option({
      options: ['text', 'json'] as const,
      default: 'text' as const,
      env: 'EDGECTL_LOG_FORMAT',
      helpGroup: 'GLOBAL',
      summary: 'Logs on stderr as text lines or one JSON object per line (daemons: for log collectors).',
    })(),
  };

  /**
   * What the command reads from a fleet repository (a directory with edgectl.yaml, or one below it):
   * `registry` (the configured registry) or `sites` (the sites and artifact directories). Run
   * outside one with nothing else given, it warns on stderr instead of silently reading defaults
   * (an empty default registry, a missing sites directory) and reporting success.
   */
  static needsFleetRepository: 'registry' | 'sites' | undefined = undefined;

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
    const format = (this.flags['log-format'] ?? 'text') as LogFormat;
    // Detached daemons started by this command inherit the format through the environment.
    if (format === 'json') process.env.EDGECTL_LOG_FORMAT = 'json';
    this.io = stderrIo(level, isInteractive() && !this.jsonEnabled(), format);
  }

  /**
   * Project configuration (edgectl.yaml), with `--registry` applied when given and the command's own
   * `--trust` flag, if it has one, applied to `trustPath`.
   */
  protected projectConfig(registryFlag?: string): ProjectConfig {
    const trust = (this.flags as Record<string, unknown> | undefined)?.trust;
    const cfg = loadProjectConfig({ registryFlag, trustFlag: typeof trust === 'string' ? trust : undefined });
    const needs = (this.ctor as unknown as typeof BaseCommand).needsFleetRepository;
    if (needs) this.warnOutsideRepository(cfg, needs);
    return cfg;
  }

  /** The warning of `needsFleetRepository`; `lint` calls it itself only when given no paths. */
  protected warnOutsideRepository(cfg: ProjectConfig, needs: 'registry' | 'sites'): void {
    if (cfg.file || (needs === 'registry' && cfg.registrySource !== 'default')) return;
    const what =
      needs === 'registry' ? `the default registry ${cfg.registry}` : `${cfg.sitesDir} and artifacts/`;
    this.io.log(
      'warn',
      `not in a fleet repository (no edgectl.yaml in ${cfg.root} or above): reading ${what}. ` +
        `Run it inside the repository, give --registry or EDGECTL_REGISTRY, or create one with \`${this.config.bin} init\`.`,
    );
  }

  /** True when the command should print human output (no --json). */
  protected get human(): boolean {
    return !this.jsonEnabled();
  }

  /** Writes a human result line on stdout (only without --json). */
  protected out(line: string): void {
    if (this.human) process.stdout.write(`${line}\n`);
  }

  /** "Did you mean --registry?" for each mistyped flag of a NonExistentFlagsError. */
  private flagSuggestions(err: Error): string[] {
    const typed = (err as { flags?: unknown }).flags;
    if (!Array.isArray(typed) || !/^Nonexistent flag/.test(err.message)) return [];
    const ctor = this.ctor as unknown as { flags?: object; baseFlags?: object; enableJsonFlag?: boolean };
    const known = [
      ...Object.keys(ctor.flags ?? {}),
      ...Object.keys(ctor.baseFlags ?? {}),
      ...(ctor.enableJsonFlag ? ['json'] : []),
      'help',
    ];
    return typed.flatMap((t) => {
      const name = String(t).replace(/^-+/, '').split('=')[0] ?? '';
      const best = closestFlag(name, known);
      return best ? [`Did you mean --${best}? (${String(t)} is not a flag of this command)`] : [];
    });
  }

  protected override async catch(err: Error & { exitCode?: number }): Promise<void> {
    const code = exitCodeOf(err);
    const debug = this.flags?.['log-level'] === 'debug' || process.argv.includes('debug');
    if (this.jsonEnabled()) {
      process.stdout.write(`${JSON.stringify(errorToJson(err), null, 2)}\n`);
    } else {
      process.stderr.write(`Error: ${err.message}\n`);
      for (const line of this.flagSuggestions(err)) process.stderr.write(`${line}\n`);
      if (isEdgectlError(err) && err.suggestion) process.stderr.write(`  Try: ${err.suggestion}\n`);
      if (!isEdgectlError(err) && code === ExitCode.Usage) {
        process.stderr.write(`  See: ${this.config.bin} ${(this.id ?? '').replaceAll(':', ' ')} --help\n`);
      }
    }
    if (debug && err.stack) process.stderr.write(`${err.stack}\n`);
    process.exitCode = code;
  }
}
