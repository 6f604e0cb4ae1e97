/**
 * The fleet view's figures, per cohort, from signed feedback and the fleet state: the same numbers
 * as the Grafana dashboard (docs/observability.md pairs them), computed without Prometheus.
 * Acceptance is accepted / drafted tokens; verifier passes saved is accepted / (accepted + verify
 * rounds), the share of the passes a cloud-only decode (one per token) would need; TTFT and
 * end-to-end p95 are read off the merged report histograms (the upper bound of the bucket holding
 * the 95th percentile, as the rollout judge does); tokens/s is output tokens over the window.
 * Freshness is the age of a site's latest report and how many fleet entries it is behind the head.
 */
import type { RolloutState } from '../fleet/rollout-ops.js';
import type { FleetState } from '../fleet/state.js';
import {
  emptyCounters,
  emptyHistogram,
  histogramQuantile,
  mergeCounters,
  mergeHistograms,
  type FeedbackReport,
  type FeedbackRefs,
} from '../feedback/index.js';

export interface SiteView {
  site: string;
  cohort: string;
  labels: Record<string, string>;
  /** Refs the site's latest report says it serves (what runs), or null without a report. */
  running: string[] | null;
  /** The running refs are the assigned ones (same manifest digests). */
  inSync: boolean;
  lastReportAt: string | null;
  reportAgeSeconds: number | null;
  /** Fleet seq of the latest report, and how many entries that is behind the head. */
  fleetSeq: number | null;
  seqLag: number | null;
  stale: boolean;
  requests: number;
  errors: number;
}

export interface CohortView {
  cohort: string;
  sites: number;
  reporting: number;
  stale: number;
  /** Running refs by how many of the cohort's sites run them. */
  versions: { ref: string; sites: number }[];
  freshness: { oldestReportAgeSeconds: number | null; maxSeqLag: number | null };
  requests: { edge: number; speculative: number; cloud: number; blocked: number };
  errors: number;
  errorRate: number | null;
  violations: number;
  abstentions: number;
  acceptance: number | null;
  passesSaved: number | null;
  ttftP95Ms: number | null;
  e2eP95Ms: number | null;
  tokensPerSecond: number;
  rollouts: { id: string; status: string; candidate: string; canary: number; baseline: number }[];
}

export interface AggregateInput {
  state: FleetState;
  headSeq: number;
  by: string;
  now: Date;
  windowMs: number;
  staleAfterMs: number;
  latest: (site: string) => FeedbackReport | undefined;
  reports: (site: string) => readonly FeedbackReport[];
}

function refsList(refs: FeedbackRefs): { ref: string; manifestDigest: string }[] {
  return [...(refs.model ? [refs.model] : []), ...refs.adapters, ...(refs.policy ? [refs.policy] : [])];
}

export function cohortOf(by: string, site: string, labels: Record<string, string>): string {
  if (by === 'site') return site;
  return labels[by] ?? '(none)';
}

function siteView(site: string, inp: AggregateInput): SiteView {
  const s = inp.state.sites[site];
  const labels = { ...(s?.declaration.labels ?? {}) };
  const last = inp.latest(site);
  const assigned = s ? [s.assignments.model, ...s.assignments.adapters, s.assignments.policy] : [];
  const want = assigned
    .filter((r) => r !== undefined)
    .map((r) => `${r.ref}#${r.manifestDigest}`)
    .sort();
  const have = last
    ? refsList(last.refs)
        .map((r) => `${r.ref}#${r.manifestDigest}`)
        .sort()
    : [];
  const age = last ? Math.max(0, (inp.now.getTime() - Date.parse(last.windowEnd)) / 1000) : null;
  let requests = 0;
  let errors = 0;
  for (const r of inp.reports(site)) {
    requests += r.counters.requests.edge + r.counters.requests.speculative + r.counters.requests.cloud;
    errors += r.counters.errors;
  }
  return {
    site,
    cohort: cohortOf(inp.by, site, labels),
    labels,
    running: last ? refsList(last.refs).map((r) => r.ref) : null,
    inSync: last !== undefined && want.join() === have.join(),
    lastReportAt: last?.windowEnd ?? null,
    reportAgeSeconds: age === null ? null : Math.round(age),
    fleetSeq: last?.fleetSeq ?? null,
    seqLag: last ? Math.max(0, inp.headSeq - last.fleetSeq) : null,
    stale: age === null || age * 1000 > inp.staleAfterMs,
    requests,
    errors,
  };
}

const ratio = (a: number, b: number) => (b > 0 ? a / b : null);
const finite = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? null : v);

function rolloutsOf(sites: readonly string[], rollouts: readonly RolloutState[]): CohortView['rollouts'] {
  const mine = new Set(sites);
  return rollouts
    .filter((r) => r.endedAt === null && r.sites.some((s) => mine.has(s)))
    .map((r) => {
      const canary = r.canary.filter((s) => mine.has(s)).length;
      return {
        id: r.id,
        status: r.status,
        candidate: r.candidate.ref,
        canary,
        baseline: r.sites.filter((s) => mine.has(s)).length - canary,
      };
    });
}

function cohortView(cohort: string, views: SiteView[], inp: AggregateInput): CohortView {
  let c = emptyCounters();
  let ttft = emptyHistogram();
  let e2e = emptyHistogram();
  const versions = new Map<string, number>();
  for (const v of views) {
    for (const r of inp.reports(v.site)) {
      c = mergeCounters(c, r.counters);
      ttft = mergeHistograms(ttft, r.latency.ttftMs);
      e2e = mergeHistograms(e2e, r.latency.e2eMs);
    }
    for (const ref of v.running ?? []) versions.set(ref, (versions.get(ref) ?? 0) + 1);
  }
  const requests = c.requests.edge + c.requests.speculative + c.requests.cloud;
  const ages = views.map((v) => v.reportAgeSeconds);
  const lags = views.map((v) => v.seqLag).filter((l): l is number => l !== null);
  return {
    cohort,
    sites: views.length,
    reporting: views.filter((v) => v.lastReportAt !== null).length,
    stale: views.filter((v) => v.stale).length,
    versions: [...versions].map(([ref, sites]) => ({ ref, sites })).sort((a, b) => (a.ref < b.ref ? -1 : 1)),
    freshness: {
      oldestReportAgeSeconds:
        ages.length && ages.every((a) => a !== null) ? Math.max(...(ages as number[])) : null,
      maxSeqLag: lags.length ? Math.max(...lags) : null,
    },
    requests: { ...c.requests, blocked: c.policyBlocks },
    errors: c.errors,
    errorRate: ratio(c.errors, requests),
    violations: c.policyBlocks,
    abstentions: c.escalations,
    acceptance: ratio(c.acceptedTokens, c.draftTokens),
    passesSaved: ratio(c.acceptedTokens, c.acceptedTokens + c.verifyRounds),
    ttftP95Ms: finite(histogramQuantile(ttft, 0.95)),
    e2eP95Ms: finite(histogramQuantile(e2e, 0.95)),
    tokensPerSecond: Math.round((c.outputTokens / (inp.windowMs / 1000)) * 100) / 100,
    rollouts: rolloutsOf(
      views.map((v) => v.site),
      Object.values(inp.state.rollouts ?? {}),
    ),
  };
}

export function aggregate(inp: AggregateInput): { cohorts: CohortView[]; sites: SiteView[] } {
  const sites = Object.keys(inp.state.sites)
    .sort()
    .map((s) => siteView(s, inp));
  const groups = new Map<string, SiteView[]>();
  for (const v of sites) groups.set(v.cohort, [...(groups.get(v.cohort) ?? []), v]);
  const cohorts = [...groups.keys()].sort().map((k) => cohortView(k, groups.get(k) ?? [], inp));
  return { cohorts, sites };
}
