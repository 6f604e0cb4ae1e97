/**
 * The seam between the rollout judge (`src/rollout/judge/`, pure statistics) and the rollout
 * controller (`src/rollout/`, which reads feedback and writes the fleet log). Types only.
 *
 * The controller filters signed feedback (declared site keys only; canary windows only after the
 * step took effect on that site, i.e. `fleetSeq >=` the step's entry seq and the candidate among the
 * window's refs; baseline windows over the same time) and sums each site's windows into one
 * `ArmSample`. The judge is a pure function of the cumulative samples, so it may be called after
 * every window (anytime-valid: looking often never inflates false rollbacks).
 */
import type { FeedbackCounters, FeedbackLatency } from '../../feedback/report.js';

export const METRIC_NAMES = ['acceptance', 'ttft', 'e2e', 'errorRate', 'policyViolations'] as const;
export type MetricName = (typeof METRIC_NAMES)[number];

export interface MetricSpec {
  metric: MetricName;
  /**
   * Relative non-inferiority margin: how much worse than baseline the canary may be and still
   * pass (0.05 = 5%; for acceptance "worse" is lower, for latency and rates it is higher).
   */
  margin: number;
  /** Below this many samples in either arm (draft tokens for acceptance, requests otherwise): inconclusive. */
  minSamples: number;
  /** Judged and logged, but never rolls back and never holds back a promotion. */
  dryRun: boolean;
  /** Error bound of this metric's sequential test (false rollback rate), default 0.01. */
  alpha: number;
  /**
   * Absolute allowance added to the relative margin, in the unit of the rate the metric compares
   * (so a rate that is zero at baseline can still be shown non-inferior). Defaults
   * (`DEFAULT_ABSOLUTE_MARGIN` in index.ts): acceptance 0, ttft/e2e 0.005 (share of requests above
   * the pooled p95 bucket bound), errorRate and policyViolations 0.001.
   */
  absoluteMargin?: number;
}

/** One site's feedback in one arm, summed over the windows that count. */
export interface ArmSample {
  site: string;
  counters: FeedbackCounters;
  latency: FeedbackLatency;
  /** How many feedback windows were summed. */
  windows: number;
  /**
   * Per-window sums of squares filled by the judge's `sumWindows`/`addWindow`, from which the judge
   * estimates overdispersion (tokens within a request, and requests within a window, are not
   * independent). Optional: without it the judge uses the spread between sites only.
   */
  dispersion?: ArmDispersion;
}

/**
 * For each rate the judge compares (x events out of n per window w): the sum over windows with
 * n > 0 of x^2 / n, and how many such windows there were. Latency keeps one sum per bucket: x is
 * the number of requests above bucket i's bound.
 */
export interface ArmDispersion {
  acceptance: WindowSquares;
  errorRate: WindowSquares;
  policyViolations: WindowSquares;
  ttft: { windows: number; sq: number[] };
  e2e: { windows: number; sq: number[] };
}

export interface WindowSquares {
  windows: number;
  sq: number;
}

export type Verdict = 'pass' | 'fail' | 'inconclusive';

export interface Judgement {
  metric: MetricName;
  verdict: Verdict;
  dryRun: boolean;
  /** The metric per arm: acceptance rate, p95 ms, error or violation rate. */
  value: { canary: number | null; baseline: number | null };
  /** The evidence threshold each statistic is compared with (e.g. 1/alpha for an e-value). */
  boundary: number;
  /** Evidence that the canary is worse than the margin allows (fail), and that it is not (pass). */
  evidence: { fail: number; pass: number };
  samples: { canary: number; baseline: number };
  sites: { canary: string[]; baseline: string[] };
  /** One line a person reads in `rollout status` and the log. */
  reason: string;
  /** The test's internals, for `--json` and the docs (absent when there were too few samples). */
  detail?: JudgementDetail;
}

export interface JudgementDetail {
  /** The rate each arm is compared on (acceptance, error, violation, or share above thresholdMs). */
  rate: { canary: number; baseline: number };
  /** Canary rate minus its non-inferiority boundary, signed so that negative is worse. */
  difference: number;
  standardError: number;
  /** Variance inflation used for each arm (1 = independent Bernoulli trials). */
  dispersion: { canary: number; baseline: number };
  /** Latency only: the bucket bound near the pooled p95 whose exceedance shares are compared. */
  thresholdMs?: number;
}

export type StepDecision = 'promote' | 'rollback' | 'continue';

export interface StepJudgement {
  /** rollback: a non-dry-run metric failed; promote: every non-dry-run metric passed; else continue. */
  decision: StepDecision;
  judgements: Judgement[];
}

/** Implemented in `src/rollout/judge/index.ts`. */
export type JudgeStep = (
  metrics: readonly MetricSpec[],
  canary: readonly ArmSample[],
  baseline: readonly ArmSample[],
) => StepJudgement;
