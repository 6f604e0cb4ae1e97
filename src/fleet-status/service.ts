/**
 * `edgectl fleet status`: reads the verified fleet state at the registry's head and every site's
 * recent signed feedback, and folds them into per-cohort figures (aggregate.ts). Nothing is
 * written. `--watch` calls `fleetStatus` again with the same `RecentFeedback`, so each refresh
 * fetches only new reports.
 */
import { openStore } from '../registry/open-store.js';
import { loadRegistryTrust } from '../registry/trust.js';
import { readLatest } from '../rollout/append.js';
import { declaredSiteKeys } from '../feedback/index.js';
import { aggregate, type CohortView, type SiteView } from './aggregate.js';
import { RecentFeedback } from './read-recent.js';

export interface FleetStatusOptions {
  registryUrl: string;
  trustPath: string;
  /** Site label the cohorts are made by (`site`: one cohort per site). */
  by: string;
  windowMs: number;
  staleAfterMs: number;
  clock?: () => Date;
}

export interface FleetStatusResult {
  registry: string;
  generatedAt: string;
  headSeq: number;
  by: string;
  windowSeconds: number;
  cohorts: CohortView[];
  sites: SiteView[];
  /** Reports ignored because they failed verification (another key, a forged site, malformed). */
  rejected: { key: string; reason: string }[];
}

export async function fleetStatus(
  opts: FleetStatusOptions,
  feedback = new RecentFeedback(),
): Promise<FleetStatusResult> {
  const now = (opts.clock ?? (() => new Date()))();
  const store = await openStore(opts.registryUrl);
  try {
    const trust = await loadRegistryTrust(store, opts.trustPath, now);
    const latest = await readLatest(store, trust, now);
    const state = latest.applied.state;
    await feedback.refresh(store, declaredSiteKeys(state), new Date(now.getTime() - opts.windowMs));
    const { cohorts, sites } = aggregate({
      state,
      headSeq: latest.applied.seq,
      by: opts.by,
      now,
      windowMs: opts.windowMs,
      staleAfterMs: opts.staleAfterMs,
      latest: (s) => feedback.latest(s),
      reports: (s) => feedback.reports(s),
    });
    return {
      registry: store.url,
      generatedAt: now.toISOString(),
      headSeq: latest.applied.seq,
      by: opts.by,
      windowSeconds: Math.round(opts.windowMs / 1000),
      cohorts,
      sites,
      rejected: [...feedback.rejected],
    };
  } finally {
    await store.close();
  }
}
