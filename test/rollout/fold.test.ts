/**
 * Pure parts of rollouts: the reducer folding rollout ops (state transitions, validation), the op
 * builders (start, step, promote, abort, undo carry the assignment changes in the same entry), the
 * holds that keep `site plan` from undoing a rollout, wave sizes, selectors and `nextTransition`.
 */
import { describe, expect, it } from 'vitest';
import { VerificationError, UserError, ConflictError } from '../../src/foundation/errors.js';
import { applyEntry, buildEntry, genesis, type AppliedFleet } from '../../src/fleet/entry.js';
import type { FleetOp } from '../../src/fleet/ops.js';
import { planFleet } from '../../src/fleet/plan.js';
import { rolloutReducer, type RolloutState } from '../../src/fleet/rollout-ops.js';
import type { DeclaredSite } from '../../src/fleet/site-schema.js';
import {
  abortOps,
  advanceOps,
  nextTransition,
  decisionOps,
  promoteOps,
  startOps,
  undoOps,
  waveOrder,
} from '../../src/rollout/actions.js';
import type { Judgement, StepJudgement } from '../../src/rollout/judge/types.js';
import { matches, parseSelector } from '../../src/rollout/selector.js';
import { normalizeSpec, waveSizes } from '../../src/rollout/spec.js';
import { at, declaration, fakeDigest, resolvedFrom } from '../fleet/fixtures.js';

const BASE = { ref: 'adapter/support@1.0.0', manifestDigest: fakeDigest('a100') };
const CAND = { ref: 'adapter/support@1.1.0', manifestDigest: fakeDigest('a110') };
const MODEL = { ref: 'model/draft@1.0.0', manifestDigest: fakeDigest('m100') };

/** A fleet of `n` sites on model + adapter 1.0.0 (site 4 has no adapter). */
function fleet(n = 6): AppliedFleet {
  const ops: FleetOp[] = [];
  const names = Array.from({ length: n }, (_, i) => `s${i + 1}`);
  for (const [i, name] of names.entries()) {
    ops.push({ op: 'site.put', site: declaration(name, { tier: i < n - 1 ? 'branch' : 'hq' }) });
  }
  ops.push({ op: 'assign', sites: names, slot: 'model', ...MODEL });
  ops.push({ op: 'assign', sites: names.filter((s) => s !== 's4'), slot: 'adapters', ...BASE });
  return buildEntry(genesis(), ops, at(0)).next;
}

function write(f: AppliedFleet, ops: FleetOp[], minute: number): AppliedFleet {
  const { entry, next } = buildEntry(f, ops, at(minute));
  // Every reader folds the same entry to the same state (the digest is checked).
  expect(applyEntry(f, entry).state).toEqual(next.state);
  return next;
}

const spec = (over: Parameters<typeof normalizeSpec>[1] = {}) =>
  normalizeSpec({}, { candidate: CAND.ref, sites: 'tier=branch', steps: '20,60,100', ...over });

function rollout(f: AppliedFleet, id = 'r1'): RolloutState {
  return f.state.rollouts?.[id] as RolloutState;
}

function started(): AppliedFleet {
  const f = fleet();
  return write(f, startOps(f.state, { id: 'r1', spec: spec(), candidate: CAND, by: 't' }).ops, 1);
}

function judgement(verdict: Judgement['verdict'], metric: Judgement['metric'] = 'acceptance'): Judgement {
  return {
    metric,
    verdict,
    dryRun: false,
    value: { canary: 0.7, baseline: 0.7 },
    boundary: 100,
    evidence: { fail: 1, pass: 1 },
    samples: { canary: 1, baseline: 1 },
    sites: { canary: [], baseline: [] },
    reason: `${metric} ${verdict}`,
  };
}
const judged = (decision: StepJudgement['decision'], ...js: Judgement[]): StepJudgement => ({
  decision,
  judgements: js,
});
const healthy = {
  canary: { requests: 100, unhealthy: 0, speculative: 90 },
  baseline: { requests: 100, unhealthy: 0, speculative: 90 },
};

describe('rollout ops and the reducer', () => {
  it('start selects by label, orders waves and assigns wave 1 in the same entry', () => {
    const f = started();
    const r = rollout(f);
    expect(r.status).toBe('running');
    expect([...r.sites].sort()).toEqual(['s1', 's2', 's3', 's4', 's5']);
    expect(r.sites).toEqual(waveOrder('r1', ['s1', 's2', 's3', 's4', 's5']));
    expect(r.waves).toEqual([1, 3, 5]);
    expect(r.step).toBe(1);
    expect(r.canary).toEqual([r.sites[0]]);
    expect(r.previous.s4).toBeNull();
    expect(r.previous.s1).toEqual(BASE);
    expect(r.assignedSeq[r.sites[0] as string]).toBe(f.seq);
    const first = r.sites[0] as string;
    expect(f.state.sites[first]?.assignments.adapters).toEqual([CAND]);
    for (const s of r.sites.slice(1)) expect(f.state.sites[s]?.assignments.adapters).not.toContainEqual(CAND);
    expect(f.state.sites.s6?.assignments.adapters).toEqual([BASE]);
  });

  it('steps, promotes, and undo re-assigns the previous refs (removing the slot where there was none)', () => {
    let f = started();
    f = write(f, advanceOps(f.state, rollout(f), 'ok', 't'), 2);
    expect(rollout(f).step).toBe(2);
    expect(rollout(f).canary).toHaveLength(3);
    expect(rollout(f).stepSeq).toBe(f.seq);
    f = write(f, advanceOps(f.state, rollout(f), 'ok', 't'), 3);
    expect(rollout(f).status).toBe('promoted');
    for (const s of rollout(f).sites) expect(f.state.sites[s]?.assignments.adapters).toEqual([CAND]);
    f = write(f, undoOps(f.state, rollout(f), 'regret', 't'), 4);
    expect(rollout(f).status).toBe('undone');
    for (const s of ['s1', 's2', 's3', 's5']) expect(f.state.sites[s]?.assignments.adapters).toEqual([BASE]);
    expect(f.state.sites.s4?.assignments.adapters).toEqual([]);
    expect(f.state.sites.s4?.assignments.model).toEqual(MODEL);
  });

  it('abort puts only the canary sites back', () => {
    let f = started();
    f = write(f, advanceOps(f.state, rollout(f), 'ok', 't'), 2);
    const canary = rollout(f).canary;
    f = write(f, abortOps(f.state, rollout(f), 'bad', 't'), 3);
    const r = rollout(f);
    expect(r.status).toBe('aborted');
    expect(r.canary).toEqual([]);
    for (const s of canary) {
      expect(f.state.sites[s]?.assignments.adapters).toEqual(s === 's4' ? [] : [BASE]);
    }
  });

  it('promote --full assigns every remaining site at once', () => {
    let f = started();
    f = write(f, promoteOps(f.state, rollout(f), 'by hand', 't'), 2);
    expect(rollout(f).status).toBe('promoted');
    for (const s of rollout(f).sites) expect(f.state.sites[s]?.assignments.adapters).toEqual([CAND]);
  });

  it('refuses ops that do not fit the state', () => {
    const f = started();
    const r = rollout(f);
    const refused = (ops: FleetOp[], re: RegExp) => {
      try {
        buildEntry(f, ops, at(9));
        expect.unreachable();
      } catch (err) {
        expect(err).toBeInstanceOf(VerificationError);
        expect((err as Error).message).toMatch(re);
      }
    };
    refused([{ op: 'rollout.step', rollout: 'r1', step: 3, sites: ['s1'], reason: 'x' }], /does not follow/);
    refused([{ op: 'rollout.resume', rollout: 'r1', by: 't' }], /not paused/);
    refused([{ op: 'rollout.undo', rollout: 'r1', sites: [], reason: 'x', by: 't' }], /only a promoted/);
    refused([{ op: 'rollout.abort', rollout: 'nope', sites: [], reason: 'x', by: 't' }], /never started/);
    refused(
      [{ op: 'rollout.pause', rollout: 'r1', reason: 'sleepy', message: '', by: 't' } as unknown as FleetOp],
      /reason/,
    );
    const again = startOps(fleet().state, { id: 'r2', spec: spec(), candidate: CAND, by: 't' })
      .ops[0] as FleetOp;
    refused([{ ...again, rollout: 'r1' } as FleetOp], /already exists/);
    expect(r.status).toBe('running');
  });

  it('pause and resume; the reducer is pure', () => {
    let f = started();
    const before = structuredClone(f.state.rollouts);
    f = write(f, [{ op: 'rollout.pause', rollout: 'r1', reason: 'manual', message: 'freeze', by: 't' }], 5);
    expect(rollout(f).status).toBe('paused');
    f = write(f, [{ op: 'rollout.resume', rollout: 'r1', by: 't' }], 9);
    expect(rollout(f).status).toBe('running');
    expect(rollout(f).clockFrom).toBe(at(9).toISOString());
    const r0 = before as Record<string, RolloutState>;
    rolloutReducer(
      r0,
      { op: 'rollout.pause', rollout: 'r1', reason: 'manual', message: '', by: 't' },
      { seq: 99, time: at(10).toISOString() },
    );
    expect(r0).toEqual(before);
  });

  it('refuses a second rollout of the same adapter on overlapping sites, and too small selections', () => {
    const f = started();
    expect(() => startOps(f.state, { id: 'r2', spec: spec(), candidate: CAND, by: 't' })).toThrow(
      ConflictError,
    );
    const g = fleet();
    expect(() =>
      startOps(g.state, { id: 'x', spec: spec({ sites: 'tier=hq' }), candidate: CAND, by: 't' }),
    ).toThrow(/matches 1 site/);
    expect(() =>
      startOps(g.state, { id: 'x', spec: spec({ steps: '100' }), candidate: CAND, by: 't' }),
    ).toThrow(/no baseline/);
  });
});

describe('site plan and rollouts', () => {
  const declared = (f: AppliedFleet): DeclaredSite[] =>
    Object.values(f.state.sites).map((s) => ({
      file: `sites/${s.declaration.name}.yaml`,
      declaration: s.declaration,
      // sites/*.yaml still says what it said before the rollout.
      assignments: {
        model: MODEL.ref,
        adapters: s.declaration.name === 's4' ? [] : [BASE.ref],
      },
      lineOf: () => 1,
    })) as unknown as DeclaredSite[];
  const resolve = (ref: string) => Promise.resolve(resolvedFrom([BASE, CAND, MODEL], ref));

  it('does not undo what an active rollout assigned, and says so', async () => {
    const f = started();
    const plan = await planFleet(declared(f), f.state, resolve);
    expect(plan.ops).toEqual([]);
    expect(plan.held?.map((h) => h.site)).toEqual([rollout(f).canary[0]]);
    expect(plan.held?.[0]?.rollout).toBe('r1');
  });

  it('after a promotion keeps the candidate while git still declares the old ref; any other change wins', async () => {
    let f = started();
    f = write(f, promoteOps(f.state, rollout(f), 'ok', 't'), 2);
    const plan = await planFleet(declared(f), f.state, resolve);
    expect(plan.ops).toEqual([]);
    const desired = declared(f).map((d) =>
      d.declaration.name === 's1' ? { ...d, assignments: { model: MODEL.ref, adapters: [] } } : d,
    );
    const plan2 = await planFleet(desired as DeclaredSite[], f.state, resolve);
    expect(plan2.ops).toEqual([{ op: 'unassign', sites: ['s1'], slot: 'adapters', name: 'support' }]);
  });

  it('after an abort holds nothing', async () => {
    let f = started();
    f = write(f, abortOps(f.state, rollout(f), 'bad', 't'), 2);
    const plan = await planFleet(declared(f), f.state, resolve);
    expect(plan.ops).toEqual([]);
    expect(plan.held).toBeUndefined();
  });
});

describe('nextTransition', () => {
  const now = (minutes: number) => at(minutes);

  it('rolls back on a failed metric, promotes on all passed, continues otherwise', () => {
    const r = rollout(started());
    expect(nextTransition(r, judged('rollback', judgement('fail')), healthy, now(2)).decision).toBe(
      'rollback',
    );
    expect(nextTransition(r, judged('promote', judgement('pass')), healthy, now(2)).decision).toBe('promote');
    expect(nextTransition(r, judged('continue', judgement('inconclusive')), healthy, now(2)).decision).toBe(
      'continue',
    );
  });

  it('inconclusive past the step timeout: pause by default, or what onInconclusive says', () => {
    const f = fleet();
    const mk = (on?: 'rollback' | 'promote') =>
      rollout(
        write(
          f,
          startOps(f.state, {
            id: 'r1',
            spec: spec({ stepTimeout: '10m', ...(on ? { onInconclusive: on } : {}) }),
            candidate: CAND,
            by: 't',
          }).ops,
          1,
        ),
      );
    const j = judged('continue', judgement('inconclusive'));
    expect(nextTransition(mk(), j, healthy, now(5)).decision).toBe('continue');
    const d = nextTransition(mk(), j, healthy, now(12));
    expect(d).toMatchObject({ decision: 'pause', pauseKind: 'inconclusive' });
    expect(nextTransition(mk('rollback'), j, healthy, now(12)).decision).toBe('rollback');
    expect(nextTransition(mk('promote'), j, healthy, now(12)).decision).toBe('promote');
  });

  it('the abort limit rolls back, unless the baseline fails as much (environment: pause)', () => {
    const r = rollout(started());
    const j = judged('continue', judgement('inconclusive'));
    const sick = { requests: 100, unhealthy: 80, speculative: 90 };
    expect(nextTransition(r, j, { canary: sick, baseline: healthy.baseline }, now(2)).decision).toBe(
      'rollback',
    );
    expect(nextTransition(r, j, { canary: sick, baseline: sick }, now(2))).toMatchObject({
      decision: 'pause',
      pauseKind: 'environment',
    });
    // Too few requests: the limit does not apply yet.
    expect(
      nextTransition(
        r,
        j,
        { canary: { requests: 10, unhealthy: 10, speculative: 0 }, baseline: healthy.baseline },
        now(2),
      ).decision,
    ).toBe('continue');
  });

  it('rolls back when the router stops speculating on canary sites (nothing left to judge)', () => {
    const r = rollout(started());
    const j = judged('continue', judgement('inconclusive'));
    const noDrafts = { requests: 100, unhealthy: 0, speculative: 0 };
    const d = nextTransition(r, j, { canary: noDrafts, baseline: healthy.baseline }, now(2));
    expect(d.decision).toBe('rollback');
    expect(d.reason).toMatch(/served 0\.0% of 100 requests speculatively against 90\.0%/);
    const fewer = { requests: 100, unhealthy: 0, speculative: 60 };
    expect(nextTransition(r, j, { canary: fewer, baseline: healthy.baseline }, now(2)).decision).toBe(
      'continue',
    );
  });

  it('each transition carries a typed reason code', () => {
    const r = rollout(started());
    const code = (j: StepJudgement, health = healthy) => nextTransition(r, j, health, now(2)).code;
    const inconclusive = judged('continue', judgement('inconclusive'));
    const sick = { requests: 100, unhealthy: 80, speculative: 90 };
    expect(code(judged('rollback', judgement('fail')))).toBe('MetricFailed');
    expect(code(judged('promote', judgement('pass')))).toBe('MetricsPassed');
    expect(code(inconclusive)).toBe('AwaitingEvidence');
    expect(code(inconclusive, { canary: sick, baseline: healthy.baseline })).toBe('AbortLimitErrorRate');
    expect(code(inconclusive, { canary: sick, baseline: sick })).toBe('EnvironmentUnhealthy');
    const noDrafts = { requests: 100, unhealthy: 0, speculative: 0 };
    expect(code(inconclusive, { canary: noDrafts, baseline: healthy.baseline })).toBe('SpeculativeDrop');
  });

  it('logs a continue only when a verdict or the decision changes', () => {
    let f = started();
    const r = rollout(f);
    const j = judged('continue', judgement('inconclusive'), judgement('pass', 'ttft'));
    const d = nextTransition(r, j, healthy, now(2));
    const ops = decisionOps(f.state, r, j, d, { canary: 1, baseline: 2 }, 't');
    expect(ops.map((o) => o.op)).toEqual(['rollout.judgement']);
    f = write(f, ops, 2);
    expect(decisionOps(f.state, rollout(f), j, d, { canary: 2, baseline: 4 }, 't')).toEqual([]);
    const j2 = judged('continue', judgement('inconclusive'), judgement('inconclusive', 'ttft'));
    expect(decisionOps(f.state, rollout(f), j2, d, { canary: 2, baseline: 4 }, 't')).toHaveLength(1);
  });
});

describe('waves and selectors', () => {
  it('rounds waves up, keeps them growing and ends at every site', () => {
    const steps = (text: string) => normalizeSpec({}, { candidate: CAND.ref, steps: text }).steps;
    expect(waveSizes(steps('10,50,100'), 3).sizes).toEqual([1, 2, 3]);
    expect(waveSizes(steps('10,50,100'), 20).sizes).toEqual([2, 10, 20]);
    expect(waveSizes(steps('1,2,3'), 10).sizes).toEqual([1, 10]);
    expect(waveSizes(steps('1 site,2 sites'), 10).sizes).toEqual([1, 2, 10]);
    expect(waveSizes(steps('10,50'), 10).sizes).toEqual([1, 5, 10]);
    expect(() => waveSizes(steps('all'), 4)).toThrow(UserError);
  });

  it('parses label selectors', () => {
    const sel = parseSelector('tier=branch, region in (eu|uk), !legacy, gpu, name!=s9');
    expect(matches(sel, 's1', { tier: 'branch', region: 'eu', gpu: 'a10' })).toBe(true);
    expect(matches(sel, 's1', { tier: 'branch', region: 'us', gpu: 'a10' })).toBe(false);
    expect(matches(sel, 's1', { tier: 'branch', region: 'uk', gpu: 'a10', legacy: 'y' })).toBe(false);
    expect(matches(sel, 's9', { tier: 'branch', region: 'uk', gpu: 'a10' })).toBe(false);
    expect(parseSelector('')).toEqual([]);
    expect(() => parseSelector('tier=')).toThrow(/cannot read "tier="/);
  });

  it("takes kubectl's set-based selectors: in and notin with comma lists", () => {
    const sel = parseSelector('region in (eu,us), tier notin (lab, hq),gpu,!legacy');
    expect(sel).toEqual([
      { key: 'region', op: 'in', values: ['eu', 'us'] },
      { key: 'tier', op: 'notin', values: ['lab', 'hq'] },
      { key: 'gpu', op: 'exists' },
      { key: 'legacy', op: 'absent' },
    ]);
    expect(matches(sel, 's1', { region: 'us', tier: 'branch', gpu: 'a10' })).toBe(true);
    expect(matches(sel, 's1', { region: 'us', gpu: 'a10' })).toBe(true); // notin holds for an absent label
    expect(matches(sel, 's1', { region: 'uk', gpu: 'a10' })).toBe(false);
    expect(matches(sel, 's1', { region: 'eu', tier: 'hq', gpu: 'a10' })).toBe(false);
    expect(matches(sel, 's1', { region: 'eu', gpu: 'a10', legacy: 'y' })).toBe(false);
    expect(() => parseSelector('region in (eu,)x')).toThrow(/cannot read/);
    expect(() => parseSelector('region notin ()')).toThrow(/cannot read/);
  });
});
