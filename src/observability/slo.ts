/**
 * The service-level objectives the observability pack alerts on, each as a bad/total ratio (the
 * SLI) over a window, with its error budget, and the multi-window multi-burn-rate pairs of the
 * Google SRE workbook (ch. 5): page when both a long and a short window burn the budget fast (2% of
 * a 30-day budget in 1 h, 5% in 6 h), open a ticket when it burns slowly (10% in 3 days). The short
 * window stops the alert soon after the burn stops. SLIs are summed per cohort (region, tier) so an
 * alert names the cohort it is about.
 *
 * The same numbers back the fleet view (`edgectl fleet status`), which computes them from signed
 * feedback instead of Prometheus: keep the definitions in the two places the same (docs say so).
 */

/** Labels every SLI is summed by: the site labels that define a cohort. */
export const COHORT_LABELS = ['region', 'tier'] as const;

export const WINDOWS = ['5m', '30m', '1h', '2h', '6h', '1d', '3d'] as const;
export type Window = (typeof WINDOWS)[number];

export interface BurnRateAlert {
  severity: 'page' | 'ticket';
  long: Window;
  short: Window;
  factor: number;
  /** `for:` of the alert: a burn must hold this long (a blip does not page). */
  for: string;
}

/** SRE workbook table 5-8, for a 30-day SLO period. */
export const BURN_RATE_ALERTS: readonly BurnRateAlert[] = [
  { severity: 'page', long: '1h', short: '5m', factor: 14.4, for: '2m' },
  { severity: 'page', long: '6h', short: '30m', factor: 6, for: '15m' },
  { severity: 'ticket', long: '1d', short: '2h', factor: 3, for: '1h' },
  { severity: 'ticket', long: '3d', short: '6h', factor: 1, for: '3h' },
];

export interface Slo {
  /** Used in rule and alert names: `cohort:edgectl_slo_<name>:error_ratio_rate<w>`. */
  name: string;
  alert: string;
  summary: string;
  /** Allowed share of bad events (1 - objective). */
  budget: number;
  /**
   * Bad and total event rates per instance over a window (`$w`). For `freshness` the SLI is a
   * 0/1 gauge averaged over time, so `total` is the constant 1 and `bad` an avg_over_time.
   */
  bad: (w: Window) => string;
  total: (w: Window) => string;
}

/** Seconds without a completed sync after which a site counts as stale (freshness SLI). */
export const STALE_AFTER_SECONDS = 300;
/**
 * An index is getting stale (the EdgectlIndexStale alert) past this share of the staleness budget
 * its site's policy sets (`retrieval.maxAge`, exported as `edgectl_index_max_age_seconds`): early
 * enough to re-publish it before requests are warned or refused.
 */
export const INDEX_BUDGET_SHARE = 0.8;
/** Index age that alerts when the policy sets no budget: a corpus with no new document in a day. */
export const INDEX_STALE_AFTER_SECONDS = 86_400;
/** TTFT objective: this share of requests get their first token within TTFT_THRESHOLD_SECONDS. */
export const TTFT_THRESHOLD_SECONDS = 1;

export const SLOS: readonly Slo[] = [
  {
    name: 'ttft',
    alert: 'EdgectlTTFTBudgetBurn',
    summary: `time to first token above ${TTFT_THRESHOLD_SECONDS} s`,
    budget: 0.01,
    bad: (w) =>
      `rate(edgectl_runtime_ttft_seconds_count[${w}]) - ignoring(le) rate(edgectl_runtime_ttft_seconds_bucket{le="${TTFT_THRESHOLD_SECONDS}"}[${w}])`,
    total: (w) => `rate(edgectl_runtime_ttft_seconds_count[${w}])`,
  },
  {
    name: 'errors',
    alert: 'EdgectlErrorBudgetBurn',
    summary: 'requests failing',
    budget: 0.005,
    bad: (w) => `rate(edgectl_runtime_events_total{event="error"}[${w}])`,
    total: (w) => `rate(edgectl_runtime_requests_total[${w}])`,
  },
  {
    name: 'violations',
    alert: 'EdgectlViolationBudgetBurn',
    summary: 'requests refused by a policy block rule',
    budget: 0.01,
    bad: (w) => `rate(edgectl_runtime_requests_total{route="blocked"}[${w}])`,
    total: (w) => `rate(edgectl_runtime_requests_total[${w}])`,
  },
  {
    name: 'freshness',
    alert: 'EdgectlFreshnessBudgetBurn',
    summary: `sites without a completed sync for more than ${STALE_AFTER_SECONDS} s`,
    budget: 0.01,
    bad: (w) => `avg_over_time(instance:edgectl_site_stale:bool[${w}])`,
    total: () => `instance:edgectl_site_stale:bool * 0 + 1`,
  },
];

/** The record name of an SLO's error ratio over a window, per cohort. */
export function ratioRecord(slo: Slo, w: Window): string {
  return `cohort:edgectl_slo_${slo.name}:error_ratio_rate${w}`;
}
