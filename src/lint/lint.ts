/**
 * `edgectl lint`: offline checks of the project's declarative inputs, with one problem format
 * (`file:line: field: message`, the same as every YAML error in the tool) and exit 2 when anything
 * is wrong. The runner knows nothing about what it checks: each `Linter` says which paths it
 * handles and what it lints by default, so artifact directories and policies plug in by adding a
 * linter to `defaultLinters` (linters.ts) without touching the command or the runner.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { UserError } from '../foundation/errors.js';
import { formatProblem, type YamlProblem } from '../config/yaml-file.js';

export interface LintProblem extends YamlProblem {
  /** Id of the linter that found it (`sites`, `policy`...). */
  linter: string;
}

export interface LintContext {
  /** Project root (the directory holding edgectl.yaml). */
  root: string;
  /** The project's sites directory (edgectl.yaml `sites:`). */
  sitesDir: string;
  /** Turns an absolute path into the name shown in problems. */
  display(path: string): string;
}

export interface Linter {
  id: string;
  /** Paths linted when `edgectl lint` gets none (may be empty). */
  defaultTargets(ctx: LintContext): string[];
  /** Whether this linter handles a path (a file or a directory). */
  claims(path: string, ctx: LintContext): boolean;
  /** Lints the claimed paths; returns how many files it read and what it found. */
  lint(paths: string[], ctx: LintContext): Promise<{ files: number; problems: YamlProblem[] }>;
}

export interface LintReport {
  files: number;
  /** The linters that ran. */
  linters: string[];
  problems: LintProblem[];
}

/** Runs the linters over `paths` (or their default targets); throws UserError for unknown paths. */
export async function runLint(paths: string[], linters: Linter[], ctx: LintContext): Promise<LintReport> {
  const byLinter = new Map<Linter, string[]>();
  const add = (l: Linter, p: string) => byLinter.set(l, [...(byLinter.get(l) ?? []), p]);
  if (paths.length === 0) {
    for (const l of linters) for (const p of l.defaultTargets(ctx)) add(l, p);
  }
  for (const raw of paths) {
    const path = resolve(raw);
    if (!existsSync(path)) {
      throw new UserError(`${raw}: no such file or directory`, { code: 'E_LINT_PATH' });
    }
    const linter = linters.find((l) => l.claims(path, ctx));
    if (!linter) {
      throw new UserError(`${raw}: no linter checks this path`, {
        code: 'E_LINT_PATH',
        suggestion: `lint the sites directory (${ctx.display(ctx.sitesDir)}) or a file in it`,
      });
    }
    add(linter, path);
  }
  let files = 0;
  const problems: LintProblem[] = [];
  for (const [linter, targets] of byLinter) {
    const result = await linter.lint(targets, ctx);
    files += result.files;
    problems.push(...result.problems.map((p) => ({ ...p, linter: linter.id })));
  }
  return { files, linters: [...byLinter.keys()].map((l) => l.id), problems };
}

/** The UserError (exit 2) for a report with problems; details.problems lists them for --json. */
export function lintFailure(report: LintReport): UserError {
  const lines = report.problems.map(formatProblem);
  const n = report.problems.length;
  return new UserError(`${n} problem${n === 1 ? '' : 's'} found:\n  ${lines.join('\n  ')}`, {
    code: 'E_LINT',
    suggestion: 'fix the files listed above and run `edgectl lint` again',
    details: { files: report.files, problems: report.problems },
  });
}
