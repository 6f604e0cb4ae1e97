/**
 * Which generation the site daemon serves (docs/running-sites.md; docs/architecture.md, runtime): the
 * GenerationManager that loads each new generation (sharing the model session with the previous
 * one) and swaps it in by leases, the feedback context requests are counted under, and the
 * reconcile step that follows the `current` pointer — after a sync switched it, and on a poll that
 * catches `site rollback` run by another process (one readlink per poll; generation.json is read
 * only when the pointer moved). Reconciles are serialized. A generation whose model is an embedder
 * is refused before anything loads (src/artifact/model-role.ts).
 */
import { currentGeneration } from '../../site/agent.js';
import { siteDataPaths } from '../../site/data-dir.js';
import { pointerTarget } from '../../site/generation.js';
import { LocalManifests } from '../../site/manifests.js';
import { refuseSiteModel } from '../../artifact/model-role.js';
import { isoToUnixSeconds } from '../../http/openai-models.js';
import type { FeedbackContext } from '../../feedback/index.js';
import { loadGeneration, type LoadedGeneration } from '../engine/generation.js';
import type { DaemonFeedback } from './feedback.js';
import { GenerationManager } from './generations.js';
import type { DaemonLog } from './log.js';
import { contextOf } from './site-config.js';

export class Serving {
  readonly generations: GenerationManager<LoadedGeneration>;
  /** The feedback context of requests served now (refs of the generation, the applied seq). */
  context: FeedbackContext;
  private reconciling: Promise<void> = Promise.resolve();

  constructor(
    /** The context before any generation serves (the applied seq, no refs). */
    initial: FeedbackContext,
    private readonly dataDir: string,
    private readonly feedback: DaemonFeedback,
    private readonly appliedSeq: () => number | null,
    private readonly log: DaemonLog,
    threads: number | undefined,
  ) {
    this.context = initial;
    this.generations = new GenerationManager<LoadedGeneration>({
      load: async (target, previous) => {
        const modelCreated = await this.checkModel(target.context);
        return loadGeneration(target.dir, {
          id: target.id,
          context: target.context,
          ...(previous ? { previous } : {}),
          ...(threads !== undefined ? { threads } : {}),
          ...(modelCreated === undefined ? {} : { modelCreated }),
        });
      },
      onEvent: (e) => {
        if (e.kind === 'installed') {
          const gen = this.generations.current;
          if (gen) this.setContext(gen.context);
          log('info', 'serving generation', {
            generation: e.id,
            previous: e.from,
            loadMs: e.ms,
            model: gen?.modelName,
            adapters: gen?.adapterNames.join(','),
          });
        } else if (e.kind === 'load-failed') {
          log('error', 'generation failed to load; the installed one keeps serving', {
            generation: e.id,
            error: e.error,
          });
        } else if (e.kind === 'disposed') log('debug', 'generation released', { generation: e.id });
        else log('error', 'generation release failed', { generation: e.id, error: e.error });
      },
    });
  }

  /**
   * Refuses a generation whose model is not a draft LM (an embedder put in the model slot by a
   * fleet state older than the check in `site plan`, or a generation built before it: the
   * GenerationManager then keeps the installed one serving), and returns the model artifact's
   * publish time (OpenAI `created`, stable across restarts). Both come from its verified manifest
   * in the data directory; undefined (and no check) when the manifest is not there.
   */
  private async checkModel(context: FeedbackContext): Promise<number | undefined> {
    const model = context.refs.model;
    if (model === undefined) return undefined;
    const manifest = await new LocalManifests(siteDataPaths(this.dataDir).manifests).get(
      model.manifestDigest,
    );
    if (manifest) refuseSiteModel(manifest, model.ref);
    return isoToUnixSeconds(manifest?.created);
  }

  private setContext(context: FeedbackContext): void {
    this.context = context;
    this.feedback.setContext(context);
  }

  /** Serves what `current` points at (a no-op when it already does); serialized. */
  reconcile(opts: { retryFailed?: boolean } = {}): Promise<void> {
    this.reconciling = this.reconciling
      .then(() => this.reconcileOnce(opts))
      .catch((err: unknown) => this.log('error', 'cannot check the current generation', { error: err }));
    return this.reconciling;
  }

  /** The reconcile in progress (shutdown waits for it). */
  get idle(): Promise<void> {
    return this.reconciling.catch(() => undefined);
  }

  private async reconcileOnce(opts: { retryFailed?: boolean }): Promise<void> {
    const id = await pointerTarget(siteDataPaths(this.dataDir), 'current').catch(() => undefined);
    if (id === undefined) return;
    if (this.generations.current?.id === id) {
      // Same refs, newer applied seq: requests count under the new seq.
      const seq = this.appliedSeq() ?? 0;
      if (seq > this.context.fleetSeq) this.setContext({ ...this.context, fleetSeq: seq });
      return;
    }
    const cur = await currentGeneration(this.dataDir).catch(() => undefined);
    if (!cur) return;
    await this.generations.reconcile(
      { id: cur.id, dir: cur.dir, context: contextOf(cur.info, this.appliedSeq() ?? 0) },
      opts,
    );
  }
}
