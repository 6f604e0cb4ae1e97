/**
 * Traffic for the rollout end-to-end tests, paced by the rollout instead of the clock (issue #16:
 * a loaded machine must make these tests slower, never red). Sites are sent traffic only while a
 * rollout runs and its current step is undecided, in fixed batches: `batch` requests to every
 * selected site (one at a time per site), then a wait, by reading the registry, until each site's
 * signed feedback counts every request it answered (so the controller can see them too). Then the
 * step is judged from that same evidence the way the controller judges it (FeedbackCache,
 * currentStep, the sequential judge, nextTransition): still undecided, another batch; decided (promote,
 * roll back, pause), no more traffic until the controller has acted on it and the next step begins.
 * How long a batch takes does not matter, so the step timeouts in the tests' specs are backstops
 * only, never what ends a step.
 */
import OpenAI from 'openai';
import type { RolloutState } from '../../src/fleet/rollout-ops.js';
import type { FleetState } from '../../src/fleet/state.js';
import type { Store } from '../../src/registry/store.js';
import type { TrustRoot } from '../../src/registry/trust.js';
import { specFromJson } from '../../src/rollout/actions.js';
import { nextTransition } from '../../src/rollout/transition.js';
import { readLatest } from '../../src/rollout/append.js';
import { FeedbackCache } from '../../src/rollout/evidence.js';
import { judgeStep } from '../../src/rollout/judge/index.js';
import { currentStep } from '../../src/rollout/shadow.js';
import { readFeedback } from '../../src/feedback/read.js';
import { declaredSiteKeys, totalRequests } from '../../src/feedback/report.js';

export interface PacedTrafficOptions {
  /** The fleet's registry (read only) and its trust root. */
  store: Store;
  trust: TrustRoot;
  /** Site name to its base URL (`http://host:port`). */
  urls: ReadonlyMap<string, string>;
  prompts: readonly string[];
  /** Requests to each selected site per batch (a multiple of the prompts: the same mix each batch). */
  batch: number;
}

export interface PacedTraffic {
  /** Batches sent so far (one batch = `batch` requests to every selected site). */
  readonly batches: number;
  /** The last error reading the registry (the loop retries), for a failing test's message. */
  readonly lastError: string | undefined;
  /** Stops sending (aborting requests in flight) and waits for the loop to end. */
  stop(): Promise<void>;
}

/** How often the registry is read while waiting (for a rollout, a decision, feedback). */
const POLL_MS = 200;
/**
 * Backstop of the wait for a batch's feedback: past it the next judgement goes ahead anyway. A
 * report can only be missing if a site lost its open window (a restart), and sending another batch
 * is harmless where waiting forever is not.
 */
const FEEDBACK_BACKSTOP_MS = 120_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function runningRollout(state: FleetState): RolloutState | undefined {
  return Object.values(state.rollouts ?? {}).find((r) => r.status === 'running');
}

export function startPacedTraffic(opts: PacedTrafficOptions): PacedTraffic {
  const stopping = new AbortController();
  const answered = new Map<string, number>();
  const reported = new Map<string, { lastSeq: number; requests: number }>();
  const caches = new Map<string, FeedbackCache>();
  let batches = 0;
  let lastError: string | undefined;

  /** Whether the rollout's current step is undecided on the feedback in the registry now. */
  const undecided = async (state: FleetState, r: RolloutState): Promise<boolean> => {
    const cache = caches.get(r.id) ?? new FeedbackCache();
    caches.set(r.id, cache);
    await cache.refresh(opts.store, state, r.sites, new Date(Date.parse(r.stepTime) - 60_000));
    const { evidence, metrics } = currentStep(state, r, specFromJson(r.spec), (s) => cache.reports(s));
    const judged = judgeStep(metrics, evidence.canary, evidence.baseline);
    return nextTransition(r, judged, evidence.health, new Date()).decision === 'continue';
  };

  const sendBatch = async (sites: readonly string[]): Promise<void> => {
    await Promise.all(
      sites.map(async (site) => {
        const url = opts.urls.get(site);
        if (!url) return;
        const client = new OpenAI({
          baseURL: `${url}/v1`,
          apiKey: 'unused',
          maxRetries: 0,
          timeout: 300_000,
        });
        // Every site gets the same prompts in the same order, batch after batch.
        for (let i = 0; i < opts.batch && !stopping.signal.aborted; i++) {
          const content = opts.prompts[i % opts.prompts.length] as string;
          try {
            await client.chat.completions.create(
              { model: 'draft:support', messages: [{ role: 'user', content }], max_tokens: 24 },
              { signal: stopping.signal },
            );
            answered.set(site, (answered.get(site) ?? 0) + 1);
          } catch {
            // A failed request is the evidence's business (errorRate, abort limits), not the driver's.
          }
        }
      }),
    );
    batches++;
  };

  /** Waits until every site's signed feedback counts at least the requests it answered. */
  const waitForFeedback = async (state: FleetState, sites: readonly string[]): Promise<void> => {
    const declared = declaredSiteKeys(state);
    const backstop = Date.now() + FEEDBACK_BACKSTOP_MS;
    for (const site of sites) {
      for (;;) {
        const seen = reported.get(site) ?? { lastSeq: 0, requests: 0 };
        const read = await readFeedback(opts.store, site, declared, { afterSeq: seen.lastSeq });
        const requests = seen.requests + read.reports.reduce((n, w) => n + totalRequests(w.counters), 0);
        reported.set(site, { lastSeq: Math.max(seen.lastSeq, read.lastSeq), requests });
        if (requests >= (answered.get(site) ?? 0) || stopping.signal.aborted || Date.now() > backstop) break;
        await sleep(POLL_MS);
      }
    }
  };

  const loop = (async () => {
    while (!stopping.signal.aborted) {
      try {
        const state = (await readLatest(opts.store, opts.trust, new Date())).applied.state;
        const r = runningRollout(state);
        if (!r || !(await undecided(state, r))) {
          // No rollout, or its step is decided: the controller acts at its next pass.
          await sleep(POLL_MS);
          continue;
        }
        await sendBatch(r.sites);
        await waitForFeedback(state, r.sites);
      } catch (err) {
        // Reading while the controller writes may fail once (say, a head being replaced): retry.
        lastError = err instanceof Error ? err.message : String(err);
        await sleep(POLL_MS);
      }
    }
  })();

  return {
    get batches() {
      return batches;
    },
    get lastError() {
      return lastError;
    },
    async stop() {
      stopping.abort();
      await loop;
    },
  };
}
