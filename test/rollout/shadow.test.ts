/**
 * Shadow steps against a real registry with real signed feedback: the spec grammar, the start
 * entry (shadow slot assigned, nothing served changes), a good shadow passing into the first wave
 * (shadow unassigned and the candidate assigned in one entry) and on to promotion, a bad shadow
 * rolled back with exit 5 and the shadow unassigned while no site ever served the candidate, and
 * the shadow evidence itself (shadow counters against the same windows' served drafts).
 */
import { describe, expect, it } from 'vitest';
import { readEntries } from '../../src/fleet/read.js';
import { fleetKeys } from '../../src/fleet/signed.js';
import type { RolloutState } from '../../src/fleet/rollout-ops.js';
import type { FleetOp } from '../../src/fleet/ops.js';
import { startOps } from '../../src/rollout/actions.js';
import { appendEntry } from '../../src/rollout/append.js';
import { tick, type ControllerDeps } from '../../src/rollout/controller.js';
import { FeedbackCache } from '../../src/rollout/evidence.js';
import { judgeStep } from '../../src/rollout/judge/index.js';
import { rolloutStatus } from '../../src/rollout/service.js';
import { shadowEvidence } from '../../src/rollout/shadow.js';
import { normalizeSpec, parseSpecText, type SpecOverrides } from '../../src/rollout/spec.js';
import { lintSpecText } from '../../src/rollout/lint.js';
import { forEachBackend } from '../helpers/stores.js';
import { REFS, rolloutWorld, type RolloutWorld, type Traffic } from './world.js';

async function start(w: RolloutWorld, id: string, over: SpecOverrides & { candidate: string }) {
  const spec = normalizeSpec({}, { steps: 'shadow,25,50,100', interval: '10ms', ...over });
  const candidate = { ref: over.candidate, manifestDigest: w.digests[over.candidate] as string };
  const res = await appendEntry(w.writer(), (fleet) => ({
    ops: startOps(fleet.state, { id, spec, candidate, by: 'test' }).ops,
  }));
  return res.fleet.state.rollouts?.[id] as RolloutState;
}

function deps(w: RolloutWorld): ControllerDeps {
  return { ...w.writer(), judge: judgeStep, by: 'controller:test', cache: new FeedbackCache() };
}

async function drive(
  w: RolloutWorld,
  id: string,
  traffic: (site: string, r: RolloutState) => Traffic | undefined,
  max = 40,
) {
  const d = deps(w);
  let r = (await w.state()).state.rollouts?.[id] as RolloutState;
  const seen: RolloutState[] = [r];
  for (let i = 0; i < max && r.status === 'running'; i++) {
    for (const s of r.sites) {
      const t = traffic(s, r);
      if (t) await w.feedback(s, t);
    }
    r = (await tick(d, id)).rollout;
    seen.push(r);
  }
  return { r, seen };
}

async function entries(w: RolloutWorld) {
  const { seq } = await w.state();
  return (await readEntries(w.store, fleetKeys(w.t.trust), 1, seq)).map(({ entry }) => entry);
}

async function events(w: RolloutWorld, id: string) {
  return (await entries(w)).flatMap((e) =>
    e.ops.flatMap((op) =>
      'rollout' in op && op.rollout === id
        ? [`${op.op.replace('rollout.', '')}${'shadow' in op && op.shadow ? '(shadow)' : ''}`]
        : [],
    ),
  );
}

type State = Awaited<ReturnType<RolloutWorld['state']>>['state'];
const served = (state: State, site: string) =>
  state.sites[site]?.assignments.adapters.find((a) => a.ref.startsWith('adapter/support@'))?.ref;
const shadowOf = (state: State, site: string) => state.sites[site]?.assignments.shadow?.map((a) => a.ref);

describe('shadow step spec', () => {
  it('parses `shadow` first, the long form and --shadow; refuses it elsewhere', () => {
    const short = normalizeSpec(parseSpecText('steps: [shadow, 10%, all]\n', 'r.yaml').value, {
      candidate: REFS.good,
    });
    expect(short.shadow).toEqual({ size: null, pauseMs: 0, timeoutMs: 30 * 60_000 });
    expect(short.steps).toHaveLength(2);
    const long = normalizeSpec(
      parseSpecText('steps:\n  - shadow: 25%\n    timeout: 5m\n  - 50%\n  - all\n', 'r.yaml').value,
      { candidate: REFS.good },
    );
    expect(long.shadow).toEqual({ size: { share: 25 }, pauseMs: 0, timeoutMs: 5 * 60_000 });
    expect(normalizeSpec({}, { candidate: REFS.good, shadow: true }).shadow?.size).toBeNull();
    expect(normalizeSpec({}, { candidate: REFS.good, steps: 'shadow,10,100' }).steps).toHaveLength(2);
    expect(normalizeSpec({}, { candidate: REFS.good }).shadow).toBeUndefined();
    expect(() => parseSpecText('steps: [10%, shadow, all]\n', 'r.yaml')).toThrow(/first step/);
    expect(
      lintSpecText('steps: [10%, shadow, all]\n', 'r.yaml')
        .map((p) => p.message)
        .join(),
    ).toMatch(/shadow step can only be the first/);
    expect(lintSpecText('steps: [shadow, 10%, all]\n', 'r.yaml')).toEqual([]);
  });
});

forEachBackend(
  (mk) => {
    it('a good shadow passes, then the first wave serves the candidate, then promotion', async () => {
      const w = await rolloutWorld(await mk());
      const r0 = await start(w, 'sh-good', { candidate: REFS.good });
      expect(r0.step).toBe(0);
      expect(r0.phase).toBe('shadow');
      expect(r0.canary).toEqual([]);
      expect(r0.shadowSites).toHaveLength(1);
      const shadowSite = r0.shadowSites?.[0] as string;
      // The start entry: start, the shadow step and the shadow-slot assignment; nothing served moved.
      const first = (await entries(w)).at(-1)!;
      expect(first.ops.map((o: FleetOp) => `${o.op}${o.op === 'assign' ? `:${o.slot}` : ''}`)).toEqual([
        'rollout.start',
        'rollout.step',
        'assign:shadow',
      ]);
      let { state } = await w.state();
      expect(shadowOf(state, shadowSite)).toEqual([REFS.good]);
      for (const s of w.sites) expect(served(state, s)).toBe(REFS.base);

      const { r, seen } = await drive(w, 'sh-good', () => ({
        acceptance: 0.7,
        shadow: { acceptance: 0.71 },
      }));
      expect(r.status).toBe('promoted');
      expect(r.phase).toBeUndefined();
      ({ state } = await w.state());
      for (const s of w.sites) {
        expect(served(state, s)).toBe(REFS.good);
        expect(shadowOf(state, s)).toBeUndefined();
      }
      // The wave after the shadow: step 1 with the first wave, the shadow gone in the same entry.
      const step1 = seen.find((x) => x.step === 1) as RolloutState;
      expect(step1.phase).toBeUndefined();
      expect(step1.canary).toEqual([shadowSite]);
      const all = await entries(w);
      const step1Entry = all.find((e) => e.ops.some((o) => o.op === 'rollout.step' && o.step === 1))!;
      expect(step1Entry.ops.map((o: FleetOp) => `${o.op}${'slot' in o ? `:${o.slot}` : ''}`)).toEqual([
        'rollout.judgement',
        'rollout.step',
        'unassign:shadow',
        'assign:adapters',
      ]);
      const ev = await events(w, 'sh-good');
      expect(ev.slice(0, 4)).toEqual(['start', 'step(shadow)', 'judgement(shadow)', 'step']);
      expect(ev.at(-1)).toBe('promote');
    });

    it('a bad shadow is rolled back (exit 5) with the shadow unassigned; no site served it', async () => {
      const w = await rolloutWorld(await mk());
      const r0 = await start(w, 'sh-bad', { candidate: REFS.bad });
      const { r, seen } = await drive(w, 'sh-bad', () => ({ acceptance: 0.7, shadow: { acceptance: 0.45 } }));
      expect(r.status).toBe('aborted');
      expect(r.reason).toMatch(/^rolled back in shadow: no user saw it — .*acceptance/);
      expect(seen.every((x) => x.canary.length === 0)).toBe(true);
      const { state } = await w.state();
      for (const s of w.sites) {
        expect(served(state, s)).toBe(REFS.base);
        expect(shadowOf(state, s)).toBeUndefined();
      }
      expect(await events(w, 'sh-bad')).toEqual(['start', 'step(shadow)', 'judgement(shadow)', 'abort']);
      const abortEntry = (await entries(w)).at(-1)!;
      expect(abortEntry.ops.map((o: FleetOp) => `${o.op}${'slot' in o ? `:${o.slot}` : ''}`)).toEqual([
        'rollout.judgement',
        'rollout.abort',
        'unassign:shadow',
      ]);
      expect(r0.shadowSites).toHaveLength(1);
      const rep = await rolloutStatus({ registryUrl: w.store.url, trustPath: w.trustPath, id: 'sh-bad' });
      expect(rep.exitCode).toBe(5);
      expect(rep.outcome).toBe('rolled-back');
      expect(rep.reason).toMatch(/^rolled back in shadow: no user saw it/);
      expect(rep.rollout.shadow?.state).toBe('failed');
      expect(rep.judgements.at(-1)?.shadow).toBe(true);
      expect(rep.events.map((e) => e.summary)[1]).toMatch(/^shadow step: /);
    });
  },
  ['fs'],
);

describe('shadow evidence', () => {
  forEachBackend(
    (mk) => {
      it('compares shadow counters with the same windows served drafts, only after the shadow step', async () => {
        const w = await rolloutWorld(await mk());
        // A window before the rollout: no shadow refs, never counts.
        await w.feedback('store-001', { acceptance: 0.7 });
        const r = await start(w, 'sh-ev', { candidate: REFS.good });
        const site = r.shadowSites?.[0] as string;
        const reports = [
          await w.feedback(site, { acceptance: 0.6, shadow: { acceptance: 0.8, draftTokens: 1000 } }),
          await w.feedback(site, {
            acceptance: 0.6,
            shadow: { acceptance: 0.8, draftTokens: 1000, errors: 2 },
          }),
        ];
        const { state } = await w.state();
        const ev = shadowEvidence(state, r, (s) => (s === site ? reports : []));
        expect(ev.sites.canary).toEqual([site]);
        expect(ev.canary).toHaveLength(1);
        expect(ev.canary[0]?.counters.draftTokens).toBe(2000);
        expect(ev.canary[0]?.counters.acceptedTokens).toBe(1600);
        expect(ev.canary[0]?.counters.errors).toBe(2);
        expect(ev.baseline[0]?.counters.draftTokens).toBe(2 * 400 * 30);
        expect(ev.baseline[0]?.counters.acceptedTokens).toBe(2 * Math.round(400 * 30 * 0.6));
        expect(ev.windows).toEqual({ canary: 2, baseline: 2 });
        // Another site's windows (no shadow in its refs) never count.
        const other = w.sites.find((s) => s !== site) as string;
        const foreign = [await w.feedback(other, { acceptance: 0.9 })];
        expect(shadowEvidence(state, r, (s) => (s === other ? foreign : [])).canary).toHaveLength(0);
      });
    },
    ['fs'],
  );
});
