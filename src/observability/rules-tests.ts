/**
 * Unit tests for the generated rules in promtool's format (`promtool test rules`): synthetic
 * scrapes of two sites in two cohorts over three hours, one healthy and one with a fault, and the
 * alerts that must (and must not) fire at a given time, plus the values of a recording rule; and
 * the index gauges of those sites for the stale-index alert (budgeted and unbudgeted indexes).
 * Generated beside the rules so the expected annotations are rendered from the same rule objects.
 */
import { stringify } from 'yaml';
import { buildRules, type AlertingRule } from './rules.js';

const HEALTHY = {
  instance: 'site-a:8081',
  job: 'edgectl-site',
  site: 'store-001',
  region: 'eu-west',
  tier: 'branch',
};
const FAULTY = {
  instance: 'site-b:8081',
  job: 'edgectl-site',
  site: 'store-101',
  region: 'us-east',
  tier: 'store',
};
type Site = typeof HEALTHY;

function sel(site: Site, extra: Record<string, string> = {}, withCohort = false): string {
  const labels: Record<string, string> = { instance: site.instance, job: site.job, ...extra };
  if (withCohort) Object.assign(labels, { site: site.site, region: site.region, tier: site.tier });
  return `{${Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .join(',')}}`;
}

/** Faults start at this minute: before it, the faulty site is as healthy as the other. */
const FAULT_AT = 60;
/** 3 hours at a 1-minute scrape interval; a counter rising by `perMin` each minute. */
const counter = (perMin: number) => `0+${perMin}x180`;
/** A counter rising by `before` each minute until FAULT_AT, then by `after`. */
const counterFrom = (before: number, after: number) =>
  `0+${before}x${FAULT_AT - 1} ${before * FAULT_AT}+${after}x${180 - FAULT_AT}`;
const constant = (v: number) => `${v}+0x180`;

interface Fault {
  errorsPerMin?: number;
  blockedPerMin?: number;
  slowPerMin?: number;
  stale?: boolean;
}

function siteSeries(site: Site, f: Fault): { series: string; values: string }[] {
  const requests = 600;
  const slow = f.slowPerMin ?? 0;
  return [
    {
      series: `edgectl_site_info${sel(site, { site: site.site, region: site.region, tier: site.tier })}`,
      values: constant(1),
    },
    {
      series: `edgectl_build_info${sel(site, { component: 'site', version: '0.1.0', node_version: '22.0.0' })}`,
      values: constant(1),
    },
    {
      series: `edgectl_runtime_requests_total${sel(site, { route: 'speculative' })}`,
      values: counter(requests),
    },
    {
      series: `edgectl_runtime_requests_total${sel(site, { route: 'blocked' })}`,
      values: counterFrom(0, f.blockedPerMin ?? 0),
    },
    {
      series: `edgectl_runtime_events_total${sel(site, { event: 'error' })}`,
      values: counterFrom(0, f.errorsPerMin ?? 0),
    },
    {
      series: `edgectl_runtime_ttft_seconds_count${sel(site, { route: 'speculative' })}`,
      values: counter(requests),
    },
    {
      series: `edgectl_runtime_ttft_seconds_bucket${sel(site, { route: 'speculative', le: '1' })}`,
      values: counterFrom(requests, requests - slow),
    },
    // A fresh site completes a sync every minute: the timestamp follows time().
    {
      series: `edgectl_site_last_sync_timestamp_seconds${sel(site)}`,
      values: f.stale ? counterFrom(60, 0) : counter(60),
    },
  ];
}

function render(text: string, labels: Record<string, string>): string {
  return text.replace(/\{\{ \$labels\.(\w+) \}\}/g, (_, k: string) => labels[k] ?? '');
}

function expectAlert(rule: AlertingRule, site: Site) {
  const labels = { ...rule.labels, region: site.region, tier: site.tier };
  return {
    exp_labels: labels,
    exp_annotations: Object.fromEntries(
      Object.entries(rule.annotations).map(([k, v]) => [k, render(v, labels)]),
    ),
  };
}

function alertRule(name: string): AlertingRule {
  for (const g of buildRules().groups)
    for (const r of g.rules) if ('alert' in r && r.alert === name) return r;
  throw new Error(`no alert ${name} in the generated rules`);
}

function scenario(name: string, fault: Fault, alert: string, extra: object[] = []) {
  const rule = alertRule(alert);
  return {
    name,
    interval: '1m',
    input_series: [...siteSeries(HEALTHY, {}), ...siteSeries(FAULTY, fault)],
    alert_rule_test: [
      // Before the fault nothing fires; an hour into it the 1 h and 5 m windows both burn fast.
      { eval_time: `${FAULT_AT - 5}m`, alertname: alert, exp_alerts: [] },
      { eval_time: `${FAULT_AT + 60}m`, alertname: alert, exp_alerts: [expectAlert(rule, FAULTY)] },
    ],
    ...(extra.length ? { promql_expr_test: extra } : {}),
  };
}

/** One index gauge pair of a site: age rising a minute per minute, and the budget if any. */
function indexSeries(site: Site, index: string, ageAtStart: number, budget?: number) {
  const labels = { index, ref: `index/${index}@1.0.0` };
  return [
    { series: `edgectl_index_age_seconds${sel(site, labels)}`, values: `${ageAtStart}+60x180` },
    ...(budget === undefined
      ? []
      : [{ series: `edgectl_index_max_age_seconds${sel(site, labels)}`, values: constant(budget) }]),
  ];
}

/**
 * EdgectlIndexStale: with a 6 h budget, kb on the faulty site (4 h old at the start) passes 80% of
 * it at minute 48 and fires 30 minutes later while the healthy site's kb (1 h old) never does; faq
 * has no budget and passes the 1-day default at minute 24; archive is 1.2 days old, over the
 * default, but its 30-day budget is what counts, so it stays quiet.
 */
function indexScenario() {
  const rule = alertRule('EdgectlIndexStale');
  const firing = (site: Site, index: string) => {
    const labels = {
      ...rule.labels,
      instance: site.instance,
      job: site.job,
      index,
      ref: `index/${index}@1.0.0`,
    };
    return {
      exp_labels: labels,
      exp_annotations: Object.fromEntries(
        Object.entries(rule.annotations).map(([k, v]) => [k, render(v, labels)]),
      ),
    };
  };
  return {
    name: 'indexes past 80% of their staleness budget, or a day old without one',
    interval: '1m',
    input_series: [
      ...indexSeries(HEALTHY, 'kb', 3_600, 21_600),
      ...indexSeries(HEALTHY, 'archive', 100_000, 2_592_000),
      ...indexSeries(FAULTY, 'kb', 14_400, 21_600),
      ...indexSeries(FAULTY, 'faq', 85_000),
    ],
    alert_rule_test: [
      { eval_time: '30m', alertname: 'EdgectlIndexStale', exp_alerts: [] },
      {
        eval_time: '120m',
        alertname: 'EdgectlIndexStale',
        exp_alerts: [firing(FAULTY, 'faq'), firing(FAULTY, 'kb')],
      },
    ],
  };
}

export function buildRuleTests(rulesFile: string): object {
  return {
    rule_files: [rulesFile],
    evaluation_interval: '1m',
    tests: [
      scenario(
        '10% errors in us-east/store page; eu-west stays quiet',
        { errorsPerMin: 60 },
        'EdgectlErrorBudgetBurnFast',
        [
          {
            expr: 'instance:edgectl_runtime_requests:rate5m{route="speculative"}',
            eval_time: '30m',
            exp_samples: [HEALTHY, FAULTY].map((s) => ({
              labels: `instance:edgectl_runtime_requests:rate5m${sel(s, { route: 'speculative', version: '0.1.0' }, true)}`,
              value: 10,
            })),
          },
        ],
      ),
      scenario('20% of first tokens slower than 1 s', { slowPerMin: 120 }, 'EdgectlTTFTBudgetBurnFast'),
      scenario(
        'a block rule refusing 1 request in 6',
        { blockedPerMin: 120 },
        'EdgectlViolationBudgetBurnFast',
      ),
      scenario('a site that never syncs', { stale: true }, 'EdgectlFreshnessBudgetBurnFast'),
      indexScenario(),
    ],
  };
}

export function ruleTestsYaml(rulesFile: string): string {
  return `# Generated by \`edgectl observability export\` (src/observability/rules-tests.ts): run \`promtool test rules\` on it.\n${stringify(buildRuleTests(rulesFile), { lineWidth: 0 })}`;
}
