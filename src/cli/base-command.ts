/**
 * The one base command every edgectl command extends. It owns the cross-cutting CLI conventions
 * (docs/architecture.md "Conventions"): `--json` (oclif's enableJsonFlag: the typed result on stdout, nothing
 * else), `--log-level`, TTY/CI detection for progress rendering, and the mapping from thrown errors to
 * exit codes and messages. It also gives every command what would otherwise be hand-rolled in each:
 * the run's abort signal (`this.signal`: Ctrl-C exits 130), the I/O host services report through
 * (`this.io`), the project configuration, and the exit code of a successful run, taken from its
 * result (`exitCodeOf`). src/cli is the only part of src/ that imports oclif; commands parse flags,
 * make one call into a service in src/ and return its typed result.
 */
import { Command, Flags, type Interfaces } from '@oclif/core';
import { errorToJson, exitCodeOf, isEdgectlError, ExitCode } from '../foundation/errors.js';
import { interrupted, onInterrupt, type InterruptHandle } from './interrupt.js';
import { isInteractive, type Io, type LogFormat, type LogLevel } from '../foundation/output.js';
import { stderrIo } from './terminal-host.js';
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
  private interruptHandle: InterruptHandle | undefined;
  private resultStreamed = false;
  private failed = false;
  private readonly flagInputs = new Map<string, string>();

  /** The text given for a flag (a duration as typed, for messages), or `fallback` when it was not given. */
  protected flagText(name: string, fallback: string): string {
    return this.flagInputs.get(name) ?? fallback;
  }

  /**
   * The run's abort signal: aborted by SIGINT (the run then exits 130) or SIGTERM. The listeners are
   * installed on first use and removed when the command ends; long work passes it to its service.
   */
  protected get signal(): AbortSignal {
    this.interruptHandle ??= onInterrupt();
    return this.interruptHandle.signal;
  }

  /** Whether the run's signal was aborted (false when the command never asked for it). */
  protected get aborted(): boolean {
    return this.interruptHandle?.signal.aborted ?? false;
  }

  /**
   * The exit code of a successful run, from its result; `undefined` leaves it 0 (130 when the run was
   * interrupted). Commands whose result carries an outcome (a rollout report) override it.
   */
  protected exitCodeOf(_result: unknown): number | undefined {
    return undefined;
  }

  /** The exit code of a failed run, from the error's (a command may fold codes, e.g. --detailed-exitcode). */
  protected exitCodeOfError(code: number): number {
    return code;
  }

  /** For a command that already wrote its results as JSON lines (a --watch stream): oclif must not print it again. */
  protected markResultStreamed(): void {
    this.resultStreamed = true;
  }

  public override async _run<R>(): Promise<R> {
    const result = await super._run<R>();
    if (!this.failed) {
      const code =
        (result === undefined ? undefined : this.exitCodeOf(result)) ??
        (interrupted() ? ExitCode.Interrupted : undefined);
      if (code !== undefined) process.exitCode = code;
    }
    // A streamed --json watch ends here: lingering sockets of its polling must not hold the process.
    if (this.resultStreamed && !this.human) process.exit(process.exitCode ?? 0);
    return result;
  }

  protected override logJson(json: unknown): void {
    if (!this.resultStreamed) super.logJson(json);
  }

  protected override async finally(err: Error | undefined): Promise<void> {
    this.interruptHandle?.dispose();
    await super.finally(err);
  }

  public override async init(): Promise<void> {
    await super.init();
    const { args, flags, raw } = await this.parse({
      flags: this.ctor.flags,
      baseFlags: (super.ctor as typeof BaseCommand).baseFlags,
      enableJsonFlag: this.ctor.enableJsonFlag,
      args: this.ctor.args,
      strict: this.ctor.strict,
    });
    this.flags = flags as BaseFlags<T>;
    this.args = args as BaseArgs<T>;
    for (const r of raw) if (r.type === 'flag') this.flagInputs.set(r.flag, r.input);
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
    this.failed = true;
    // A typed flag's parser (a duration) threw our error; oclif wrapped its message: unwrap it.
    if (isEdgectlError(err))
      err.message = err.message.replace(/^Parsing --[\w-]+ \n\t([\s\S]*)\nSee more help with --help$/, '$1');
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
    process.exitCode = this.exitCodeOfError(code);
  }
}
