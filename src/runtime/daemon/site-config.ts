/**
 * What the site daemon reads from its data directory besides the generation itself: the applied
 * fleet seq and this site's runtime settings (`runtime:` of its declaration — listen address,
 * verifier URL, sync interval) from the verified fleet state the last sync committed, and the
 * feedback context of a generation (the applied seq and the refs it serves). Nothing here touches
 * the registry: the daemon re-reads it after each sync that moved the applied seq.
 */
import { canonicalJson } from '../../foundation/canonical-json.js';
import type { RolloutState } from '../../fleet/rollout-ops.js';
import { effectiveRuntime, type EffectiveRuntime, type SiteRuntime } from '../../fleet/site-schema.js';
import type { FeedbackContext, FeedbackRefs } from '../../feedback/index.js';
import { siteDataPaths } from '../../site/data-dir.js';
import type { GenerationInfo } from '../../site/generation.js';
import { readFleetState, readSiteState } from '../../site/state-file.js';

export interface AppliedSiteConfig {
  appliedSeq: number;
  /** The declaration's runtime settings as written (no defaults), or undefined before a sync. */
  runtime: SiteRuntime | undefined;
  effective: EffectiveRuntime | undefined;
  /** The site's declared labels (empty before a sync), exported as `edgectl_site_info`. */
  labels: Readonly<Record<string, string>>;
  /** The rollouts of the applied fleet state (for `edgectl_site_rollout_info`). */
  rollouts: readonly RolloutState[];
}

/** The applied seq and this site's declared runtime settings; never throws for a missing state. */
export async function readAppliedSiteConfig(dataDir: string, site: string): Promise<AppliedSiteConfig> {
  const paths = siteDataPaths(dataDir);
  const state = await readSiteState(paths.state);
  if (!state) return { appliedSeq: 0, runtime: undefined, effective: undefined, labels: {}, rollouts: [] };
  const fleet = await readFleetState(paths.fleetStates, state);
  const decl = fleet.sites[site]?.declaration;
  return {
    appliedSeq: state.appliedSeq,
    runtime: decl?.runtime,
    effective: decl ? effectiveRuntime(decl) : undefined,
    labels: decl?.labels ?? {},
    rollouts: Object.values(fleet.rollouts ?? {}),
  };
}

/** The refs a generation serves, in the shape feedback reports carry. */
export function refsOf(info: GenerationInfo): FeedbackRefs {
  const refs: FeedbackRefs = { adapters: [] };
  for (const a of info.artifacts) {
    const r = { ref: a.ref, manifestDigest: a.manifestDigest };
    if (a.slot === 'model') refs.model = r;
    else if (a.slot === 'policy') refs.policy = r;
    else if (a.slot === 'shadow') (refs.shadow ??= []).push(r);
    else if (a.slot === 'index') (refs.indexes ??= []).push(r);
    // An index's embedder is pinned by the index manifest: the index ref identifies both.
    else if (a.slot === 'adapter') refs.adapters.push(r);
  }
  const byRef = (a: { ref: string }, b: { ref: string }) => (a.ref < b.ref ? -1 : a.ref > b.ref ? 1 : 0);
  refs.adapters.sort(byRef);
  refs.shadow?.sort(byRef);
  refs.indexes?.sort(byRef);
  return refs;
}

export function contextOf(info: GenerationInfo, appliedSeq: number): FeedbackContext {
  return { fleetSeq: Math.max(appliedSeq, info.seq), refs: refsOf(info) };
}

/** Same refs (the fleet seq aside): the generation that served a request is still the current one. */
export function sameRefs(a: FeedbackContext, b: FeedbackContext): boolean {
  return canonicalJson(a.refs) === canonicalJson(b.refs);
}
