/**
 * One sync of a site (DESIGN: Sites, Fleet state and the fleet log): `syncOnce` brings the site's
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
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError, isEdgectlError } from '../cli/errors.js';
import { formatBytes, type Io } from '../cli/output.js';
import { ChunkCache } from '../artifact/chunk-cache.js';
import { fetchChunks } from '../artifact/fetch.js';
import type { Manifest } from '../artifact/manifest.js';
import type { RolloutReducer } from '../fleet/rollout-ops.js';
import { fleetKeys } from '../fleet/signed.js';
import { stateDigest, type FleetState } from '../fleet/state.js';
import { readPublicKeyFile } from '../registry/keys.js';
import type { Store, StoreStats } from '../registry/store.js';
import type { TrustRoot } from '../registry/trust.js';
import { ensureDataDirs, siteDataPaths, type SiteDataPaths } from './data-dir.js';
import { checkDrift, driftReport, repairDrift } from './drift.js';
import { catchUp, checkFresh, missingHeadError, pollHead, verifyHead } from './fleet-sync.js';
import {
  buildGeneration,
  cleanStaging,
  findReusable,
  generationDir,
  generationId,
  pointerTarget,
  pruneGenerations,
  readGeneration,
  switchCurrent,
  type GenerationInfo,
} from './generation.js';
import { acquireLock } from './lock.js';
import {
  LocalManifests,
  assignedArtifacts,
  loadAssignedManifest,
  type AssignedArtifact,
} from './manifests.js';
import {
  appliedOf,
  initialState,
  pruneFleetStates,
  readFleetState,
  readSiteState,
  writeFleetState,
  writeLastSync,
  writeSiteState,
  type DriftReport,
  type LastSync,
} from './state-file.js';
import { loadPinnedTrust, advanceTrust, type PinnedTrust } from './trust-pin.js';

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

/** Error codes that mean "the registry cannot be reached right now", not "it refused". */
const OFFLINE_CODES = new Set(['E_REGISTRY_UNREACHABLE', 'E_REGISTRY_IO', 'E_REGISTRY_OFFLINE', 'E_TIMEOUT']);

export function isOfflineError(err: unknown): boolean {
  return isEdgectlError(err) && OFFLINE_CODES.has(err.code);
}

interface Run {
  opts: SyncOptions;
  paths: SiteDataPaths;
  io: Io | undefined;
  cache: ChunkCache;
  local: LocalManifests;
  warnings: string[];
  chunksFetched: number;
  drift: DriftReport | null;
  /**
   * `current` holds a generation that state.json does not name (an interim one, or one a killed
   * sync switched to) while `previous` holds the committed one: switching again keeps previous.
   */
  interimKeepsPrevious: boolean;
}

function delta(before: StoreStats, after: StoreStats): { requests: number; bytesFetched: number } {
  return { requests: after.requests - before.requests, bytesFetched: after.bytesRead - before.bytesRead };
}

/** Manifests of a generation's artifacts: local copies, or fetched (verified) when reachable. */
async function manifestsFor(
  run: Run,
  arts: readonly AssignedArtifact[],
  trust: TrustRoot | undefined,
): Promise<Map<string, Manifest>> {
  const out = new Map<string, Manifest>();
  for (const art of arts) {
    const local = await run.local.get(art.manifestDigest);
    if (local) out.set(art.manifestDigest, local);
    else if (trust) {
      try {
        out.set(
          art.manifestDigest,
          (await loadAssignedManifest(run.opts.store, trust, art, run.local)).manifest,
        );
      } catch (err) {
        if (!isOfflineError(err)) throw err;
      }
    }
  }
  return out;
}

/** Step 1: drift check and repair of the current generation; false when it is beyond repair. */
async function driftPhase(run: Run, trust: TrustRoot): Promise<boolean> {
  const id = await pointerTarget(run.paths, 'current');
  if (id === undefined) return true;
  const dir = generationDir(run.paths, id);
  const info = await readGeneration(dir);
  if (!info || info.id !== id) {
    run.warnings.push(`current generation ${id} has no valid generation.json; it is rebuilt`);
    return false;
  }
  const manifests = await manifestsFor(run, info.artifacts, trust);
  const found = await checkDrift(dir, info, { verifyAll: run.opts.verifyAll ?? false, manifests });
  if (found.problems.length === 0 && found.extra.length === 0 && !found.infoFixed) {
    run.drift = driftReport(found);
    return true;
  }
  const repair = await repairDrift(dir, info, found, { cache: run.cache, manifests, store: run.opts.store });
  run.drift = driftReport(found, repair);
  const n = found.problems.length + found.extra.length;
  run.io?.log(
    'warn',
    `drift in generation ${id}: ${n} file(s) changed, missing or extra; repaired ${repair.repaired.length}`,
  );
  if (repair.unrepaired.length > 0) {
    run.warnings.push(
      `could not repair ${repair.unrepaired.join(', ')} (offline and not in the chunk cache)`,
    );
  }
  return repair.unrepaired.length === 0;
}

/** Whether a generation directory exists, is complete and matches its files (full hash). */
async function intactGeneration(run: Run, id: string): Promise<GenerationInfo | undefined> {
  const dir = generationDir(run.paths, id);
  const info = await readGeneration(dir);
  if (!info || info.id !== id) return undefined;
  const manifests = await manifestsFor(run, info.artifacts, undefined);
  const found = await checkDrift(dir, info, { verifyAll: true, manifests });
  return found.problems.length === 0 && found.extra.length === 0 && !found.infoFixed ? info : undefined;
}

async function reusableGenerations(run: Run): Promise<GenerationInfo[]> {
  const out: GenerationInfo[] = [];
  for (const which of ['current', 'previous'] as const) {
    const id = await pointerTarget(run.paths, which);
    const info = id === undefined ? undefined : await readGeneration(generationDir(run.paths, id));
    if (info) out.push(info);
  }
  return out;
}

/**
 * Step 5: makes generation `id` of `arts` exist and intact, fetching what is missing in priority
 * order. When the policy changed and a larger artifact still has to be downloaded, the new policy
 * goes live first in an interim generation (new policy + the current model and adapters, which
 * do not depend on it), so a missing large model does not hold back a small policy (DESIGN: Sites).
 */
async function installGeneration(
  run: Run,
  trust: TrustRoot,
  id: string,
  arts: readonly AssignedArtifact[],
  seq: number,
  now: Date,
): Promise<void> {
  if (await intactGeneration(run, id)) return;
  const { store, site } = run.opts;
  const loaded: { art: AssignedArtifact; manifest: Manifest }[] = [];
  for (const art of arts)
    loaded.push({ art, manifest: (await loadAssignedManifest(store, trust, art, run.local)).manifest });
  const reuse = await reusableGenerations(run);
  const ensureChunks = async (art: AssignedArtifact, manifest: Manifest) => {
    const r = await fetchChunks(store, manifest, run.cache, {
      concurrency: run.opts.concurrency ?? 4,
      what: art.ref,
    });
    run.chunksFetched += r.chunksFetched;
    if (r.chunksFetched > 0) {
      run.io?.log(
        'info',
        `fetched ${art.ref}: ${r.chunksFetched} of ${r.chunksTotal} chunks (${formatBytes(r.bytesFetched)})`,
      );
    }
  };
  const build = (gid: string, artifacts: typeof loaded) =>
    buildGeneration({
      paths: run.paths,
      id: gid,
      site,
      seq,
      now,
      artifacts,
      cache: run.cache,
      reuse,
      ensureChunks,
    });

  // Artifacts an installed generation already holds are linked from it, not fetched.
  const missing: typeof loaded = [];
  for (const l of loaded) if (!(await findReusable(run.paths, reuse, l.art.manifestDigest))) missing.push(l);
  const policy = missing.find((l) => l.art.slot === 'policy');
  if (policy && missing.some((l) => l.art.slot !== 'policy')) await policyFirst(run, policy, build, id);

  // Priority order (policies, adapters, models): a small policy is cached before a large model.
  for (const l of missing) await ensureChunks(l.art, l.manifest);
  const built = await build(id, loaded);
  run.io?.log(
    'info',
    `built generation ${id} (${built.filesWritten} file(s) written, ${built.filesLinked} linked)`,
  );
}

/** The interim generation of installGeneration: the new policy with the current model and adapters. */
async function policyFirst(
  run: Run,
  policy: { art: AssignedArtifact; manifest: Manifest },
  build: (id: string, artifacts: { art: AssignedArtifact; manifest: Manifest }[]) => Promise<unknown>,
  target: string,
): Promise<void> {
  const currentId = await pointerTarget(run.paths, 'current');
  const current =
    currentId === undefined ? undefined : await readGeneration(generationDir(run.paths, currentId));
  if (!current) return;
  const artifacts = [policy];
  for (const a of current.artifacts) {
    if (a.slot === 'policy') continue;
    const manifest = await run.local.get(a.manifestDigest);
    if (!manifest) return;
    artifacts.push({
      art: { slot: a.slot, ref: a.ref, manifestDigest: a.manifestDigest, dir: a.dir },
      manifest,
    });
  }
  const interim = generationId(artifacts.map((x) => x.art));
  if (interim === target || interim === currentId) return;
  await build(interim, artifacts);
  await switchCurrent(run.paths, interim, { keepPrevious: run.interimKeepsPrevious });
  run.interimKeepsPrevious = true;
  run.io?.log('info', `${policy.art.ref} is live (interim generation ${interim}) while the rest downloads`);
}

/** Chunks referenced by the manifests of the generations kept; everything else is removed. */
async function pruneChunks(run: Run, keepGenerations: readonly string[]): Promise<void> {
  const keep = new Set<string>();
  const manifestDigests = new Set<string>();
  for (const id of keepGenerations) {
    const info = await readGeneration(generationDir(run.paths, id));
    if (!info) return; // Unsure what is needed: keep everything.
    for (const art of info.artifacts) {
      manifestDigests.add(art.manifestDigest);
      const m = await run.local.get(art.manifestDigest);
      if (!m) return;
      for (const f of m.files) for (const c of f.chunks) keep.add(c.digest.slice('sha256:'.length));
    }
  }
  await run.local.prune(manifestDigests);
  const base = join(run.paths.chunks, 'sha256');
  for (const sub of await readdir(base).catch(() => [] as string[])) {
    for (const name of await readdir(join(base, sub)).catch(() => [] as string[])) {
      if (!keep.has(name)) await rm(join(base, sub, name), { force: true });
    }
  }
}

function checkSiteKey(run: Run, fleet: FleetState): void {
  const declared = fleet.sites[run.opts.site]?.declaration.publicKey.keyid;
  if (!declared) return;
  let local: string;
  try {
    local = readPublicKeyFile(run.paths.sitePublicKey).keyid;
  } catch {
    return;
  }
  if (local !== declared) {
    run.warnings.push(
      `the site key in ${run.paths.sitePublicKey} (${local}) is not the key the fleet declares for ${run.opts.site} (${declared}); ` +
        'check --data-dir, or re-key the site with `edgectl site add --rekey`',
    );
  }
}

async function syncLocked(run: Run, stats0: StoreStats): Promise<SyncResult> {
  const { opts, paths } = run;
  const { store, site } = opts;
  const clock = opts.clock ?? (() => new Date());
  await cleanStaging(paths);
  const trustPin: PinnedTrust = await loadPinnedTrust(paths.trustRoot, opts.projectTrustPath);
  const committed = await readSiteState(paths.state);
  if (committed && committed.site !== site) {
    throw new UserError(`${paths.root} is the data directory of site ${committed.site}, not ${site}`, {
      code: 'E_DATA_DIR',
      suggestion: `pass the data directory of ${site} with --data-dir`,
    });
  }
  let state = committed ?? initialState(site, store.url);
  let trust = trustPin.root;

  const currentIntact = await driftPhase(run, trust);

  const now = clock();
  const poll = await pollHead(store, state.head?.etag);
  let headChanged = false;
  let fleet: FleetState | undefined;
  let entriesApplied = 0;
  let snapshotSeq: number | null = null;
  if (poll.kind === 'missing') {
    if (state.appliedSeq > 0) throw await missingHeadError(store, state.appliedSeq);
    run.warnings.push(`the registry ${store.url} has no fleet head yet: run \`edgectl site apply\` first`);
  } else if (poll.kind === 'unchanged') {
    if (state.head) checkFresh(state.head, now);
  } else {
    trust = await advanceTrust(store, paths.trustRoot, trustPin, now);
    const head = verifyHead(poll.body, fleetKeys(trust), now);
    checkFresh(head, now);
    const from = appliedOf(state, await readFleetState(paths.fleetStates, state));
    const up = await catchUp(store, trust, from, head, {
      ...(opts.snapshotWhenBehind !== undefined ? { snapshotWhenBehind: opts.snapshotWhenBehind } : {}),
      ...(opts.rolloutReducer ? { rolloutReducer: opts.rolloutReducer } : {}),
    });
    entriesApplied = up.entries;
    snapshotSeq = up.snapshotSeq;
    if (up.applied.seq !== state.appliedSeq) {
      run.io?.log(
        'info',
        `fleet seq ${state.appliedSeq} -> ${up.applied.seq}${up.snapshotSeq ? ` (via snapshot ${up.snapshotSeq})` : ''}`,
      );
    }
    state = {
      ...state,
      registry: store.url,
      appliedSeq: up.applied.seq,
      entryDigest: up.applied.entryDigest,
      stateDigest: stateDigest(up.applied.state),
      head: { etag: poll.etag, ...head },
      assignments: up.applied.state.sites[site]?.assignments ?? null,
    };
    headChanged = true;
    fleet = up.applied.state;
    checkSiteKey(run, fleet);
  }

  // Step 4: which generation should be current.
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

  let changed = false;
  let previous = (await pointerTarget(paths, 'previous')) ?? null;
  const committedGeneration = committed?.generation ?? null;
  run.interimKeepsPrevious =
    committedGeneration !== null &&
    current !== committedGeneration &&
    (await pointerTarget(paths, 'previous')) === committedGeneration;
  if (target !== null && target !== current) {
    // Installing without a new head (a crash or a moved pointer): walk the root chain first.
    if (!headChanged) trust = await advanceTrust(store, paths.trustRoot, trustPin, now);
    await installGeneration(run, trust, target, targetArts, state.appliedSeq, now);
    await switchCurrent(paths, target, { keepPrevious: run.interimKeepsPrevious });
    previous = (await pointerTarget(paths, 'previous')) ?? null;
    changed = true;
    run.io?.log('info', `current -> generation ${target}${previous ? ` (previous: ${previous})` : ''}`);
  }
  const generation = target ?? (await pointerTarget(paths, 'current')) ?? null;

  // Step 6: commit, then prune what nothing points at.
  const commit =
    headChanged ||
    changed ||
    (committed !== undefined && (state.generation !== generation || state.pin !== committed.pin));
  if (commit) {
    state = { ...state, generation, lastSuccess: now.toISOString() };
    if (fleet) await writeFleetState(paths.fleetStates, fleet, state.stateDigest);
    await writeSiteState(paths.state, state);
    await pruneFleetStates(paths.fleetStates, state.stateDigest);
    const keep = [generation, previous].filter((g): g is string => g !== null);
    await pruneGenerations(paths, new Set(keep));
    if (changed) await pruneChunks(run, keep);
  }

  return {
    site,
    seq: state.appliedSeq,
    generation,
    changed,
    ...delta(stats0, store.stats),
    previousGeneration: previous,
    pinned: pinnedByRollback,
    headChanged,
    entriesApplied,
    snapshotSeq,
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
