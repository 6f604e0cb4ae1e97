/**
 * The `rollouts` linter for `edgectl lint`: checks rollout specs (`rollouts/*.yaml` under the
 * project root, or any file passed that lives in a `rollouts/` directory) offline: the schema
 * (file:line: field), then what the schema alone cannot see: steps that would not grow (a later
 * wave no larger than an earlier one is dropped at run time), and a spec whose metrics are all dry
 * runs (then nothing can hold back a promotion). Which sites a selector matches and whether the
 * candidate is published are checked by `rollout canary`, which needs the registry anyway.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { isEdgectlError } from '../foundation/errors.js';
import type { YamlProblem } from '../config/yaml-file.js';
import type { Linter, LintContext } from '../lint/lint.js';
import { parseSpecText, type RolloutFile } from './spec.js';

function rolloutsDir(ctx: LintContext): string {
  return join(ctx.root, 'rollouts');
}

function specFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => /\.ya?ml$/.test(f))
    .sort()
    .map((f) => join(dir, f));
}

function stepValue(
  s: NonNullable<RolloutFile['steps']>[number],
): { kind: 'share' | 'count' | 'all'; n: number } | undefined {
  // A shadow step (first only; the schema checks) is not a wave.
  const v = typeof s === 'object' ? ('sites' in s ? s.sites : undefined) : s;
  if (v === undefined || (typeof v === 'string' && /^\s*shadow\s*$/i.test(v))) return undefined;
  if (typeof v === 'number') return { kind: 'count', n: v };
  const t = v.trim().toLowerCase();
  if (t === 'all') return { kind: 'all', n: Infinity };
  const share = /^(\d+(?:\.\d+)?)\s*%$/.exec(t);
  if (share)
    return Number(share[1]) >= 100 ? { kind: 'all', n: Infinity } : { kind: 'share', n: Number(share[1]) };
  const count = /^(\d+)(\s*sites?)?$/.exec(t);
  return count ? { kind: 'count', n: Number(count[1]) } : undefined;
}

/** Problems of one spec text (exported for tests). */
export function lintSpecText(text: string, file: string): YamlProblem[] {
  let parsed: ReturnType<typeof parseSpecText>;
  try {
    parsed = parseSpecText(text, file);
  } catch (err) {
    if (isEdgectlError(err) && Array.isArray(err.details?.problems))
      return err.details.problems as YamlProblem[];
    throw err;
  }
  const spec = parsed.value;
  const problems: YamlProblem[] = [];
  const steps = spec.steps ?? [];
  let prev: { kind: string; n: number; i: number } | undefined;
  steps.forEach((s, i) => {
    const v = stepValue(s);
    if (!v) return;
    if (prev && (prev.kind === 'all' || (prev.kind === v.kind && v.n <= prev.n))) {
      problems.push({
        file,
        line: parsed.lineOf(['steps', i]),
        field: `steps.${i}`,
        message: `step ${i + 1} is not larger than step ${prev.i + 1}, so it would never run; list steps in growing order`,
      });
    }
    prev = { ...v, i };
  });
  const metrics = spec.analysis?.metrics;
  if (metrics && metrics.length > 0 && metrics.every((m) => m.dryRun === true)) {
    problems.push({
      file,
      line: parsed.lineOf(['analysis', 'metrics']),
      field: 'analysis.metrics',
      message:
        'every metric is a dry run, so nothing can stop a bad candidate; make at least one metric count',
    });
  }
  return problems;
}

export const rolloutsLinter: Linter = {
  id: 'rollouts',
  defaultTargets: (ctx) => (existsSync(rolloutsDir(ctx)) ? [rolloutsDir(ctx)] : []),
  claims: (path, ctx) => {
    const st = statSync(path, { throwIfNoEntry: false });
    if (st?.isDirectory())
      return resolve(path) === resolve(rolloutsDir(ctx)) || basename(path) === 'rollouts';
    return /\.ya?ml$/.test(path) && basename(dirname(path)) === 'rollouts';
  },
  lint(paths, ctx) {
    const files = [
      ...new Set(
        paths.flatMap((p) => (statSync(p, { throwIfNoEntry: false })?.isDirectory() ? specFiles(p) : [p])),
      ),
    ];
    const problems = files.flatMap((f) => lintSpecText(readFileSync(f, 'utf8'), ctx.display(f)));
    return Promise.resolve({ files: files.length, problems });
  },
};
