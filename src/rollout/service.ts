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
import { ConflictError, ExitCode, NotFoundError, UserError, VerificationError } from '../cli/errors.js';
import type { Io } from '../cli/output.js';
import { parseRef } from '../artifact/ref.js';
import { resolveRef } from '../artifact/manifest-store.js';
import type { FleetOp } from '../fleet/ops.js';
import { entryDigest, type FleetEntry } from '../fleet/entry.js';
import { readEntries } from '../fleet/read.js';
import { isActive, type RolloutState } from '../fleet/rollout-ops.js';
import { fleetKeys } from '../fleet/signed.js';
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
import { currentStep, inShadow } from './shadow.js';
import { judgeStep } from './judge/index.js';
import type { JudgeStep, Judgement } from './judge/types.js';
import { normalizeSpec, readSpecFile, specFromJson, type RolloutFile, type SpecOverrides } from './spec.js';

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

export type Outcome = 'running' | 'promoted' | 'rolled-back' | 'paused' | 'timeout' | 'undone';

export interface JudgementRecord {
  seq: number;
  time: string;
  step: number;
  /** Judged in the shadow step. */
  shadow?: boolean;
  decision: string;
  reason: string;
  windows: { canary: number; baseline: number };
  judgements: Judgement[];
}

export interface RolloutEvent {
  seq: number;
  time: string;
  op: string;
  summary: string;
}

export interface SiteView {
  site: string;
  arm: 'canary' | 'baseline';
  /** The ref the site has in the rollout's slot now. */
  ref: string | null;
  windows: number;
  requests: number;
  errors: number;
  acceptance: number | null;
}

export interface WaveView {
  step: number;
  size: number;
  sites: string[];
  state: 'done' | 'current' | 'pending';
}

export interface RolloutView {
  id: string;
  status: RolloutState['status'];
  candidate: string;
  slot: string;
  identity: string;
  selector: string;
  step: number;
  /** The shadow step, when the spec has one (`failed`: the rollout was rolled back in it). */
  shadow?: { sites: string[]; state: 'current' | 'done' | 'failed' };
  waves: WaveView[];
  canary: string[];
  startedAt: string;
  endedAt: string | null;
  reason: string | null;
  pauseReason: string | null;
  previous: Record<string, string | null>;
}

export interface RolloutReport {
  registry: string;
  fleetSeq: number;
  rollout: RolloutView;
  outcome: Outcome;
  exitCode: number;
  reason: string;
  judgements: JudgementRecord[];
  events: RolloutEvent[];
  /** The current step judged now from the feedback at hand (status only; not written). */
  live?: { decision: string; reason: string; judgements: Judgement[]; sites: SiteView[] };
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

/** `shadow step` or `step <n>`, as logs and status name the current step. */
export function stepName(r: RolloutState): string {
  return inShadow(r) ? 'shadow step' : `step ${r.step}`;
}

function outcomeOf(r: RolloutState): { outcome: Outcome; exitCode: number } {
  switch (r.status) {
    case 'promoted':
      return { outcome: 'promoted', exitCode: ExitCode.Ok };
    case 'aborted':
      return { outcome: 'rolled-back', exitCode: ExitCode.RolledBack };
    case 'undone':
      return { outcome: 'undone', exitCode: ExitCode.Ok };
    case 'paused':
      return r.pauseReason === 'timeout'
        ? { outcome: 'timeout', exitCode: ExitCode.Timeout }
        : { outcome: 'paused', exitCode: ExitCode.Paused };
    case 'running':
      return { outcome: 'running', exitCode: ExitCode.Ok };
  }
}

export function viewOf(r: RolloutState): RolloutView {
  const waves: WaveView[] = r.waves.map((size, i) => ({
    step: i + 1,
    size,
    sites: r.sites.slice(i === 0 ? 0 : (r.waves[i - 1] ?? 0), size),
    state:
      i + 1 < r.step || (i + 1 === r.step && r.status === 'promoted')
        ? 'done'
        : i + 1 === r.step
          ? 'current'
          : 'pending',
  }));
  const previous: Record<string, string | null> = {};
  for (const [s, p] of Object.entries(r.previous)) previous[s] = p?.ref ?? null;
  return {
    id: r.id,
    status: r.status,
    candidate: r.candidate.ref,
    slot: r.slot,
    identity: r.identity,
    selector: r.selector,
    step: r.step,
    ...(r.shadowSites
      ? {
          shadow: {
            sites: r.shadowSites,
            state: inShadow(r) ? (r.status === 'aborted' ? 'failed' : 'current') : 'done',
          } as const,
        }
      : {}),
    waves,
    canary: r.canary,
    startedAt: r.startedAt,
    endedAt: r.endedAt,
    reason: r.reason,
    pauseReason: r.pauseReason,
    previous,
  };
}

function summarize(op: FleetOp): string {
  switch (op.op) {
    case 'rollout.start':
      return `start ${op.candidate.ref} on ${op.sites.length} sites (${op.selector || 'all sites'}), waves ${op.waves.join('/')}`;
    case 'rollout.step':
      return `${op.shadow ? 'shadow step' : `step ${op.step}`}: ${op.sites.join(', ')} (${op.reason})`;
    case 'rollout.judgement':
      return `judgement ${op.shadow ? 'shadow step' : `step ${op.step}`}: ${op.decision}: ${op.reason}`;
    case 'rollout.pause':
      return `pause (${op.reason}): ${op.message}`;
    case 'rollout.resume':
      return `resume by ${op.by}`;
    case 'rollout.promote':
      return `promote ${op.sites.length ? op.sites.join(', ') : '(no more sites)'}: ${op.reason}`;
    case 'rollout.abort':
      return `abort, reverted ${op.sites.join(', ') || '(none)'}: ${op.reason}`;
    case 'rollout.undo':
      return `undo, reverted ${op.sites.join(', ') || '(none)'}: ${op.reason}`;
    default:
      return op.op;
  }
}

function checkChainedTo(entries: FleetEntry[], finalDigest: string | null): void {
  const broken = entries.findIndex((e, i) => i > 0 && e.prev !== entryDigest(entries[i - 1] as FleetEntry));
  const last = entries.at(-1);
  if (broken >= 0 || (last && entryDigest(last) !== finalDigest)) {
    throw new VerificationError('the fleet log does not chain to the verified fleet state', {
      code: 'E_CHAIN',
      details: { seq: broken >= 0 ? (entries[broken]?.seq ?? null) : (last?.seq ?? null) },
    });
  }
}

/** Every rollout op of `r` in the log, with the judgements in full. */
async function historyOf(
  store: Store,
  trust: TrustRoot,
  r: RolloutState,
  to: { seq: number; entryDigest: string | null },
): Promise<{ events: RolloutEvent[]; judgements: JudgementRecord[] }> {
  // Earlier (unrevoked) fleet keys may have signed old entries: accepted when chained to the
  // verified fleet at `to` (prev links, and the last entry's digest).
  const entries = await readEntries(store, fleetKeys(trust), r.startSeq, to.seq, 8, { allowPast: true });
  checkChainedTo(
    entries.map((e) => e.entry),
    to.entryDigest,
  );
  const events: RolloutEvent[] = [];
  const judgements: JudgementRecord[] = [];
  for (const { entry } of entries) {
    for (const op of entry.ops) {
      if (!op.op.startsWith('rollout.') || (op as { rollout?: string }).rollout !== r.id) continue;
      events.push({ seq: entry.seq, time: entry.time, op: op.op, summary: summarize(op) });
      if (op.op === 'rollout.judgement') {
        judgements.push({
          seq: entry.seq,
          time: entry.time,
          step: op.step,
          ...(op.shadow ? { shadow: true } : {}),
          decision: op.decision,
          reason: op.reason,
          windows: op.windows,
          judgements: op.judgements as unknown as Judgement[],
        });
      }
    }
  }
  return { events, judgements };
}

async function report(
  store: Store,
  trust: TrustRoot,
  state: FleetState,
  at: { seq: number; entryDigest: string | null },
  r: RolloutState,
  extra: { reason?: string; timedOut?: boolean } = {},
): Promise<RolloutReport> {
  const { events, judgements } = await historyOf(store, trust, r, at);
  let { outcome, exitCode } = outcomeOf(r);
  if (extra.timedOut && r.status === 'running') {
    outcome = 'timeout';
    exitCode = ExitCode.Timeout;
  }
  const last = judgements.at(-1);
  const reason =
    extra.reason ??
    r.reason ??
    (r.status === 'running'
      ? last
        ? `${stepName(r)}: ${last.reason}`
        : `${stepName(r)} is collecting feedback`
      : r.status);
  return {
    registry: store.url,
    fleetSeq: at.seq,
    rollout: viewOf(r),
    outcome,
    exitCode,
    reason,
    judgements,
    events,
  };
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
    if (!opts.wait) return report(store, trust, res.fleet.state, res.fleet, r);
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
  return report(store, trust, state, at, rollout, {
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
    return report(store, trust, res.fleet.state, res.fleet, r);
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
    const out = await report(store, trust, state, latest.applied, r);
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
            : r.slot === 'adapters'
              ? (cur.assignments.adapters.find((a) => a.ref.startsWith(`${r.identity}@`))?.ref ?? null)
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
