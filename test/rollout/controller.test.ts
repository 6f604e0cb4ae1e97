/**
 * The controller against a real registry (fs and S3) with real signed feedback: a good canary is
 * promoted wave by wave, a bad one is rolled back with the previous refs re-assigned, low traffic
 * pauses (never rolls back), a verifier outage seen by both arms pauses while one seen only by the
 * canary rolls back, two controllers never both act, and feedback signed by the wrong key is
 * ignored. The event sequence of the log is asserted for each.
 */
import { describe, expect, it } from 'vitest';
import { readEntries } from '../../src/fleet/read.js';
import { fleetKeys } from '../../src/fleet/signed.js';
import type { RolloutState } from '../../src/fleet/rollout-ops.js';
import { generateKeyPair } from '../../src/registry/keys.js';
import { startOps } from '../../src/rollout/actions.js';
import { appendEntry } from '../../src/rollout/append.js';
import { tick, type ControllerDeps } from '../../src/rollout/controller.js';
import { FeedbackCache } from '../../src/rollout/evidence.js';
import { judgeStep } from '../../src/rollout/judge/index.js';
import { normalizeSpec, type SpecOverrides } from '../../src/rollout/spec.js';
import { forEachBackend } from '../helpers/stores.js';
import { REFS, rolloutWorld, type RolloutWorld, type Traffic } from './world.js';

async function start(w: RolloutWorld, id: string, over: SpecOverrides & { candidate: string }, file = {}) {
  const spec = normalizeSpec(file, { steps: '25,50,100', interval: '10ms', ...over });
  const candidate = { ref: over.candidate, manifestDigest: w.digests[over.candidate] as string };
  const res = await appendEntry(w.writer(), (fleet) => ({
    ops: startOps(fleet.state, { id, spec, candidate, by: 'test' }).ops,
  }));
  return res.fleet.state.rollouts?.[id] as RolloutState;
}

function deps(w: RolloutWorld, clock = w.clock): ControllerDeps {
  return { ...w.writer(clock), judge: judgeStep, by: 'controller:test', cache: new FeedbackCache() };
}

/** Feeds one window per site per pass and ticks until the rollout stops running. */
async function drive(
  w: RolloutWorld,
  id: string,
  traffic: (site: string, r: RolloutState) => Traffic | undefined,
  opts: { max?: number; deps?: ControllerDeps; before?: (i: number) => void } = {},
) {
  const d = opts.deps ?? deps(w);
  let r = (await w.state()).state.rollouts?.[id] as RolloutState;
  for (let i = 0; i < (opts.max ?? 40) && r.status === 'running'; i++) {
    opts.before?.(i);
    for (const s of r.sites) {
      const t = traffic(s, r);
      if (t) await w.feedback(s, t);
    }
    r = (await tick(d, id)).rollout;
  }
  return r;
}

async function events(w: RolloutWorld, id: string) {
  const { seq } = await w.state();
  const entries = await readEntries(w.store, fleetKeys(w.t.trust), 1, seq);
  return entries.flatMap(({ entry }) =>
    entry.ops.flatMap((op) => {
      if ('rollout' in op && op.rollout === id) return [op.op.replace('rollout.', '')];
      return [];
    }),
  );
}

function adapterOf(state: Awaited<ReturnType<RolloutWorld['state']>>['state'], site: string) {
  return state.sites[site]?.assignments.adapters.find((a) => a.ref.startsWith('adapter/support@'))?.ref;
}

const canaryOn =
  (r: RolloutState, acceptance: number, base = 0.7) =>
  (site: string) =>
    r.canary.includes(site) ? { acceptance } : { acceptance: base };

forEachBackend((mk) => {
  it('promotes a good canary wave by wave and logs start, steps, judgements, promote', async () => {
    const w = await rolloutWorld(await mk());
    const r0 = await start(w, 'good', { candidate: REFS.good });
    expect(r0.waves).toEqual([1, 2, 4]);
    expect(r0.canary).toHaveLength(1);
    const r = await drive(w, 'good', (s, r) => canaryOn(r, 0.71)(s));
    expect(r.status).toBe('promoted');
    const { state } = await w.state();
    for (const s of w.sites) expect(adapterOf(state, s)).toBe(REFS.good);
    const ev = await events(w, 'good');
    expect(ev[0]).toBe('start');
    expect(ev[1]).toBe('step');
    expect(ev.at(-1)).toBe('promote');
    expect(ev.filter((e) => e === 'step')).toHaveLength(2);
    // Every transition after the start is preceded by the judgement that caused it.
    const i2 = ev.lastIndexOf('step');
    expect(ev[i2 - 1]).toBe('judgement');
    expect(ev.at(-2)).toBe('judgement');
  });

  it('rolls a bad canary back to the previous refs', async () => {
    const w = await rolloutWorld(await mk());
    await start(w, 'bad', { candidate: REFS.bad });
    const r = await drive(w, 'bad', (s, r) => canaryOn(r, 0.45)(s));
    expect(r.status).toBe('aborted');
    expect(r.reason).toMatch(/acceptance/);
    const { state } = await w.state();
    for (const s of w.sites) expect(adapterOf(state, s)).toBe(REFS.base);
    const ev = await events(w, 'bad');
    expect(ev.slice(0, 2)).toEqual(['start', 'step']);
    expect(ev.slice(-2)).toEqual(['judgement', 'abort']);
    expect(ev).not.toContain('promote');
  });
});

describe('controller (fs)', () => {
  const fsOnly = (body: (mk: () => Promise<import('../../src/registry/store.js').Store>) => void) =>
    forEachBackend((mk) => body(mk), ['fs']);

  fsOnly((mk) => {
    it('low traffic: inconclusive past the step timeout pauses, never rolls back', async () => {
      let now = Date.now();
      const clock = () => new Date(now);
      const w = await rolloutWorld(await mk(), { clock });
      await start(w, 'low', { candidate: REFS.bad, stepTimeout: '10m' });
      const r = await drive(w, 'low', (s, r) => ({ requests: 3, ...canaryOn(r, 0.3)(s) }), {
        deps: deps(w, clock),
        before: () => (now += 60_000),
        max: 30,
      });
      expect(r.status).toBe('paused');
      expect(r.pauseReason).toBe('inconclusive');
      const ev = await events(w, 'low');
      expect(ev).not.toContain('abort');
      expect(ev.at(-1)).toBe('pause');
      // Repeated inconclusive passes are not logged one by one.
      expect(ev.filter((e) => e === 'judgement').length).toBeLessThanOrEqual(3);
    });

    it('verifier down for every site pauses (environment); down only on canary sites rolls back', async () => {
      const w = await rolloutWorld(await mk());
      await start(w, 'env', { candidate: REFS.good });
      const r = await drive(w, 'env', () => ({ errors: 150, fallbacks: 150 }));
      expect(r.status).toBe('paused');
      expect(r.pauseReason).toBe('environment');
      expect(r.reason).toMatch(/baseline sites did too/);

      const w2 = await rolloutWorld(await mk());
      await start(w2, 'canary-errors', { candidate: REFS.good });
      const r2 = await drive(w2, 'canary-errors', (s, r) => (r.canary.includes(s) ? { errors: 300 } : {}));
      expect(r2.status).toBe('aborted');
      expect(r2.reason).toMatch(/abort limit/);
    });

    it('controllers at once: exactly one acts on each state', async () => {
      const w = await rolloutWorld(await mk());
      await start(w, 'race', { candidate: REFS.bad });
      const before = await w.state();
      const r0 = before.state.rollouts?.race as RolloutState;
      for (const s of r0.sites) await w.feedback(s, canaryOn(r0, 0.3)(s));
      for (const s of r0.sites) await w.feedback(s, canaryOn(r0, 0.3)(s));
      for (const s of r0.sites) await w.feedback(s, canaryOn(r0, 0.3)(s));
      const ticks = await Promise.all([1, 2, 3, 4].map(() => tick(deps(w), 'race')));
      expect(ticks.filter((t) => t.wrote !== null)).toHaveLength(1);
      // The others lost the seq, found the state moved, or saw the rollout already ended.
      for (const t of ticks.filter((x) => x.wrote === null)) {
        expect(t.raced || t.decided === null).toBe(true);
      }
      const ev = await events(w, 'race');
      expect(ev.filter((e) => e === 'abort')).toHaveLength(1);
      expect(ev.filter((e) => e === 'judgement')).toHaveLength(1);
    });

    it('ignores feedback not signed by the site key', async () => {
      const w = await rolloutWorld(await mk());
      const r0 = await start(w, 'forged', { candidate: REFS.good });
      const intruder = generateKeyPair();
      // Forged terrible canary feedback must not roll anything back.
      for (let i = 0; i < 5; i++) {
        for (const s of r0.canary) await w.feedback(s, { acceptance: 0.1, signer: intruder });
      }
      const d = deps(w);
      const t = await tick(d, 'forged');
      expect(t.rollout.status).toBe('running');
      expect(t.evidence?.windows.canary).toBe(0);
      expect(d.cache?.rejected.length).toBeGreaterThan(0);
    });

    it('counts canary windows only after the site applied the candidate', async () => {
      const w = await rolloutWorld(await mk());
      const r0 = await start(w, 'stale', { candidate: REFS.bad });
      // A window that claims an older fleet seq (before the step) does not count.
      for (let i = 0; i < 5; i++) {
        for (const s of r0.canary) await w.feedback(s, { acceptance: 0.1, fleetSeq: r0.stepSeq - 1 });
      }
      const t = await tick(deps(w), 'stale');
      expect(t.evidence?.windows.canary).toBe(0);
      expect(t.rollout.status).toBe('running');
    });
  });
});
