/**
 * `site status`: what a site serves and how it got there, read from its data directory only (no
 * registry request, no lock, nothing written): applied seq, the current and previous generations
 * and their artifacts, whether current is what the fleet assigns (or pinned by a rollback), the
 * last sync attempt, freshness (the head's expiry: past it the site is frozen and installs nothing
 * new) and drift (a size/mtime check of the current generation now, plus what the last sync
 * repaired).
 */
import { existsSync } from 'node:fs';
import type { Manifest } from '../artifact/manifest.js';
import { NotFoundError } from '../foundation/errors.js';
import { readTrustRootEnvelope, verifySelfSignedRoot } from '../registry/trust.js';
import { siteDataPaths } from './data-dir.js';
import { checkDrift, driftReport } from './drift.js';
import {
  generationDir,
  generationId,
  pointerTarget,
  readGeneration,
  type GenerationInfo,
} from './generation.js';
import { LocalManifests, assignedArtifacts, type ArtifactSlot } from './manifests.js';
import { indexFreshness, type IndexFreshness } from './index-freshness.js';
import { readLastSync, readSiteState, type LastSync, type RollbackPin } from './state-file.js';

export interface StatusArtifact {
  slot: ArtifactSlot;
  ref: string;
  manifestDigest: string;
  dir: string;
  files: number;
  bytes: number;
}

export interface SiteStatus {
  site: string;
  dataDir: string;
  /** False until the first sync that found a fleet head. */
  synced: boolean;
  seq: number;
  registry: string | null;
  stateDigest: string | null;
  generation: string | null;
  previousGeneration: string | null;
  /** The generation the fleet state assigns (null: none). */
  assignedGeneration: string | null;
  /** current is the assigned generation, or the one a rollback pinned. */
  upToDate: boolean;
  pin: RollbackPin | null;
  artifacts: StatusArtifact[];
  /** Indexes the current generation serves, with their age (index-freshness.ts). */
  indexes: IndexFreshness[];
  trustRootVersion: number | null;
  freshness: {
    headSeq: number;
    issued: string;
    expires: string;
    frozen: boolean;
    secondsLeft: number;
  } | null;
  frozen: boolean;
  lastSuccess: string | null;
  lastSync: LastSync | null;
  offline: boolean;
  drift: {
    checked: number;
    changed: string[];
    missing: string[];
    extra: string[];
    lastRepaired: string[];
  } | null;
}

function artifactsOf(info: GenerationInfo | undefined): StatusArtifact[] {
  return (info?.artifacts ?? []).map((a) => ({
    slot: a.slot,
    ref: a.ref,
    manifestDigest: a.manifestDigest,
    dir: a.dir,
    files: a.files.length,
    bytes: a.files.reduce((n, f) => n + f.size, 0),
  }));
}

export async function siteStatus(opts: { site: string; dataDir: string; now?: Date }): Promise<SiteStatus> {
  const paths = siteDataPaths(opts.dataDir);
  if (!existsSync(paths.root)) {
    throw new NotFoundError(`site ${opts.site} has no data directory at ${paths.root}`, {
      code: 'E_NO_DATA_DIR',
      suggestion: `declare it with \`edgectl site add ${opts.site}\` and sync it with \`edgectl site sync ${opts.site} --once\`, or pass --data-dir`,
    });
  }
  const now = opts.now ?? new Date();
  const state = await readSiteState(paths.state);
  const lastSync = (await readLastSync(paths.lastSync)) ?? null;
  const current = (await pointerTarget(paths, 'current')) ?? null;
  const previous = (await pointerTarget(paths, 'previous')) ?? null;
  const info = current ? await readGeneration(generationDir(paths, current)) : undefined;

  let drift: SiteStatus['drift'] = null;
  if (current && info) {
    const local = new LocalManifests(paths.manifests);
    const manifests = new Map<string, Manifest>();
    for (const a of info.artifacts) {
      const m = await local.get(a.manifestDigest);
      if (m) manifests.set(a.manifestDigest, m);
    }
    const found = await checkDrift(generationDir(paths, current), info, { manifests, fixMtimes: false });
    const { checked, changed, missing, extra } = driftReport(found);
    drift = { checked, changed, missing, extra, lastRepaired: lastSync?.drift?.repaired ?? [] };
  }

  let trustRootVersion: number | null = null;
  if (existsSync(paths.trustRoot)) {
    try {
      trustRootVersion = verifySelfSignedRoot(
        readTrustRootEnvelope(paths.trustRoot),
        paths.trustRoot,
      ).version;
    } catch {
      trustRootVersion = null;
    }
  }

  const arts = assignedArtifacts(state?.assignments ?? null);
  const assigned = arts.length > 0 ? generationId(arts) : null;
  const head = state?.head ?? null;
  const expires = head ? Date.parse(head.expires) : Number.NaN;
  const frozen = head !== null && expires <= now.getTime();
  return {
    site: opts.site,
    dataDir: paths.root,
    synced: head !== null,
    seq: state?.appliedSeq ?? 0,
    registry: state?.registry ?? null,
    stateDigest: state?.stateDigest ?? null,
    generation: current,
    previousGeneration: previous,
    assignedGeneration: assigned,
    upToDate: current !== null && (current === assigned || current === state?.pin?.generation),
    pin: state?.pin ?? null,
    artifacts: artifactsOf(info),
    indexes: current && info ? await indexFreshness(generationDir(paths, current), info, now) : [],
    trustRootVersion,
    freshness: head
      ? {
          headSeq: head.seq,
          issued: head.issued,
          expires: head.expires,
          frozen,
          secondsLeft: Math.max(0, Math.round((expires - now.getTime()) / 1000)),
        }
      : null,
    frozen: frozen || lastSync?.frozen === true,
    lastSuccess: state?.lastSuccess ?? null,
    lastSync,
    offline: lastSync?.result === 'offline',
    drift,
  };
}
