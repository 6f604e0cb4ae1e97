/**
 * What the `rollout *` commands call: each opens the registry named by the project configuration,
 * walks its trust chain, and runs one rollout operation (start, wait, promote, abort, pause,
 * resume, undo, status, history), returning a `RolloutReport` the commands print and `--json`
 * emits as is. The report lists every judgement the log holds for the rollout (metric, verdict,
 * value, boundary, evidence, samples, sites), every rollout event, the outcome and its exit code
 * (0 promoted, 5 rolled back, 6 paused or inconclusive, 7 timeout), so CI can gate on it.
 */
import { hostname, userInfo } from 'node:os';
import { randomBytes } from 'node:crypto';
import { ConflictError, NotFoundError, UserError } from '../foundation/errors.js';
import type { Io } from '../foundation/output.js';
import { parseRef } from '../artifact/ref.js';
import { resolveRef } from '../artifact/manifest-store.js';
import { refuseNonDraftModel } from '../artifact/model-role.js';
import { isActive, type RolloutState } from '../fleet/rollout-ops.js';
import { fleetWriteGuard } from '../fleet/write-guard.js';
import type { FleetState } from '../fleet/state.js';
import { loadSigningKey, type KeyPair } from '../registry/keys.js';
import { openStore } from '../registry/open-store.js';
import type { Store } from '../registry/store.js';
import type { TrustRoot } from '../registry/trust.js';
import { loadTrustInForce } from '../registry/trust-history.js';
import { abortOps, advanceOps, pauseOps, promoteOps, resumeOps, startOps, undoOps } from './actions.js';
import { appendEntry, readLatest, type FleetWriter } from './append.js';
import { getRollout, runController, tick, type TickResult } from './controller.js';
import { FeedbackCache } from './evidence.js';
import { currentStep } from './shadow.js';
import { judgeStep } from './judge/index.js';
import type { JudgeStep } from './judge/types.js';
import { normalizeSpec, readSpecFile, specFromJson, type RolloutFile, type SpecOverrides } from './spec.js';
import { rolloutReport, type RolloutReport, type SiteView } from './report.js';

export {
  stepName,
  viewOf,
  type JudgementRecord,
  type Outcome,
  type RolloutEvent,
  type RolloutReport,
  type RolloutView,
  type SiteView,
  type WaveView,
} from './report.js';

export interface RolloutTarget {
  registryUrl: string;
  trustPath: string;
  clock?: () => Date;
  io?: Io;
  /** Injected in tests; default: the sequential judge (judge/index.ts). */
  judge?: JudgeStep;
}

export interface WriterTarget extends RolloutTarget {
  /** Fleet secret key file; undefined = EDGECTL_SIGNING_KEY. */
  keyPath: string | undefined;
  env?: NodeJS.ProcessEnv;
  /** Take the lease on a store without conditional writes instead of refusing (fleet/write-guard.ts). */
  singleWriter?: boolean;
  /** The command, for the guard's messages and the lease (default `rollout`). */
  command?: string;
}

function defaultBy(): string {
  let user = 'unknown';
  try {
    user = userInfo().username;
  } catch {
    // no passwd entry (containers): keep "unknown"
  }
  return `${user}@${hostname()}`;
}

async function withRegistry<T>(
  t: RolloutTarget,
  body: (store: Store, trust: TrustRoot) => Promise<T>,
): Promise<T> {
  const store = await openStore(t.registryUrl);
  try {
    const trust = await loadTrustInForce(store, t.trustPath, (t.clock ?? (() => new Date()))());
    return await body(store, trust);
  } finally {
    await store.close();
  }
}

function signer(t: WriterTarget): KeyPair {
  return loadSigningKey(t.keyPath, t.env ?? process.env, { flag: '--key', configKey: 'keys.fleet' });
}

function writer(t: WriterTarget, store: Store, trust: TrustRoot, key: KeyPair): FleetWriter {
  return {
    store,
    trust,
    signers: [key],
    clock: t.clock ?? (() => new Date()),
    ...(t.io ? { io: t.io } : {}),
    guard: fleetWriteGuard(store, {
      command: t.command ?? 'rollout',
      singleWriter: t.singleWriter ?? false,
      ...(t.io ? { io: t.io } : {}),
    }),
  };
}

/** The rollout `id`, or the single active one (the latest one when `latest` and none is active). */
export function pickRollout(state: FleetState, id: string | undefined, latest = false): RolloutState {
  if (id) return getRollout(state, id);
  const all = Object.values(state.rollouts ?? {});
  const active = all.filter(isActive);
  if (active.length === 1) return active[0] as RolloutState;
  if (active.length > 1) {
    throw new UserError(
      `${active.length} rollouts are active (${active.map((r) => r.id).join(', ')}): name one`,
      {
        code: 'E_ROLLOUT_AMBIGUOUS',
      },
    );
  }
  if (latest && all.length > 0) return all.sort((a, b) => b.startSeq - a.startSeq)[0] as RolloutState;
  throw new NotFoundError(latest ? 'no rollout in the fleet log' : 'no active rollout', {
    code: 'E_ROLLOUT_NOT_FOUND',
    suggestion: latest
      ? 'start one with `edgectl rollout canary <ref> --sites <selector>`'
      : 'name one (`edgectl rollout history` lists them) or start one with `edgectl rollout canary`',
  });
}

function newId(candidate: string): string {
  const ref = parseRef(candidate);
  const v = (ref.version ?? ref.digest?.slice(7, 15) ?? 'x').toLowerCase().replace(/[^a-z0-9.-]/g, '-');
  return `${ref.name}-${v}-${randomBytes(2).toString('hex')}`.replace(/[^a-z0-9.-]/g, '-');
}

export interface CanaryOptions extends WriterTarget {
  candidate?: string;
  specPath?: string;
  /** Shown in messages for specPath. */
  specDisplay?: string;
  overrides?: SpecOverrides;
  id?: string;
  wait?: boolean;
  /** Stop waiting after this long (ms); the rollout goes on. */
  timeoutMs?: number;
  /** Overrides the spec's interval between controller passes. */
  intervalMs?: number;
  signal?: AbortSignal;
  onTick?: (t: TickResult) => void;
}

/** `rollout canary`: starts the rollout (start + wave 1 in one entry), then waits if asked. */
export async function startCanary(opts: CanaryOptions): Promise<RolloutReport> {
  const file: RolloutFile = opts.specPath ? readSpecFile(opts.specPath, opts.specDisplay).value : {};
  const spec = normalizeSpec(file, {
    ...opts.overrides,
    ...(opts.candidate ? { candidate: opts.candidate } : {}),
  });
  const key = signer(opts);
  return withRegistry(opts, async (store, trust) => {
    const loaded = await resolveRef(store, parseRef(spec.candidate), trust);
    // A model candidate goes into the sites' model slot: an embedder cannot serve there.
    refuseNonDraftModel(loaded.manifest, loaded.ref, 'rollout candidate');
    const candidate = { ref: loaded.ref, manifestDigest: loaded.digest };
    const id = opts.id ?? newId(candidate.ref);
    const w = writer(opts, store, trust, key);
    const res = await appendEntry(w, (fleet) => ({
      ops: startOps(fleet.state, {
        id,
        spec: { ...spec, candidate: candidate.ref },
        candidate,
        by: defaultBy(),
      }).ops,
    }));
    const r = getRollout(res.fleet.state, id);
    opts.io?.log(
      'info',
      `started rollout ${id}: ${candidate.ref} on ${r.sites.length} sites, waves ${r.waves.join('/')} (fleet seq ${res.seq ?? res.fleet.seq})`,
    );
    if (!opts.wait) return rolloutReport(store, trust, res.fleet.state, res.fleet, r);
    return waitFor(opts, store, trust, w, id);
  });
}

async function waitFor(
  opts: WriterTarget & Pick<CanaryOptions, 'timeoutMs' | 'intervalMs' | 'signal' | 'onTick'>,
  store: Store,
  trust: TrustRoot,
  w: FleetWriter,
  id: string,
): Promise<RolloutReport> {
  const deps = {
    ...w,
    judge: opts.judge ?? judgeStep,
    by: `controller:${defaultBy()}`,
    cache: new FeedbackCache(),
  };
  const run = await runController(deps, id, {
    ...(opts.timeoutMs !== undefined ? { deadline: Date.now() + opts.timeoutMs } : {}),
    ...(opts.signal ? { signal: opts.signal } : {}),
    ...(opts.intervalMs !== undefined ? { intervalMs: opts.intervalMs } : {}),
    ...(opts.onTick ? { onTick: opts.onTick } : {}),
  });
  const { rollout, state } = run.last;
  const at = (await readLatest(store, trust, w.clock())).applied;
  return rolloutReport(store, trust, state, at, rollout, {
    timedOut: run.stopped === 'deadline',
    ...(run.stopped === 'deadline'
      ? {
          reason: `still running after the wait timeout (step ${rollout.step}); \`edgectl rollout resume ${id} --wait\` continues`,
        }
      : run.stopped === 'signal'
        ? { reason: `interrupted at step ${rollout.step}; \`edgectl rollout resume ${id} --wait\` continues` }
        : {}),
  });
}

export interface ActOptions extends WriterTarget {
  id?: string;
  reason?: string;
}

export type RolloutAct = 'promote' | 'promote-full' | 'abort' | 'pause' | 'resume' | 'undo';

/** A manual transition, written like the controller's (CAS on the log; refused if it does not fit). */
export async function actOnRollout(
  act: RolloutAct,
  opts: ActOptions & Pick<CanaryOptions, 'wait' | 'timeoutMs' | 'intervalMs' | 'signal' | 'onTick'>,
): Promise<RolloutReport> {
  const key = signer(opts);
  const by = defaultBy();
  return withRegistry(opts, async (store, trust) => {
    const w = writer(opts, store, trust, key);
    const now = w.clock();
    const first = await readLatest(store, trust, now);
    const target = pickRollout(first.applied.state, opts.id, act === 'undo');
    const id = target.id;
    const why = opts.reason ?? `${act} by ${by}`;
    const res = await appendEntry(w, (fleet) => {
      const r = getRollout(fleet.state, id);
      const refuse = (msg: string) =>
        new ConflictError(`rollout ${id} is ${r.status}: ${msg}`, {
          code: 'E_ROLLOUT_STATE',
          details: { status: r.status },
        });
      switch (act) {
        case 'promote':
        case 'promote-full':
          if (!isActive(r)) throw refuse('only a running or paused rollout can be promoted');
          return {
            ops:
              act === 'promote-full'
                ? promoteOps(fleet.state, r, why, by)
                : [
                    ...(r.status === 'paused' ? resumeOps(r, by) : []),
                    ...advanceOps(fleet.state, r, why, by),
                  ],
          };
        case 'abort':
          if (!isActive(r))
            throw refuse(
              'only a running or paused rollout can be aborted (use `rollout undo` after a promotion)',
            );
          return { ops: abortOps(fleet.state, r, why, by) };
        case 'pause':
          if (r.status === 'paused') return null;
          if (r.status !== 'running') throw refuse('only a running rollout can be paused');
          return { ops: pauseOps(r, 'manual', why, by) };
        case 'resume':
          if (r.status === 'running') return null;
          if (r.status !== 'paused') throw refuse('only a paused rollout can be resumed');
          return { ops: resumeOps(r, by) };
        case 'undo':
          if (r.status !== 'promoted')
            throw refuse('only a promoted rollout can be undone (abort a running one)');
          return { ops: undoOps(fleet.state, r, why, by) };
      }
    });
    const r = getRollout(res.fleet.state, id);
    if (act === 'resume' && opts.wait) return waitFor(opts, store, trust, w, id);
    return rolloutReport(store, trust, res.fleet.state, res.fleet, r);
  });
}

export interface StatusOptions extends RolloutTarget {
  id?: string;
}

/** `rollout status`: the rollout from the log, plus the current step judged live (nothing written). */
export async function rolloutStatus(
  opts: StatusOptions,
  cache = new FeedbackCache(),
): Promise<RolloutReport> {
  return withRegistry(opts, async (store, trust) => {
    const now = (opts.clock ?? (() => new Date()))();
    const latest = await readLatest(store, trust, now);
    const state = latest.applied.state;
    const r = pickRollout(state, opts.id, true);
    const out = await rolloutReport(store, trust, state, latest.applied, r);
    if (r.status === 'running' || r.status === 'paused') {
      await cache.refresh(store, state, r.sites, new Date(Date.parse(r.stepTime) - 60_000));
      const { evidence: ev, metrics } = currentStep(state, r, specFromJson(r.spec), (s) => cache.reports(s));
      const judged = (opts.judge ?? judgeStep)(metrics, ev.canary, ev.baseline);
      const samples = new Map([...ev.canary, ...ev.baseline].map((s) => [s.site, s]));
      const canary = new Set(ev.sites.canary);
      const sites: SiteView[] = r.sites.map((site) => {
        const s = samples.get(site);
        const c = s?.counters;
        const cur = state.sites[site];
        const ref =
          cur === undefined
            ? null
            : r.slot === 'adapters' || r.slot === 'indexes'
              ? ((cur.assignments[r.slot] ?? []).find((a) => a.ref.startsWith(`${r.identity}@`))?.ref ?? null)
              : (cur.assignments[r.slot]?.ref ?? null);
        return {
          site,
          arm: canary.has(site) ? 'canary' : 'baseline',
          ref,
          windows: s?.windows ?? 0,
          requests: c ? c.requests.edge + c.requests.speculative + c.requests.cloud : 0,
          errors: c?.errors ?? 0,
          acceptance: c && c.draftTokens > 0 ? c.acceptedTokens / c.draftTokens : null,
        };
      });
      out.live = {
        decision: judged.decision,
        reason: judged.judgements.map((j) => `${j.metric}: ${j.verdict}`).join(', '),
        judgements: judged.judgements,
        sites,
      };
    }
    return out;
  });
}

export interface HistoryItem {
  id: string;
  status: RolloutState['status'];
  candidate: string;
  selector: string;
  sites: number;
  step: number;
  steps: number;
  startedAt: string;
  endedAt: string | null;
  reason: string | null;
}

/** `rollout history`: every rollout in the fleet state, newest first. */
export async function rolloutHistory(
  opts: RolloutTarget,
): Promise<{ registry: string; fleetSeq: number; rollouts: HistoryItem[] }> {
  return withRegistry(opts, async (store, trust) => {
    const latest = await readLatest(store, trust, (opts.clock ?? (() => new Date()))());
    const rollouts = Object.values(latest.applied.state.rollouts ?? {})
      .sort((a, b) => b.startSeq - a.startSeq)
      .map((r) => ({
        id: r.id,
        status: r.status,
        candidate: r.candidate.ref,
        selector: r.selector,
        sites: r.sites.length,
        step: r.step,
        steps: r.waves.length,
        startedAt: r.startedAt,
        endedAt: r.endedAt,
        reason: r.reason,
      }));
    return { registry: store.url, fleetSeq: latest.applied.seq, rollouts };
  });
}

/** `rollout resume [--wait]` on a running rollout (e.g. after the CI job died): just waits. */
export async function waitRollout(
  opts: ActOptions & Pick<CanaryOptions, 'timeoutMs' | 'intervalMs' | 'signal' | 'onTick'>,
): Promise<RolloutReport> {
  const key = signer(opts);
  return withRegistry(opts, async (store, trust) => {
    const w = writer(opts, store, trust, key);
    const latest = await readLatest(store, trust, w.clock());
    const r = pickRollout(latest.applied.state, opts.id);
    if (r.status === 'paused') {
      await appendEntry(w, (fleet) => {
        const cur = getRollout(fleet.state, r.id);
        return cur.status === 'paused' ? { ops: resumeOps(cur, defaultBy()) } : null;
      });
    }
    return waitFor(opts, store, trust, w, r.id);
  });
}

export { tick };
