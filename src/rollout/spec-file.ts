/**
 * The rollout spec file as written (`rollouts/<name>.yaml`): its zod schema, the step grammar
 * shared with `--steps` (`parseStepText`), and reading/parsing a file with typed errors. spec.ts
 * turns a parsed file plus flags into the normalized `RolloutSpec`; the file format is documented
 * in docs/rollouts.md and docs/formats.md.
 */
import { z } from 'zod';
import { parseYamlWithSchema, readYamlWithSchema, type ParsedYaml } from '../config/yaml-file.js';
import { parseRef } from '../artifact/ref.js';
import { parseDuration } from '../foundation/duration.js';
import { METRIC_NAMES } from './judge/types.js';
import { parseSelector } from './selector.js';
import type { StepSize } from './spec.js';

const STEP_TEXT_RE = /^\s*(?:(\d+(?:\.\d+)?)\s*%|(\d+)\s*sites?|(all))\s*$/i;

export function parseStepText(text: string, bareIs: 'share' | 'count'): StepSize | string {
  const bare = /^\s*(\d+(?:\.\d+)?)\s*$/.exec(text);
  const m = bare ? null : STEP_TEXT_RE.exec(text);
  if (bare) {
    const n = Number(bare[1]);
    if (bareIs === 'count')
      return Number.isInteger(n) && n >= 1 ? { count: n } : 'a count is a whole number >= 1';
    return n > 0 && n <= 100 ? { share: n } : 'a share is a percentage in (0, 100]';
  }
  if (!m) return `"${text}" is not a step: use 10%, "3 sites" or all`;
  if (m[3]) return { all: true };
  if (m[2]) return Number(m[2]) >= 1 ? { count: Number(m[2]) } : 'a count is a whole number >= 1';
  const share = Number(m[1]);
  return share > 0 && share <= 100 ? { share } : 'a share is a percentage in (0, 100]';
}

const duration = z.string().refine(
  (v) => {
    if (/^0+(ms|s|m|h)?$/.test(v.trim())) return true;
    try {
      parseDuration(v);
      return true;
    } catch {
      return false;
    }
  },
  { message: 'must be a duration like 30s, 5m or 1h' },
);

export function ms(text: string): number {
  return /^0+(ms|s|m|h)?$/.test(text.trim()) ? 0 : parseDuration(text);
}

const stepSize = z.union([z.string(), z.number()]).superRefine((v, ctx) => {
  const r = parseStepText(String(v), typeof v === 'number' ? 'count' : 'count');
  if (typeof r === 'string') ctx.addIssue({ code: 'custom', message: r });
});

const shadowLiteral = z.string().regex(/^\s*shadow\s*$/i);
const shadowLong = z.strictObject({
  shadow: stepSize,
  pause: duration.optional(),
  timeout: duration.optional(),
});
const stepSchema = z.union([
  shadowLiteral,
  shadowLong,
  stepSize,
  z.strictObject({ sites: stepSize, pause: duration.optional(), timeout: duration.optional() }),
]);

export function isShadowStep(s: unknown): boolean {
  return (
    (typeof s === 'string' && /^\s*shadow\s*$/i.test(s)) ||
    (typeof s === 'object' && s !== null && 'shadow' in s)
  );
}

const fraction = (what: string) => z.number().gt(0, `${what} must be > 0`).lt(1, `${what} must be < 1`);

const metricSchema = z.strictObject({
  metric: z.enum(METRIC_NAMES, { error: `metric must be one of ${METRIC_NAMES.join(', ')}` }),
  margin: z.number().min(0).max(10).optional(),
  minSamples: z.number().int().min(1).optional(),
  dryRun: z.boolean().optional(),
  alpha: fraction('alpha').max(0.2, 'alpha above 0.2 would roll back good candidates too often').optional(),
  absoluteMargin: z.number().min(0).max(1).optional(),
});

const selectorSchema = z.string().superRefine((v, ctx) => {
  try {
    parseSelector(v);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
  }
});

const candidateSchema = z.string().superRefine((v, ctx) => {
  try {
    parseRef(v);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
  }
});

/** The YAML file as written. */
export const rolloutFileSchema = z
  .strictObject({
    candidate: candidateSchema.optional(),
    sites: selectorSchema.optional(),
    steps: z.array(stepSchema).min(1, 'at least one step').optional(),
    analysis: z
      .strictObject({
        interval: duration.optional(),
        metrics: z
          .array(metricSchema)
          .min(1, 'list at least one metric, or leave analysis.metrics out')
          .optional(),
      })
      .optional(),
    pause: duration.optional(),
    stepTimeout: duration.optional(),
    timeout: duration.optional(),
    onInconclusive: z.enum(['pause', 'rollback', 'promote']).optional(),
    abort: z
      .strictObject({
        errorRate: fraction('abort.errorRate').optional(),
        minRequests: z.number().int().min(1).optional(),
        speculativeDrop: z.number().gt(0).max(1).optional(),
      })
      .optional(),
  })
  .superRefine((v, ctx) => {
    v.steps?.forEach((s, i) => {
      if (i > 0 && isShadowStep(s)) {
        ctx.addIssue({
          code: 'custom',
          message: 'a shadow step can only be the first step',
          path: ['steps', i],
        });
      }
    });
    if (v.steps && v.steps.length === 1 && isShadowStep(v.steps[0])) {
      ctx.addIssue({
        code: 'custom',
        message: 'a shadow step needs at least one wave after it',
        path: ['steps'],
      });
    }
    const seen = new Set<string>();
    v.analysis?.metrics?.forEach((m, i) => {
      if (seen.has(m.metric)) {
        ctx.addIssue({
          code: 'custom',
          message: `metric ${m.metric} is listed twice`,
          path: ['analysis', 'metrics', i],
        });
      }
      seen.add(m.metric);
    });
  });
export type RolloutFile = z.infer<typeof rolloutFileSchema>;

/** One `analysis.metrics` entry as written. */
export type MetricEntry = z.infer<typeof metricSchema>;

export function parseSpecText(text: string, file: string): ParsedYaml<RolloutFile> {
  return parseYamlWithSchema(text, file, rolloutFileSchema);
}

export function readSpecFile(path: string, display = path): ParsedYaml<RolloutFile> {
  return readYamlWithSchema(path, rolloutFileSchema, display);
}
