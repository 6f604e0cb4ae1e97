/**
 * Typed errors and the exit codes they carry (docs/architecture.md "Conventions").
 *
 * Everything in src/ throws one of these; the base command maps them to an exit code, a one-line
 * message on stderr and, with --json, an error object on stdout. A suggestion tells the user what to
 * do next. Nothing here imports oclif, so services and tests use the same classes.
 */

export const ExitCode = {
  Ok: 0,
  Error: 1,
  Usage: 2,
  NotFound: 3,
  Verification: 4,
  RolledBack: 5,
  Paused: 6,
  Timeout: 7,
  Interrupted: 130,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export interface ErrorDetails {
  /** What the user can do about it. */
  suggestion?: string;
  /** A short machine-readable code, e.g. `E_SIGNATURE`. */
  code?: string;
  /** Structured context for --json output (file, field, chunk...). */
  details?: Record<string, unknown>;
  cause?: unknown;
}

export class EdgectlError extends Error {
  readonly exitCode: ExitCode;
  readonly suggestion: string | undefined;
  readonly code: string;
  readonly details: Record<string, unknown> | undefined;

  constructor(message: string, exitCode: ExitCode, opts: ErrorDetails = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.exitCode = exitCode;
    this.suggestion = opts.suggestion;
    this.code = opts.code ?? 'E_EDGECTL';
    this.details = opts.details;
  }
}

/** Invalid input: bad flags, bad files, invalid YAML, refused republish (exit 2). */
export class UserError extends EdgectlError {
  constructor(message: string, opts: ErrorDetails = {}) {
    super(message, ExitCode.Usage, { code: 'E_INPUT', ...opts });
  }
}

/** A signature, hash, expiry or rollback check failed (exit 4). Nothing was written. */
export class VerificationError extends EdgectlError {
  constructor(message: string, opts: ErrorDetails = {}) {
    super(message, ExitCode.Verification, { code: 'E_VERIFY', ...opts });
  }
}

/** The named thing does not exist (exit 3). */
export class NotFoundError extends EdgectlError {
  constructor(message: string, opts: ErrorDetails = {}) {
    super(message, ExitCode.NotFound, { code: 'E_NOT_FOUND', ...opts });
  }
}

/** A deadline passed (exit 7). */
export class TimeoutError extends EdgectlError {
  constructor(message: string, opts: ErrorDetails = {}) {
    super(message, ExitCode.Timeout, { code: 'E_TIMEOUT', ...opts });
  }
}

/** Something outside the user's input failed: registry unreachable, I/O error (exit 1). */
export class OperationalError extends EdgectlError {
  constructor(message: string, opts: ErrorDetails = {}) {
    super(message, ExitCode.Error, { code: 'E_OPERATION', ...opts });
  }
}

/** A create-only or compare-and-swap write lost to another writer; the caller may retry. */
export class ConflictError extends EdgectlError {
  constructor(message: string, opts: ErrorDetails = {}) {
    super(message, ExitCode.Error, { code: 'E_CONFLICT', ...opts });
  }
}

export function isEdgectlError(err: unknown): err is EdgectlError {
  return err instanceof EdgectlError;
}

/** Exit code for any thrown value: typed errors carry theirs, everything else is 1. */
export function exitCodeOf(err: unknown): number {
  if (isEdgectlError(err)) return err.exitCode;
  const oclif = (err as { oclif?: { exit?: number } } | null)?.oclif;
  if (oclif && typeof oclif.exit === 'number') return oclif.exit;
  return ExitCode.Error;
}

/** The JSON shape of an error printed with --json. */
export interface ErrorJson {
  error: {
    code: string;
    message: string;
    exitCode: number;
    suggestion?: string;
    details?: Record<string, unknown>;
  };
}

export function errorToJson(err: unknown): ErrorJson {
  const message = err instanceof Error ? err.message : String(err);
  const exitCode = exitCodeOf(err);
  if (isEdgectlError(err)) {
    return {
      error: {
        code: err.code,
        message,
        exitCode,
        ...(err.suggestion ? { suggestion: err.suggestion } : {}),
        ...(err.details ? { details: err.details } : {}),
      },
    };
  }
  return { error: { code: exitCode === ExitCode.Usage ? 'E_USAGE' : 'E_UNEXPECTED', message, exitCode } };
}
