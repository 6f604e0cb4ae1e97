/**
 * Prometheus recording and alerting rules for an edgectl fleet, generated from the SLO table
 * (slo.ts) so the windows, budgets and names cannot drift apart. Three groups:
 *
 * - `edgectl.cohort`: per-instance rates of the site runtime's series with the site's cohort
 *   labels (region, tier from `edgectl_site_info`; the edgectl version from `edgectl_build_info`)
 *   joined on, which is what the dashboard sums by cohort;
 * - `edgectl.slo`: each SLO's error ratio per cohort over every burn-rate window;
 * - `edgectl.alerts`: the multi-window multi-burn-rate alerts (page and ticket) plus plain alerts
 *   for a site whose sync is refused or failing and for an index getting stale.
 *
 * Rules are plain objects in the layout of a Prometheus rule file; `rulesYaml` renders them.
 */
import { stringify } from 'yaml';
import {
  BURN_RATE_ALERTS,
  COHORT_LABELS,
  SLOS,
  INDEX_BUDGET_SHARE,
  INDEX_STALE_AFTER_SECONDS,
  STALE_AFTER_SECONDS,
  WINDOWS,
  ratioRecord,
  type Slo,
} from './slo.js';

export interface RecordingRule {
  record: string;
  expr: string;
  labels?: Record<string, string>;
}

export interface AlertingRule {
  alert: string;
  expr: string;
  for?: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

export interface RuleGroup {
  name: string;
  interval?: string;
  rules: (RecordingRule | AlertingRule)[];
}

export interface RuleFile {
  groups: RuleGroup[];
}

const COHORT = COHORT_LABELS.join(', ');
/** The join that puts a site's cohort labels on any of its per-instance series. */
const WITH_COHORT = `* on(instance, job) group_left(site, ${COHORT}, version) edgectl:site_cohort:info`;

/** Per-instance 5-minute rates with the cohort labels joined on: what dashboards sum by cohort. */
function cohortRules(): RecordingRule[] {
  const rate = (metric: string, by: string) =>
    `sum by (instance, job${by ? `, ${by}` : ''}) (rate(${metric}[5m])) ${WITH_COHORT}`;
  return [
    {
      record: 'edgectl:site_cohort:info',
      expr: `edgectl_site_info * on(instance, job) group_left(version) edgectl_build_info{component="site"}`,
    },
    {
      record: 'instance:edgectl_runtime_requests:rate5m',
      expr: rate('edgectl_runtime_requests_total', 'route'),
    },
    { record: 'instance:edgectl_runtime_events:rate5m', expr: rate('edgectl_runtime_events_total', 'event') },
    { record: 'instance:edgectl_runtime_tokens:rate5m', expr: rate('edgectl_runtime_tokens_total', 'kind') },
    {
      record: 'instance:edgectl_runtime_verify_rounds:rate5m',
      expr: rate('edgectl_runtime_verify_rounds_total', ''),
    },
    {
      record: 'instance:edgectl_runtime_ttft_seconds_bucket:rate5m',
      expr: rate('edgectl_runtime_ttft_seconds_bucket', 'le'),
    },
    {
      record: 'instance:edgectl_runtime_request_seconds_bucket:rate5m',
      expr: rate('edgectl_runtime_request_seconds_bucket', 'le'),
    },
    {
      record: 'instance:edgectl_runtime_retrievals:rate5m',
      expr: rate('edgectl_runtime_retrievals_total', 'result'),
    },
    {
      record: 'instance:edgectl_runtime_retrieval_withheld:rate5m',
      expr: rate('edgectl_runtime_retrieval_withheld_total', 'rule'),
    },
    {
      record: 'instance:edgectl_runtime_retrieval_seconds_bucket:rate5m',
      expr: rate('edgectl_runtime_retrieval_seconds_bucket', 'le'),
    },
    {
      record: 'instance:edgectl_site_stale:bool',
      expr: `time() - edgectl_site_last_sync_timestamp_seconds > bool ${STALE_AFTER_SECONDS}`,
    },
  ];
}

function ratioRules(slo: Slo): RecordingRule[] {
  const byCohort = (e: string) =>
    `sum by (${COHORT}) ((${e}) * on(instance, job) group_left(${COHORT}) edgectl_site_info)`;
  return WINDOWS.map((w) => ({
    record: ratioRecord(slo, w),
    expr: `${byCohort(slo.bad(w))}\n/\n${byCohort(slo.total(w))}`,
  }));
}

function burnRateAlerts(slo: Slo): AlertingRule[] {
  return (['page', 'ticket'] as const).map((severity) => {
    const pairs = BURN_RATE_ALERTS.filter((a) => a.severity === severity);
    const expr = pairs
      .map(
        (a) =>
          `(${ratioRecord(slo, a.long)} > ${a.factor} * ${slo.budget}\nand\n${ratioRecord(slo, a.short)} > ${a.factor} * ${slo.budget})`,
      )
      .join('\nor\n');
    const speed = severity === 'page' ? 'Fast' : 'Slow';
    return {
      alert: `${slo.alert}${speed}`,
      expr,
      for: pairs[0]?.for ?? '5m',
      labels: { severity, slo: slo.name },
      annotations: {
        summary: `${slo.summary}: error budget burning ${speed.toLowerCase()} in region {{ $labels.region }}, tier {{ $labels.tier }}`,
        description:
          `The share of ${slo.summary} is burning the ${(slo.budget * 100).toFixed(1)}% error budget at ` +
          `${pairs.map((p) => `${p.factor}x over ${p.long}/${p.short}`).join(' or ')}. ` +
          'Compare with `edgectl fleet status --by region`; see docs/observability.md.',
      },
    };
  });
}

function plainAlerts(): AlertingRule[] {
  return [
    {
      alert: 'EdgectlSiteSyncRefused',
      expr: 'edgectl_site_sync_state{state=~"refused|error"} == 1',
      for: '10m',
      labels: { severity: 'ticket' },
      annotations: {
        summary: 'site {{ $labels.instance }}: sync {{ $labels.state }} for 10 minutes',
        description:
          'The site keeps serving its installed generation but installs nothing new. ' +
          'Run `edgectl site status` and `edgectl site logs` on it; docs/operations.md has the recovery steps.',
      },
    },
    indexStaleAlert(),
  ];
}

/**
 * An index nearing its policy's staleness budget (past INDEX_BUDGET_SHARE of it), or, on a site
 * whose policy sets none, older than INDEX_STALE_AFTER_SECONDS. Both gauges carry the same labels
 * (instance, job, index, ref), so the division and the `unless` match one to one.
 */
function indexStaleAlert(): AlertingRule {
  const budget = `${(INDEX_BUDGET_SHARE * 100).toFixed(0)}% of the policy's retrieval.maxAge`;
  return {
    alert: 'EdgectlIndexStale',
    expr:
      `edgectl_index_age_seconds > ${INDEX_BUDGET_SHARE} * edgectl_index_max_age_seconds\nor\n` +
      `(edgectl_index_age_seconds > ${INDEX_STALE_AFTER_SECONDS} unless edgectl_index_max_age_seconds)`,
    for: '30m',
    labels: { severity: 'ticket' },
    annotations: {
      summary: 'site {{ $labels.instance }}: index {{ $labels.index }} ({{ $labels.ref }}) is getting stale',
      description:
        `Its newest document is older than ${budget} (${INDEX_STALE_AFTER_SECONDS} s when the policy sets ` +
        'none) for 30 minutes; past the budget, retrieval warns or is refused. Re-publish it from fresh ' +
        'documents (`edgectl index update`, `edgectl rollout canary index/...`); see docs/operations.md "Rolling out an index".',
    },
  };
}

export function buildRules(): RuleFile {
  return {
    groups: [
      { name: 'edgectl.cohort', interval: '30s', rules: cohortRules() },
      { name: 'edgectl.slo', interval: '30s', rules: SLOS.flatMap(ratioRules) },
      { name: 'edgectl.alerts', rules: [...SLOS.flatMap(burnRateAlerts), ...plainAlerts()] },
    ],
  };
}

export function rulesYaml(rules: RuleFile = buildRules()): string {
  return `# Generated by \`edgectl observability export\` (src/observability/rules.ts): do not edit.\n${stringify(rules, { lineWidth: 0 })}`;
}
