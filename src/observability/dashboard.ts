/**
 * The edgectl fleet dashboard, generated: every panel sums the recorded per-instance series of
 * rules.ts (which carry the cohort labels) by `$cohort` (region, tier, edgectl version or site),
 * filtered by the `$region` and `$tier` variables. Panels: TTFT and end-to-end p50/p95/p99,
 * tokens/s, acceptance, route mix, verifier passes saved and verifier CPU, violations and
 * abstentions, queue depth, 429s, sync freshness, rollout state, versions running, the SLO
 * error budgets left, and the indexes sites serve (age, age against the policy's staleness budget,
 * passages, retrieval time and results, versions). The fleet view (`edgectl fleet status`) shows the same figures from signed
 * feedback; docs/observability.md pairs each panel with its column there.
 */
import { layout, targets, unit, DS, type Dashboard, type PanelSpec, type Variable } from './grafana.js';
import { INDEX_BUDGET_SHARE, INDEX_STALE_AFTER_SECONDS, SLOS, ratioRecord } from './slo.js';

const SEL = '{region=~"$region", tier=~"$tier"}';
const by = (e: string, extra = '') => `sum by ($cohort${extra}) (${e})`;
const rate = (metric: string, match = '') =>
  `instance:${metric}:rate5m{region=~"$region", tier=~"$tier"${match ? `, ${match}` : ''}}`;

function quantiles(bucket: string): [string, string][] {
  return [0.5, 0.95, 0.99].map((q) => [
    `histogram_quantile(${q}, ${by(`instance:${bucket}:rate5m${SEL}`, ', le')})`,
    `{{$cohort}} p${Math.round(q * 100)}`,
  ]);
}

function latencyPanels(): PanelSpec[] {
  return [
    { type: 'row', title: 'Latency and throughput' },
    {
      type: 'timeseries',
      title: 'Time to first token p50 / p95 / p99',
      targets: targets(...quantiles('edgectl_runtime_ttft_seconds_bucket')),
      fieldConfig: unit('s'),
    },
    {
      type: 'timeseries',
      title: 'End-to-end request time p50 / p95 / p99',
      targets: targets(...quantiles('edgectl_runtime_request_seconds_bucket')),
      fieldConfig: unit('s'),
    },
    {
      type: 'timeseries',
      title: 'Output tokens per second',
      targets: targets([by(rate('edgectl_runtime_tokens', 'kind="output"')), '{{$cohort}}']),
      fieldConfig: unit('short'),
    },
    {
      type: 'timeseries',
      title: 'Route mix',
      description: 'Requests per second by the route that served them (blocked: refused by a policy rule).',
      targets: targets([`sum by (route) (${rate('edgectl_runtime_requests')})`, '{{route}}']),
      fieldConfig: unit('reqps', { custom: { stacking: { mode: 'percent' }, fillOpacity: 60 } }),
    },
  ];
}

function speculationPanels(): PanelSpec[] {
  const accepted = by(rate('edgectl_runtime_tokens', 'kind="accepted"'));
  const drafted = by(rate('edgectl_runtime_tokens', 'kind="drafted"'));
  const rounds = by(rate('edgectl_runtime_verify_rounds'));
  return [
    { type: 'row', title: 'Speculation and the verifier' },
    {
      type: 'timeseries',
      title: 'Acceptance',
      description: 'Accepted / drafted tokens (the rollout judge judges this figure).',
      targets: targets([`${accepted} / ${drafted}`, '{{$cohort}}']),
      fieldConfig: unit('percentunit', { min: 0, max: 1 }),
    },
    {
      type: 'timeseries',
      title: 'Verifier passes saved',
      description:
        'Share of verifier forward passes saved against cloud-only decoding (one pass per token): ' +
        'accepted / (accepted + verify rounds).',
      targets: targets([`${accepted} / (${accepted} + ${rounds})`, '{{$cohort}}']),
      fieldConfig: unit('percentunit', { min: 0, max: 1 }),
    },
    {
      type: 'timeseries',
      title: 'Verifier CPU seconds per 1k tokens',
      description: 'Verifier process CPU over the tokens it accepted, decoded and completed.',
      targets: targets([
        'sum by (instance) (rate(edgectl_verifier_cpu_seconds_total[5m])) * 1000 / sum by (instance) (rate(edgectl_verifier_accepted_tokens_total[5m]) + rate(edgectl_verifier_verify_rounds_total[5m]) + rate(edgectl_verifier_completion_tokens_total[5m]))',
        '{{instance}}',
      ]),
      fieldConfig: unit('s'),
    },
    {
      type: 'timeseries',
      title: 'Queue depth',
      targets: targets(
        [
          by(
            `edgectl_runtime_queued * on(instance, job) group_left(site, region, tier, version) edgectl:site_cohort:info${SEL}`,
          ),
          'site queue {{$cohort}}',
        ],
        ['sum by (instance) (edgectl_verifier_queue_depth)', 'verifier {{instance}}'],
      ),
      fieldConfig: unit('short'),
    },
  ];
}

function safetyPanels(): PanelSpec[] {
  return [
    { type: 'row', title: 'Errors, policy and overload' },
    {
      type: 'timeseries',
      title: 'Violations and abstentions',
      description:
        'Violations: requests refused by a block rule. Abstentions: requests an abstain threshold moved to the cloud.',
      targets: targets(
        [by(rate('edgectl_runtime_requests', 'route="blocked"')), 'violations {{$cohort}}'],
        [by(rate('edgectl_runtime_events', 'event="escalated"')), 'abstentions {{$cohort}}'],
      ),
      fieldConfig: unit('reqps'),
    },
    {
      type: 'timeseries',
      title: 'Errors and unverified fallbacks',
      targets: targets(
        [by(rate('edgectl_runtime_events', 'event="error"')), 'errors {{$cohort}}'],
        [by(rate('edgectl_runtime_events', 'event="fallback"')), 'fallbacks {{$cohort}}'],
      ),
      fieldConfig: unit('reqps'),
    },
    {
      type: 'timeseries',
      title: 'Rejected (429)',
      targets: targets(
        [by(rate('edgectl_runtime_events', 'event="rejected"')), 'site {{$cohort}}'],
        ['sum by (reason) (rate(edgectl_verifier_rejections_total[5m]))', 'verifier {{reason}}'],
      ),
      fieldConfig: unit('reqps'),
    },
    {
      type: 'stat',
      title: 'Error budget left (3 days)',
      description:
        'Per SLO and cohort: 1 - (error ratio over 3 days / budget). Below 0: the budget is spent.',
      targets: targets(
        ...SLOS.map((s): [string, string] => [
          `1 - ${ratioRecord(s, '3d')}{region=~"$region", tier=~"$tier"} / ${s.budget}`,
          `${s.name} {{region}}/{{tier}}`,
        ]),
      ),
      fieldConfig: unit('percentunit', {
        thresholds: {
          mode: 'absolute',
          steps: [
            { color: 'red', value: null },
            { color: 'orange', value: 0 },
            { color: 'green', value: 0.5 },
          ],
        },
      }),
      w: 24,
    },
  ];
}

function fleetPanels(): PanelSpec[] {
  const table = (expr: string): PanelSpec['targets'] => [
    { refId: 'A', expr, instant: true, format: 'table' },
  ];
  return [
    { type: 'row', title: 'Sync, versions and rollouts' },
    {
      type: 'timeseries',
      title: 'Sync freshness (seconds since the last completed sync)',
      targets: targets([
        `max by ($cohort) ((time() - edgectl_site_last_sync_timestamp_seconds) * on(instance, job) group_left(site, region, tier, version) edgectl:site_cohort:info${SEL})`,
        'oldest {{$cohort}}',
      ]),
      fieldConfig: unit('s'),
    },
    {
      type: 'table',
      title: 'Sites by sync state and version',
      targets: table(
        `count by ($cohort, state, version) ((edgectl_site_sync_state == 1) * on(instance, job) group_left(site, region, tier, version) edgectl:site_cohort:info${SEL})`,
      ),
    },
    {
      type: 'table',
      title: 'Artifacts running',
      targets: table('count by (slot, ref) (edgectl_site_artifact_info)'),
    },
    {
      type: 'table',
      title: 'Rollout state',
      description: 'Unfinished rollouts: sites in each arm (canary, baseline, shadow).',
      targets: table('count by (rollout, status, candidate, arm) (edgectl_site_rollout_info)'),
    },
  ];
}

/** A per-instance index gauge with the site's cohort labels joined on (rules.ts, cohort info). */
const indexSeries = (e: string) =>
  `(${e}) * on(instance, job) group_left(site, region, tier, version) edgectl:site_cohort:info${SEL}`;

/** Red threshold lines on a time series (Grafana draws `thresholdsStyle: line`). */
function thresholdLines(unitName: string, steps: [string, number][]): PanelSpec['fieldConfig'] {
  return unit(unitName, {
    custom: { thresholdsStyle: { mode: 'line' } },
    thresholds: {
      mode: 'absolute',
      steps: [{ color: 'green', value: null }, ...steps.map(([color, value]) => ({ color, value }))],
    },
  });
}

function indexPanels(): PanelSpec[] {
  return [
    { type: 'row', title: 'Indexes' },
    {
      type: 'timeseries',
      title: 'Index age (oldest site per index)',
      description:
        'Seconds since the newest document of each index the sites serve (edgectl_index_age_seconds). ' +
        `The line: ${INDEX_STALE_AFTER_SECONDS} s, where EdgectlIndexStale fires for sites whose policy sets no budget.`,
      targets: targets([
        `max by ($cohort, index) (${indexSeries('edgectl_index_age_seconds')})`,
        '{{index}} {{$cohort}}',
      ]),
      fieldConfig: thresholdLines('s', [['red', INDEX_STALE_AFTER_SECONDS]]),
    },
    {
      type: 'timeseries',
      title: 'Index age / staleness budget',
      description:
        "Age over the policy's retrieval.maxAge (edgectl_index_max_age_seconds; sites whose policy sets none are not shown). " +
        `EdgectlIndexStale fires past ${INDEX_BUDGET_SHARE}; past 1 retrieval warns or is refused (policy \`stale\`).`,
      targets: targets([
        `max by ($cohort, index) (${indexSeries('edgectl_index_age_seconds / edgectl_index_max_age_seconds')})`,
        '{{index}} {{$cohort}}',
      ]),
      fieldConfig: thresholdLines('percentunit', [
        ['orange', INDEX_BUDGET_SHARE],
        ['red', 1],
      ]),
    },
    {
      type: 'timeseries',
      title: 'Passages per index',
      description: 'Live passages of each index version served (edgectl_index_passages).',
      targets: targets([
        `max by (index, ref) (${indexSeries('edgectl_index_passages')})`,
        '{{index}} {{ref}}',
      ]),
      fieldConfig: unit('short'),
    },
    {
      type: 'timeseries',
      title: 'Retrieval time p50 / p95 / p99',
      description:
        'The RAG retrieval step: query embedding and hybrid search (edgectl_runtime_retrieval_seconds).',
      targets: targets(...quantiles('edgectl_runtime_retrieval_seconds_bucket')),
      fieldConfig: unit('s'),
    },
    {
      type: 'timeseries',
      title: 'Retrievals: hits, misses, refusals',
      description:
        "Retrieval steps per second by result (hit: passages attached; refused: past the policy's staleness budget " +
        'with `stale: refuse`), retrievals served past the budget with a warning, and retrieved passages ' +
        'withheld from the prompt because they match a policy block rule.',
      targets: targets(
        [by(rate('edgectl_runtime_retrievals', 'result="hit"')), 'hits {{$cohort}}'],
        [by(rate('edgectl_runtime_retrievals', 'result="miss"')), 'misses {{$cohort}}'],
        [by(rate('edgectl_runtime_retrievals', 'result="refused"')), 'refused {{$cohort}}'],
        [by(rate('edgectl_runtime_events', 'event="stale_index"')), 'served stale {{$cohort}}'],
        [by(rate('edgectl_runtime_retrieval_withheld')), 'passages withheld {{$cohort}}'],
      ),
      fieldConfig: unit('reqps'),
    },
    {
      type: 'table',
      title: 'Sites per index version',
      description: 'How many sites serve each index version (an index canary shows two rows).',
      targets: [
        {
          refId: 'A',
          expr: `count by (index, ref) (${indexSeries('edgectl_index_passages')})`,
          instant: true,
          format: 'table',
        },
      ],
    },
  ];
}

function variables(): Variable[] {
  const labelValues = (name: string): Variable => ({
    name,
    label: name,
    type: 'query',
    datasource: DS,
    query: { query: `label_values(edgectl_site_info, ${name})`, refId: name },
    multi: true,
    includeAll: true,
    allValue: '.*',
    current: { text: 'All', value: '$__all' },
    refresh: 2,
  });
  const cohorts = ['region', 'tier', 'version', 'site'];
  return [
    { name: 'datasource', label: 'Prometheus', type: 'datasource', query: 'prometheus' },
    {
      name: 'cohort',
      label: 'Cohort by',
      type: 'custom',
      query: cohorts.join(','),
      current: { text: 'region', value: 'region' },
      options: cohorts.map((c) => ({ text: c, value: c, selected: c === 'region' })),
    },
    labelValues('region'),
    labelValues('tier'),
  ];
}

export function buildDashboard(): Dashboard {
  return {
    uid: 'edgectl-fleet',
    title: 'edgectl fleet',
    description:
      'Generated by `edgectl observability export` (src/observability/dashboard.ts): do not edit by hand.',
    tags: ['edgectl'],
    schemaVersion: 39,
    version: 1,
    editable: true,
    time: { from: 'now-6h', to: 'now' },
    refresh: '30s',
    templating: { list: variables() },
    annotations: { list: [] },
    panels: layout([
      ...latencyPanels(),
      ...speculationPanels(),
      ...safetyPanels(),
      ...fleetPanels(),
      ...indexPanels(),
    ]),
  };
}

/** Every PromQL query of the dashboard (panels and variables), for checks. */
export function dashboardQueries(d: Dashboard = buildDashboard()): string[] {
  return d.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));
}
