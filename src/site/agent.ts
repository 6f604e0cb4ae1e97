/**
 * The sync agent as a long-lived object: what `site sync` (without --once) and the site daemon
 * (`site up`) run in-process. It serializes syncs (one at a time, even if a caller asks while the
 * loop is syncing), runs them every `interval` until its AbortSignal fires, and reports through
 * events instead of exceptions, so the runtime next to it keeps serving whatever happens:
 *
 *   sync      every completed sync (its SyncResult)
 *   switched  `current` moved to another generation ({ from, to, seq }): reload the runtime
 *   offline   the registry could not be reached (the SyncResult, `offline: true`)
 *   refused   a verification failure (exit-4 class): nothing was installed ({ error, frozen })
 *   drift     files of the current generation had drifted (the DriftReport, repaired or not)
 *   failed    any other error (lock held by another process, disk full...)
 *
 * `currentGeneration()` tells the runtime which generation directory to load.
 */
import { EventEmitter } from 'node:events';
import { realpath } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { isEdgectlError } from '../foundation/errors.js';
import { siteDataPaths } from './data-dir.js';
import { generationDir, pointerTarget, readGeneration, type GenerationInfo } from './generation.js';
import type { DriftReport } from './state-file.js';
import { syncOnce, type SyncOptions, type SyncResult } from './sync.js';

export interface CurrentGeneration {
  id: string;
  /** Absolute path of the generation directory (resolved, so it stays valid after a switch). */
  dir: string;
  info: GenerationInfo;
}

/** The generation `current` points to, or undefined before the first install. */
export async function currentGeneration(dataDir: string): Promise<CurrentGeneration | undefined> {
  const paths = siteDataPaths(dataDir);
  const id = await pointerTarget(paths, 'current');
  if (id === undefined) return undefined;
  const dir = generationDir(paths, id);
  const info = await readGeneration(dir);
  if (!info) return undefined;
  return { id, dir: await realpath(dir), info };
}

export interface SyncAgentEvents {
  sync: [SyncResult];
  /** `seq` is the applied fleet seq, or -1 when the sync that moved current then failed. */
  switched: [{ from: string | null; to: string; seq: number }];
  offline: [SyncResult];
  refused: [{ error: Error; frozen: boolean }];
  drift: [DriftReport];
  failed: [Error];
}

export interface LoopOptions {
  /** Milliseconds between the end of one sync and the start of the next. */
  interval: number;
  signal: AbortSignal;
}

export interface LoopSummary {
  syncs: number;
  failures: number;
  last: SyncResult | undefined;
}

function hasDrift(d: DriftReport | null): d is DriftReport {
  return d !== null && (d.changed.length > 0 || d.missing.length > 0 || d.extra.length > 0);
}

export class SyncAgent extends EventEmitter<SyncAgentEvents> {
  private chain: Promise<unknown> = Promise.resolve();

  constructor(readonly options: SyncOptions) {
    super();
  }

  /** One sync, after any sync already running; emits events and also throws its error. */
  syncOnce(): Promise<SyncResult> {
    const run = this.chain.then(() => this.runOne());
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async runOne(): Promise<SyncResult> {
    const paths = siteDataPaths(this.options.dataDir);
    const before = (await pointerTarget(paths, 'current').catch(() => undefined)) ?? null;
    // `current` may move even when the sync ends offline or refused (a new policy goes live
    // before a large model arrives), so the pointer itself decides whether to announce a switch.
    const announce = async (seq: number) => {
      const after = (await pointerTarget(paths, 'current').catch(() => undefined)) ?? null;
      if (after !== null && after !== before) this.emit('switched', { from: before, to: after, seq });
    };
    let result: SyncResult;
    try {
      result = await syncOnce(this.options);
    } catch (err) {
      await announce(-1);
      const error = err instanceof Error ? err : new Error(String(err));
      if (isEdgectlError(err) && err.exitCode === 4) {
        this.emit('refused', { error, frozen: err.code === 'E_FROZEN' });
      } else this.emit('failed', error);
      throw err;
    }
    if (hasDrift(result.drift)) this.emit('drift', result.drift);
    if (result.offline) this.emit('offline', result);
    await announce(result.seq);
    this.emit('sync', result);
    return result;
  }

  /** Syncs every `interval` until `signal` aborts; never throws for a failed sync (see events). */
  async runSyncLoop(opts: LoopOptions): Promise<LoopSummary> {
    const summary: LoopSummary = { syncs: 0, failures: 0, last: undefined };
    while (!opts.signal.aborted) {
      try {
        summary.last = await this.syncOnce();
        summary.syncs++;
      } catch {
        summary.failures++;
      }
      if (opts.signal.aborted) break;
      try {
        await sleep(opts.interval, undefined, { signal: opts.signal });
      } catch {
        break;
      }
    }
    return summary;
  }

  currentGeneration(): Promise<CurrentGeneration | undefined> {
    return currentGeneration(this.options.dataDir);
  }
}

/** Convenience for callers that need no events: `new SyncAgent(options).runSyncLoop(loop)`. */
export function runSyncLoop(options: SyncOptions, loop: LoopOptions): Promise<LoopSummary> {
  return new SyncAgent(options).runSyncLoop(loop);
}
