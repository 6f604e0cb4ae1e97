/**
 * Info series (value 1) that let a dashboard group a site's numbers by cohort without relabelling
 * in Prometheus: `edgectl_site_info{site, <label>...}` carries the site's declared labels (region,
 * tier, ...) for a `* on(instance) group_left(region)` join; `edgectl_site_artifact_info{slot, ref}`
 * the refs the served generation holds (the version cohort); `edgectl_site_rollout_info{rollout,
 * status, candidate, arm}` every unfinished rollout that selects this site, and whether the site is
 * in its canary, its baseline or its shadow step.
 *
 * Site label keys (`a-z0-9._/-`) become Prometheus label names by mapping `.`, `/` and `-` to `_`;
 * a key that would clash with `site` or with a target label Prometheus attaches (`job`,
 * `instance`) or that starts with a digit is prefixed `label_`. The label set of a prom-client
 * gauge is fixed when it is made, so the gauge is rebuilt when a sync changes the set of keys.
 */
import { Gauge, type Registry } from 'prom-client';
import type { RolloutState } from '../../fleet/rollout-ops.js';
import type { FeedbackRefs } from '../../feedback/index.js';

export interface SiteInfoSource {
  site: string;
  labels: () => Readonly<Record<string, string>>;
  refs: () => FeedbackRefs | undefined;
  rollouts: () => readonly RolloutState[];
}

const RESERVED = new Set(['site', 'job', 'instance']);

/** The Prometheus label name a site label key is exported as. */
export function promLabelName(key: string): string {
  const name = key.replace(/[^a-zA-Z0-9_]/g, '_');
  return RESERVED.has(name) || /^[0-9]/.test(name) || name.startsWith('__') ? `label_${name}` : name;
}

const SITE_INFO = 'edgectl_site_info';

function siteInfoGauge(registry: Registry, src: SiteInfoSource, keys: string[]): Gauge<string> {
  registry.removeSingleMetric(SITE_INFO);
  return new Gauge({
    name: SITE_INFO,
    help: "The site's declared labels (value 1): join on instance to group any series by region, tier, ...",
    labelNames: ['site', ...keys.map(promLabelName)],
    registers: [registry],
    collect() {
      const labels = src.labels();
      const current = Object.keys(labels).sort();
      if (current.join('\u0000') !== keys.join('\u0000')) {
        // A sync changed which labels the site has: the next scrape uses a gauge with the new set.
        siteInfoGauge(registry, src, current);
        return;
      }
      this.reset();
      const values: Record<string, string> = { site: src.site };
      for (const k of current) values[promLabelName(k)] = labels[k] ?? '';
      this.set(values, 1);
    },
  });
}

function rolloutArm(r: RolloutState, site: string): string | undefined {
  if (r.phase === 'shadow' && Array.isArray(r.shadowSites) && r.shadowSites.includes(site)) return 'shadow';
  if (r.canary.includes(site)) return 'canary';
  return r.sites.includes(site) ? 'baseline' : undefined;
}

export function registerSiteInfoMetrics(registry: Registry, src: SiteInfoSource): void {
  siteInfoGauge(registry, src, Object.keys(src.labels()).sort());
  new Gauge({
    name: 'edgectl_site_artifact_info',
    help: 'Artifacts the served generation holds (value 1), by slot and ref (kind/name@version).',
    labelNames: ['slot', 'ref'],
    registers: [registry],
    collect() {
      this.reset();
      const refs = src.refs();
      if (!refs) return;
      if (refs.model) this.set({ slot: 'model', ref: refs.model.ref }, 1);
      if (refs.policy) this.set({ slot: 'policy', ref: refs.policy.ref }, 1);
      for (const a of refs.adapters) this.set({ slot: 'adapters', ref: a.ref }, 1);
      for (const a of refs.shadow ?? []) this.set({ slot: 'shadow', ref: a.ref }, 1);
      for (const a of refs.indexes ?? []) this.set({ slot: 'indexes', ref: a.ref }, 1);
    },
  });
  new Gauge({
    name: 'edgectl_site_rollout_info',
    help: 'Unfinished rollouts selecting this site (value 1): status, candidate and the arm the site is in.',
    labelNames: ['rollout', 'status', 'candidate', 'arm'],
    registers: [registry],
    collect() {
      this.reset();
      for (const r of src.rollouts()) {
        const arm = rolloutArm(r, src.site);
        if (r.endedAt !== null || arm === undefined) continue;
        this.set({ rollout: r.id, status: r.status, candidate: r.candidate.ref, arm }, 1);
      }
    },
  });
}
