/**
 * Rollout specs (`rollouts/<name>.yaml`, `rollout canary --spec`, and the flags for the common
 * case): the zod schema, the documented defaults, and the normalized form the controller runs and
 * the `rollout.start` op records (so `rollout resume` never needs the file again).
 *
 * Step grammar (one for files and flags): `10%` is a share of the selected sites; in `--steps` a
 * bare number is a share too (`--steps 10,50,100`), in YAML a bare integer is a count of sites
 * (`3`); `3 sites` is a count everywhere; `all` is every selected site. Each wave's size is rounded
 * up and is at least one site; waves that would not grow are dropped, and the last wave is always
 * the whole selection (a rollout that passes its last listed step is promoted to every selected
 * site).
 *
 * A `shadow` step (only first: `steps: [shadow, 10%, all]`, long form `{ shadow: 25% }`, or
 * `--shadow`) runs the candidate in shadow on its sites before any wave serves it; it is kept
 * apart from the waves (`RolloutSpec.shadow`), so wave numbering is the same with or without it.
 *
 * The file's schema and the step grammar's parser are in spec-file.ts (re-exported here); this
 * module owns the defaults, normalization and wave sizing (docs/rollouts.md).
 */
import { UserError } from '../foundation/errors.js';
import { parseRef } from '../artifact/ref.js';
import { canonicalJsonBytes } from '../foundation/canonical-json.js';
import { digestOf } from '../foundation/digest.js';
import { parseDuration } from '../foundation/duration.js';
import type { JsonValue } from '../fleet/rollout-ops.js';
import type { MetricName, MetricSpec } from './judge/types.js';
import { parseSelector } from './selector.js';
import { isShadowStep, ms, parseStepText, type MetricEntry, type RolloutFile } from './spec-file.js';

export { parseSpecText, readSpecFile, rolloutFileSchema, type RolloutFile } from './spec-file.js';

/** Defaults of every metric the judge knows (used when a spec lists the metric without them). */
export const METRIC_DEFAULTS: Readonly<Record<MetricName, Omit<MetricSpec, 'metric'>>> = {
  acceptance: { margin: 0.05, minSamples: 2000, dryRun: false, alpha: 0.01 },
  ttft: { margin: 0.1, minSamples: 200, dryRun: false, alpha: 0.01 },
  e2e: { margin: 0.1, minSamples: 200, dryRun: false, alpha: 0.01 },
  // An absolute allowance of one point: with no errors in either arm, showing "not worse" within
  // a purely relative margin takes thousands of requests; with it, about 400 per arm.
  errorRate: { margin: 0.25, minSamples: 200, dryRun: false, alpha: 0.01, absoluteMargin: 0.01 },
  policyViolations: { margin: 0.25, minSamples: 200, dryRun: false, alpha: 0.01 },
};

/** The metrics judged when a spec names none. */
export const DEFAULT_METRICS: readonly MetricName[] = ['acceptance', 'errorRate', 'ttft'];

export const SPEC_DEFAULTS = {
  sites: '',
  steps: ['10%', '50%', '100%'],
  interval: '30s',
  pause: '0s',
  stepTimeout: '30m',
  timeout: '6h',
  onInconclusive: 'pause',
  abort: { errorRate: 0.5, minRequests: 50, speculativeDrop: 0.5 },
} as const;

export type StepSize = { share: number } | { count: number } | { all: true };

export interface NormalizedStep {
  size: StepSize;
  /** Minimum time the wave runs before it may advance (soak), ms. */
  pauseMs: number;
  /** Time the step may stay inconclusive before `onInconclusive` applies, ms. */
  timeoutMs: number;
}

/** The shadow step: `size` null means as many sites as the first wave. */
export interface ShadowStep {
  size: StepSize | null;
  pauseMs: number;
  timeoutMs: number;
}

/** What the controller runs: every default filled in, durations in ms. Plain JSON. */
export interface RolloutSpec {
  candidate: string;
  sites: string;
  /** Absent without a shadow step (so specs recorded before shadow steps read the same). */
  shadow?: ShadowStep;
  steps: NormalizedStep[];
  metrics: MetricSpec[];
  intervalMs: number;
  timeoutMs: number;
  onInconclusive: 'pause' | 'rollback' | 'promote';
  /**
   * errorRate: canary share of failed or unverified requests that rolls back at once.
   * speculativeDrop: how far (absolute share) the canary's speculatively served requests may fall
   * below the baseline's before it rolls back: a candidate whose drafts the router stops trusting
   * (too uncertain, so requests go to the cloud or stay on the edge) drafts nothing to judge.
   */
  abort: { errorRate: number; minRequests: number; speculativeDrop: number };
}

/** Flags of `rollout canary` that override the file (or make a spec without one). */
export interface SpecOverrides {
  candidate?: string;
  sites?: string;
  /** `--steps 10,50,100`: bare numbers are shares here. */
  steps?: string;
  interval?: string;
  stepTimeout?: string;
  timeout?: string;
  pause?: string;
  onInconclusive?: 'pause' | 'rollback' | 'promote';
  /** `--shadow`: prepend a shadow step (as many sites as the first wave) unless the spec has one. */
  shadow?: boolean;
}

function stepOf(v: string | number): StepSize {
  const r = parseStepText(String(v), 'count');
  if (typeof r === 'string') throw new UserError(r, { code: 'E_SPEC' });
  return r;
}

function flagSteps(text: string): StepSize[] {
  return text.split(',').map((part) => {
    const r = parseStepText(part, 'share');
    if (typeof r === 'string') {
      throw new UserError(`--steps: ${r}`, {
        code: 'E_SPEC',
        suggestion: 'list shares or counts: --steps 10,50,100 (percent) or --steps "1 site,50%,all"',
      });
    }
    return r;
  });
}

/** Fills defaults and applies flag overrides; throws UserError for anything missing or invalid. */
/** A duration field's milliseconds; "0" (with or without a unit) is allowed and means none. */
function durationMs(text: string, what: string): number {
  if (/^0+(ms|s|m|h)?$/.test(text.trim())) return 0;
  return parseDuration(text, what);
}

interface StepPlan {
  steps: NormalizedStep[];
  shadow: ShadowStep | undefined;
}

/** `--steps` (shares; an optional leading `shadow`), each wave with the spec-wide pause and timeout. */
function stepsFromFlag(text: string, pauseMs: number, timeoutMs: number): StepPlan {
  let shadow: ShadowStep | undefined;
  const m = /^\s*shadow\s*(,|$)/i.exec(text);
  if (m) {
    shadow = { size: null, pauseMs, timeoutMs };
    text = text.slice(m[0].length);
    if (text.trim() === '') {
      throw new UserError('--steps: a shadow step needs at least one wave after it', {
        code: 'E_SPEC',
        suggestion: 'e.g. --steps shadow,10,50,100',
      });
    }
  }
  return { steps: flagSteps(text).map((size) => ({ size, pauseMs, timeoutMs })), shadow };
}

/** The file's `steps:` (counts when bare; long forms may override pause and timeout per step). */
function stepsFromFile(file: RolloutFile, pauseMs: number, stepTimeoutMs: number): StepPlan {
  let shadow: ShadowStep | undefined;
  const all = file.steps ?? [...SPEC_DEFAULTS.steps];
  const first = all[0];
  if (first !== undefined && isShadowStep(first)) {
    shadow =
      typeof first === 'object' && 'shadow' in first
        ? {
            size: stepOf(first.shadow),
            pauseMs: first.pause !== undefined ? ms(first.pause) : pauseMs,
            timeoutMs: first.timeout !== undefined ? ms(first.timeout) : stepTimeoutMs,
          }
        : { size: null, pauseMs, timeoutMs: stepTimeoutMs };
  }
  const list = (shadow ? all.slice(1) : all) as (
    string | number | { sites: string | number; pause?: string; timeout?: string }
  )[];
  const steps = list.map((s) =>
    typeof s === 'object'
      ? {
          size: stepOf(s.sites),
          pauseMs: s.pause !== undefined ? ms(s.pause) : pauseMs,
          timeoutMs: s.timeout !== undefined ? ms(s.timeout) : stepTimeoutMs,
        }
      : { size: stepOf(s), pauseMs, timeoutMs: stepTimeoutMs },
  );
  return { steps, shadow };
}

/** The listed metrics (or the default set), each with the judge's defaults filled in. */
function metricsOf(file: RolloutFile): MetricSpec[] {
  const listed: MetricEntry[] = file.analysis?.metrics ?? DEFAULT_METRICS.map((metric) => ({ metric }));
  return listed.map((m) => {
    const d = METRIC_DEFAULTS[m.metric];
    return {
      metric: m.metric,
      margin: m.margin ?? d.margin,
      minSamples: m.minSamples ?? d.minSamples,
      dryRun: m.dryRun ?? d.dryRun,
      alpha: m.alpha ?? d.alpha,
      ...((m.absoluteMargin ?? d.absoluteMargin) !== undefined
        ? { absoluteMargin: (m.absoluteMargin ?? d.absoluteMargin) as number }
        : {}),
    };
  });
}

/** Fills defaults and applies flag overrides; throws UserError for anything missing or invalid. */
export function normalizeSpec(file: RolloutFile, over: SpecOverrides = {}): RolloutSpec {
  const candidate = over.candidate ?? file.candidate;
  if (!candidate) {
    throw new UserError(
      'no candidate: give the ref to roll out (rollout canary <ref>) or `candidate:` in the spec',
      {
        code: 'E_SPEC',
      },
    );
  }
  parseRef(candidate);
  const sites = over.sites ?? file.sites ?? SPEC_DEFAULTS.sites;
  parseSelector(sites);
  const pauseMs = durationMs(over.pause ?? file.pause ?? SPEC_DEFAULTS.pause, 'pause');
  const stepTimeoutMs = durationMs(
    over.stepTimeout ?? file.stepTimeout ?? SPEC_DEFAULTS.stepTimeout,
    'stepTimeout',
  );
  const plan =
    over.steps !== undefined
      ? stepsFromFlag(over.steps, pauseMs, stepTimeoutMs)
      : stepsFromFile(file, pauseMs, stepTimeoutMs);
  const { steps } = plan;
  let { shadow } = plan;
  const metrics = metricsOf(file);
  const intervalMs = durationMs(
    over.interval ?? file.analysis?.interval ?? SPEC_DEFAULTS.interval,
    'interval',
  );
  if (!shadow && over.shadow) shadow = { size: null, pauseMs, timeoutMs: stepTimeoutMs };
  if (steps.length === 0) {
    throw new UserError('a shadow step needs at least one wave after it', { code: 'E_SPEC' });
  }
  return {
    candidate,
    sites,
    ...(shadow ? { shadow } : {}),
    steps,
    metrics,
    intervalMs: Math.max(intervalMs, 10),
    timeoutMs: durationMs(over.timeout ?? file.timeout ?? SPEC_DEFAULTS.timeout, 'timeout'),
    onInconclusive: over.onInconclusive ?? file.onInconclusive ?? SPEC_DEFAULTS.onInconclusive,
    abort: {
      errorRate: file.abort?.errorRate ?? SPEC_DEFAULTS.abort.errorRate,
      minRequests: file.abort?.minRequests ?? SPEC_DEFAULTS.abort.minRequests,
      speculativeDrop: file.abort?.speculativeDrop ?? SPEC_DEFAULTS.abort.speculativeDrop,
    },
  };
}

/** The spec as the JSON the `rollout.start` op records, and its digest. */
export function specJson(spec: RolloutSpec): { json: { [key: string]: JsonValue }; digest: string } {
  const json = JSON.parse(JSON.stringify(spec)) as { [key: string]: JsonValue };
  return { json, digest: digestOf(canonicalJsonBytes(json)) };
}

/** Reads back the spec a `rollout.start` op recorded. */
export function specFromJson(json: { [key: string]: JsonValue }): RolloutSpec {
  return json as unknown as RolloutSpec;
}

/** Sites in the shadow step for `n` selected sites whose first wave has `firstWave` sites. */
export function shadowSize(shadow: ShadowStep, n: number, firstWave: number): number {
  const s = shadow.size;
  const raw =
    s === null
      ? firstWave
      : 'all' in s
        ? n
        : 'count' in s
          ? Math.min(s.count, n)
          : Math.ceil((s.share / 100) * n - 1e-9);
  return Math.max(1, Math.min(n, raw));
}

/**
 * Cumulative canary sizes for `n` selected sites: rounded up, at least 1, strictly growing, the
 * last one `n`. Throws UserError when the first wave would leave no baseline to compare with.
 */
export function waveSizes(
  steps: readonly NormalizedStep[],
  n: number,
): { sizes: number[]; steps: NormalizedStep[] } {
  const sizes: number[] = [];
  const kept: NormalizedStep[] = [];
  for (const s of steps) {
    const raw =
      'all' in s.size
        ? n
        : 'count' in s.size
          ? Math.min(s.size.count, n)
          : Math.ceil((s.size.share / 100) * n - 1e-9);
    const size = Math.max(1, Math.min(n, raw));
    if (size <= (sizes.at(-1) ?? 0)) continue;
    sizes.push(size);
    kept.push(s);
  }
  if (sizes.at(-1) !== n) {
    sizes.push(n);
    kept.push({ size: { all: true }, pauseMs: 0, timeoutMs: kept.at(-1)?.timeoutMs ?? 0 });
  }
  if ((sizes[0] ?? n) >= n) {
    throw new UserError(
      `the first step would put all ${n} selected site${n === 1 ? '' : 's'} on the candidate, leaving no baseline to compare with`,
      {
        code: 'E_SPEC',
        suggestion: 'select more sites (--sites) or start with a smaller step (--steps 10,50,100)',
      },
    );
  }
  return { sizes, steps: kept };
}
