/**
 * One sync of a site (docs/running-sites.md, docs/formats.md "Fleet log"): `syncOnce` brings the site's
 * data directory to what the signed fleet state assigns it, or refuses and changes nothing.
 *
 *   1. take the data directory's lock; drift-check the current generation and repair it;
 *   2. poll fleet/head.json with a conditional GET (unchanged: one request, no body, done);
 *   3. on a new head: walk the trust root chain, verify the head (fleet role, not expired, no
 *      rollback, no fork) and catch up entries or a snapshot (fleet-sync.ts);
 *   4. work out this site's generation: its assignments, or the generation a rollback pinned;
 *   5. if current is not that generation: fetch and verify the manifests (artifacts role + digest
 *      pinned by the fleet state), fetch missing chunks into the cache in priority order (policies,
 *      adapters, models; chunks already cached are not fetched again, so a killed sync resumes),
 *      build the generation with every file's SHA-256 checked, and switch `current` (old one kept
 *      as `previous`). A changed policy goes live first, in an interim generation with the current
 *      model and adapters, when a larger artifact still has to be downloaded;
 *   6. commit: the new fleet state file, then state.json LAST; then prune generations, chunks,
 *      manifests and fleet state files nothing points at.
 *
 * Any verification failure is a VerificationError (exit 4) thrown before step 6: state.json stays
 * as it was, and so does `current` (unless an interim policy generation, itself fully verified,
 * already went live). A registry that cannot be reached is not an error: the result says
 * `offline: true` and the current generation keeps serving. A registry that answers but no longer
 * holds the head this site synced from, or serves an object over its size cap (limits.ts), is a
 * refusal (exit 4), not offline. Each attempt is recorded in last-sync.json for `site status`.
 */
import { UserError, isEdgectlError } from '../foundation/errors.js';
import type { Io } from '../foundation/output.js';
import { ChunkCache } from '../artifact/chunk-cache.js';
import type { RolloutReducer } from '../fleet/rollout-ops.js';
import type { Store, StoreStats } from '../registry/store.js';
import { ensureDataDirs, siteDataPaths } from './data-dir.js';
import {
  cleanStaging,
  generationDir,
  generationId,
  pointerTarget,
  pruneGenerations,
  readGeneration,
  switchCurrent,
} from './generation.js';
import { acquireLock } from './lock.js';
import { LocalManifests, assignedArtifacts, type AssignedArtifact } from './manifests.js';
import {
  initialState,
  pruneFleetStates,
  readSiteState,
  writeFleetState,
  writeLastSync,
  writeSiteState,
  type DriftReport,
  type LastSync,
  type SiteSyncState,
} from './state-file.js';
import { loadPinnedTrust, advanceTrust, type PinnedTrust } from './trust-pin.js';
import { driftPhase, installGeneration, isOfflineError, pruneChunks, type Run } from './sync-generation.js';
import { headPhase, type HeadOutcome } from './sync-head.js';

export { isOfflineError } from './sync-generation.js';

export interface SyncOptions {
  site: string;
  dataDir: string;
  store: Store;
  /** The project's trust/root.json: copied into the data directory at the first sync only. */
  projectTrustPath?: string | undefined;
  clock?: () => Date;
  io?: Io;
  /** Hash every file of the current generation, not only those whose size or mtime changed. */
  verifyAll?: boolean;
  /** Ranged GETs in flight while fetching chunks (default 4). */
  concurrency?: number;
  /** Use the latest snapshot when more than this many entries behind (default 64). */
  snapshotWhenBehind?: number;
  rolloutReducer?: RolloutReducer;
}

export interface SyncResult {
  site: string;
  /** Fleet seq the site has applied. */
  seq: number;
  /** Generation `current` points to (null: nothing installed yet). */
  generation: string | null;
  /** Whether this sync switched `current`. */
  changed: boolean;
  /** Registry bytes received by this sync (bodies only). */
  bytesFetched: number;
  /** Registry requests this sync made. */
  requests: number;
  /** The registry could not be reached; the current generation keeps serving. */
  offline?: true;
  previousGeneration: string | null;
  /** current is held by `site rollback` (see rollback.ts for the rule). */
  pinned: boolean;
  headChanged: boolean;
  entriesApplied: number;
  /** Snapshot used to catch up, if any. */
  snapshotSeq: number | null;
  chunksFetched: number;
  drift: DriftReport | null;
  warnings: string[];
}

/** What one sync cost: the store requests and bytes fetched between two snapshots of its counters. */
function delta(before: StoreStats, after: StoreStats): { requests: number; bytesFetched: number } {
  return { requests: after.requests - before.requests, bytesFetched: after.bytesRead - before.bytesRead };
}

/** Step 1 (after the lock): the pinned trust root and the committed state, refused if it is another site's. */
async function openDataDir(
  run: Run,
): Promise<{ trustPin: PinnedTrust; committed: SiteSyncState | undefined }> {
  const { opts, paths } = run;
  await cleanStaging(paths);
  const trustPin: PinnedTrust = await loadPinnedTrust(paths.trustRoot, opts.projectTrustPath);
  const committed = await readSiteState(paths.state);
  if (committed && committed.site !== opts.site) {
    throw new UserError(`${paths.root} is the data directory of site ${committed.site}, not ${opts.site}`, {
      code: 'E_DATA_DIR',
      suggestion: `pass the data directory of ${opts.site} with --data-dir`,
    });
  }
  return { trustPin, committed };
}

interface TargetOutcome {
  state: SiteSyncState;
  /** Generation `current` points to, or null when drift repair could not make it whole. */
  current: string | null;
  target: string | null;
  targetArts: readonly AssignedArtifact[];
  pinnedByRollback: boolean;
}

/** Step 4: which generation should be current (the assignments', or the one a rollback pinned). */
async function targetPhase(run: Run, state0: SiteSyncState, currentIntact: boolean): Promise<TargetOutcome> {
  const { paths } = run;
  const site = run.opts.site;
  let state = state0;
  const arts = assignedArtifacts(state.assignments);
  const desired = arts.length > 0 ? generationId(arts) : null;
  // A current generation that drift repair could not make whole is rebuilt like a new one.
  const current = currentIntact ? ((await pointerTarget(paths, 'current')) ?? null) : null;
  let target = desired;
  let targetArts: readonly AssignedArtifact[] = arts;
  let pinnedByRollback = false;
  if (state.pin) {
    const pinInfo =
      state.pin.desired === (desired ?? '')
        ? await readGeneration(generationDir(paths, state.pin.generation))
        : undefined;
    if (pinInfo) {
      target = state.pin.generation;
      targetArts = pinInfo.artifacts;
      pinnedByRollback = true;
    } else {
      run.io?.log(
        'info',
        `the fleet assigns new artifacts: the rollback pin on generation ${state.pin.generation} is released`,
      );
      state = { ...state, pin: null };
    }
  }
  if (state.head && state.assignments === null) {
    run.warnings.push(
      `site ${site} is not declared in the fleet state (seq ${state.appliedSeq}); keeping the current generation`,
    );
  } else if (state.head && desired === null) {
    run.warnings.push(`no artifacts are assigned to site ${site}; keeping the current generation`);
  }
  return { state, current, target, targetArts, pinnedByRollback };
}

/** Step 5: build and switch to the target generation when `current` is not it. */
async function installPhase(
  run: Run,
  ctx: {
    committed: SiteSyncState | undefined;
    trustPin: PinnedTrust;
    head: HeadOutcome;
    target: TargetOutcome;
    now: Date;
  },
): Promise<{ changed: boolean; previous: string | null }> {
  const { paths } = run;
  const { committed, head, now } = ctx;
  const { current, target, targetArts, state } = ctx.target;
  let previous = (await pointerTarget(paths, 'previous')) ?? null;
  const committedGeneration = committed?.generation ?? null;
  run.interimKeepsPrevious =
    committedGeneration !== null &&
    current !== committedGeneration &&
    (await pointerTarget(paths, 'previous')) === committedGeneration;
  if (target === null || target === current) return { changed: false, previous };
  // Installing without a new head (a crash or a moved pointer): walk the root chain first.
  const trust = head.headChanged
    ? head.trust
    : await advanceTrust(run.opts.store, paths.trustRoot, ctx.trustPin, now);
  await installGeneration(run, trust, target, targetArts, state.appliedSeq, now);
  await switchCurrent(paths, target, { keepPrevious: run.interimKeepsPrevious });
  previous = (await pointerTarget(paths, 'previous')) ?? null;
  run.io?.log('info', `current -> generation ${target}${previous ? ` (previous: ${previous})` : ''}`);
  return { changed: true, previous };
}

async function syncLocked(run: Run, stats0: StoreStats): Promise<SyncResult> {
  const { opts, paths } = run;
  const clock = opts.clock ?? (() => new Date());
  const { trustPin, committed } = await openDataDir(run);
  const currentIntact = await driftPhase(run, trustPin.root);
  const now = clock();
  const head = await headPhase(run, committed ?? initialState(opts.site, opts.store.url), trustPin, now);
  const target = await targetPhase(run, head.state, currentIntact);
  const { changed, previous } = await installPhase(run, { committed, trustPin, head, target, now });
  const generation = target.target ?? (await pointerTarget(paths, 'current')) ?? null;

  // Step 6: commit, then prune what nothing points at.
  let state = target.state;
  const commit =
    head.headChanged ||
    changed ||
    (committed !== undefined && (state.generation !== generation || state.pin !== committed.pin));
  if (commit) {
    state = { ...state, generation, lastSuccess: now.toISOString() };
    if (head.fleet) await writeFleetState(paths.fleetStates, head.fleet, state.stateDigest);
    await writeSiteState(paths.state, state);
    await pruneFleetStates(paths.fleetStates, state.stateDigest);
    const keep = [generation, previous].filter((g): g is string => g !== null);
    await pruneGenerations(paths, new Set(keep));
    if (changed) await pruneChunks(run, keep);
  }

  return {
    site: opts.site,
    seq: state.appliedSeq,
    generation,
    changed,
    ...delta(stats0, opts.store.stats),
    previousGeneration: previous,
    pinned: target.pinnedByRollback,
    headChanged: head.headChanged,
    entriesApplied: head.entriesApplied,
    snapshotSeq: head.snapshotSeq,
    chunksFetched: run.chunksFetched,
    drift: run.drift,
    warnings: run.warnings,
  };
}

/** One sync of a site (see the module comment). */
export async function syncOnce(opts: SyncOptions): Promise<SyncResult> {
  const clock = opts.clock ?? (() => new Date());
  const paths = siteDataPaths(opts.dataDir);
  await ensureDataDirs(paths);
  const lock = await acquireLock(paths.lock, 'a sync');
  const started = performance.now();
  const stats0 = { ...opts.store.stats };
  const run: Run = {
    opts,
    paths,
    io: opts.io,
    cache: new ChunkCache(paths.chunks),
    local: new LocalManifests(paths.manifests),
    warnings: [],
    chunksFetched: 0,
    drift: null,
    interimKeepsPrevious: false,
  };
  const record = async (r: Omit<LastSync, 'time' | 'durationMs' | 'drift'>) => {
    await writeLastSync(paths.lastSync, {
      time: clock().toISOString(),
      durationMs: Math.round(performance.now() - started),
      ...r,
      drift: run.drift,
    }).catch(() => undefined);
  };
  const startCurrent = (await pointerTarget(paths, 'current')) ?? null;
  try {
    let result: SyncResult;
    try {
      result = await syncLocked(run, stats0);
    } catch (err) {
      if (!isOfflineError(err)) throw err;
      const state = await readSiteState(paths.state).catch(() => undefined);
      run.io?.log('warn', `offline: ${(err as Error).message}; the current generation keeps serving`);
      const generation = (await pointerTarget(paths, 'current')) ?? null;
      result = {
        site: opts.site,
        seq: state?.appliedSeq ?? 0,
        generation,
        // A new policy may have gone live before the registry dropped off (interim generation).
        changed: generation !== startCurrent,
        ...delta(stats0, opts.store.stats),
        offline: true,
        previousGeneration: (await pointerTarget(paths, 'previous')) ?? null,
        pinned: state?.pin != null,
        headChanged: false,
        entriesApplied: 0,
        snapshotSeq: null,
        chunksFetched: run.chunksFetched,
        drift: run.drift,
        warnings: [...run.warnings, (err as Error).message],
      };
    }
    await record({
      result: result.offline ? 'offline' : result.changed ? 'installed' : 'unchanged',
      seq: result.seq,
      generation: result.generation,
      changed: result.changed,
      bytesFetched: result.bytesFetched,
      requests: result.requests,
    });
    return result;
  } catch (err) {
    const state = await readSiteState(paths.state).catch(() => undefined);
    const code = isEdgectlError(err) ? err.code : 'E_UNEXPECTED';
    await record({
      result: isEdgectlError(err) && err.exitCode === 4 ? 'refused' : 'error',
      seq: state?.appliedSeq ?? 0,
      generation: (await pointerTarget(paths, 'current').catch(() => undefined)) ?? null,
      changed: false,
      ...delta(stats0, opts.store.stats),
      ...(code === 'E_FROZEN' ? { frozen: true } : {}),
      error: { code, message: (err as Error).message },
    });
    throw err;
  } finally {
    await lock.release();
  }
}
