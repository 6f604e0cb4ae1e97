/**
 * The `RolloutReport` every `rollout *` command prints and `--json` emits (docs/rollouts.md, docs/formats.md "Feedback reports"): the rollout's view (waves, sites, canary, shadow step), every rollout event and
 * judgement the fleet log holds for it (read back and checked to chain to the verified state), the
 * outcome and its exit code (0 promoted, 5 rolled back, 6 paused or inconclusive, 7 timeout).
 */
import { ExitCode, VerificationError } from '../foundation/errors.js';
import { entryDigest, type FleetEntry } from '../fleet/entry.js';
import type { FleetOp } from '../fleet/ops.js';
import { readEntries } from '../fleet/read.js';
import type { RolloutState } from '../fleet/rollout-ops.js';
import { fleetKeys } from '../fleet/signed.js';
import type { FleetState } from '../fleet/state.js';
import type { Store } from '../registry/store.js';
import type { TrustRoot } from '../registry/trust.js';
import type { Judgement } from './judge/types.js';
import { inShadow } from './shadow.js';

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

export async function rolloutReport(
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
