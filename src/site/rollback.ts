/**
 * `site rollback`: switch `current` back to `previous` locally, at once, without the registry
 * (docs/running-sites.md; the previous generation is kept for exactly this). The previous generation is
 * verified first (every file's SHA-256; a damaged file is repaired from the chunk cache), so a
 * rollback never installs something the site could not check.
 *
 * The pin rule: a rollback records a pin (generation rolled back to + the generation the fleet
 * assigned at that moment). The next syncs keep the pinned generation for as long as the fleet
 * state still assigns this site the same artifacts; as soon as the fleet assigns anything else,
 * the pin is released and the new assignment is installed. Rolling back again swaps back and, if
 * that is the assigned generation, clears the pin.
 */
import { existsSync } from 'node:fs';
import { NotFoundError, VerificationError } from '../foundation/errors.js';
import type { Io } from '../foundation/output.js';
import { ChunkCache } from '../artifact/chunk-cache.js';
import type { Manifest } from '../artifact/manifest.js';
import { siteDataPaths, type SiteDataPaths } from './data-dir.js';
import { checkDrift, repairDrift } from './drift.js';
import {
  generationDir,
  generationId,
  pointerTarget,
  readGeneration,
  swapCurrentAndPrevious,
  type GenerationInfo,
} from './generation.js';
import { acquireLock } from './lock.js';
import { LocalManifests, assignedArtifacts } from './manifests.js';
import { readSiteState, writeSiteState, type RollbackPin } from './state-file.js';

export interface RollbackOptions {
  site: string;
  dataDir: string;
  clock?: () => Date;
  io?: Io;
}

export interface RollbackResult {
  site: string;
  /** Generation now current. */
  generation: string;
  /** Generation now previous (the one rolled back from). */
  previous: string;
  /** Fleet seq the site has applied (unchanged by a rollback). */
  seq: number;
  /** Null when the rollback returned to the generation the fleet assigns. */
  pin: RollbackPin | null;
  /** Files of the rolled-back-to generation repaired from the chunk cache before switching. */
  repaired: string[];
}

export async function rollbackSite(opts: RollbackOptions): Promise<RollbackResult> {
  const paths = siteDataPaths(opts.dataDir);
  const clock = opts.clock ?? (() => new Date());
  if (!existsSync(paths.state)) {
    throw new NotFoundError(`site ${opts.site} has never synced (${paths.state} is missing)`, {
      code: 'E_NOT_SYNCED',
      suggestion: `run \`edgectl site sync ${opts.site} --once\` first`,
    });
  }
  const lock = await acquireLock(paths.lock, 'a rollback');
  try {
    const state = await readSiteState(paths.state);
    if (!state) throw new NotFoundError(`site ${opts.site} has never synced`, { code: 'E_NOT_SYNCED' });
    const current = await pointerTarget(paths, 'current');
    const previous = await pointerTarget(paths, 'previous');
    if (current === undefined || previous === undefined || previous === current) {
      throw new NotFoundError(`site ${opts.site} has no previous generation to roll back to`, {
        code: 'E_NO_PREVIOUS',
        suggestion: 'a previous generation exists after the site has installed a second set of artifacts',
        details: { current: current ?? null },
      });
    }
    const dir = generationDir(paths, previous);
    const info = await readGeneration(dir);
    if (!info || info.id !== previous) {
      throw new VerificationError(
        `previous generation ${previous} is incomplete (no valid generation.json)`,
        {
          code: 'E_GENERATION',
          details: { generation: previous },
        },
      );
    }
    const repaired = await repairPrevious(paths, dir, info, opts.io);
    const swapped = await swapCurrentAndPrevious(paths);
    const arts = assignedArtifacts(state.assignments);
    const assigned = arts.length > 0 ? generationId(arts) : null;
    const pin: RollbackPin | null =
      swapped.current === assigned
        ? null
        : { generation: swapped.current, desired: assigned ?? '', since: clock().toISOString() };
    await writeSiteState(paths.state, { ...state, generation: swapped.current, pin });
    opts.io?.log('info', `current -> generation ${swapped.current} (previous: ${swapped.previous})`);
    return {
      site: opts.site,
      generation: swapped.current,
      previous: swapped.previous,
      seq: state.appliedSeq,
      pin,
      repaired,
    };
  } finally {
    await lock.release();
  }
}

/**
 * Checks every file of the generation a rollback returns to against its manifests and repairs
 * drift from the local chunk cache only (the registry is not consulted); refuses when the cache
 * cannot repair it. Returns the repaired files.
 */
async function repairPrevious(
  paths: SiteDataPaths,
  dir: string,
  info: GenerationInfo,
  io: Io | undefined,
): Promise<string[]> {
  const local = new LocalManifests(paths.manifests);
  const manifests = new Map<string, Manifest>();
  for (const art of info.artifacts) {
    const m = await local.get(art.manifestDigest);
    if (m) manifests.set(art.manifestDigest, m);
  }
  const found = await checkDrift(dir, info, { verifyAll: true, manifests });
  if (found.problems.length > 0 || found.extra.length > 0 || found.infoFixed) {
    const r = await repairDrift(dir, info, found, {
      cache: new ChunkCache(paths.chunks),
      manifests,
      store: undefined,
    });
    if (r.unrepaired.length > 0) {
      throw new VerificationError(
        `previous generation ${info.id} is damaged (${r.unrepaired.join(', ')}) and the chunk cache cannot repair it`,
        {
          code: 'E_GENERATION',
          suggestion:
            'run `edgectl site sync` instead: it reinstalls the assigned generation from the registry',
          details: { generation: info.id, files: r.unrepaired },
        },
      );
    }
    io?.log('warn', `repaired ${r.repaired.length} file(s) of generation ${info.id} before switching`);
    return r.repaired;
  }
  return [];
}
