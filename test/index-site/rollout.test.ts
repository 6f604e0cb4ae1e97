/**
 * Canarying an index version like any other artifact (issue #20 item 4): a rollout of
 * `index/kb@<version>` moves the sites' `indexes` slot wave by wave; the controller reads the
 * signed feedback of sites serving the candidate index (refs.indexes) against the baseline and
 * promotes a good version or rolls a bad one back, re-assigning the previous index. Registry: fs.
 */
import { expect, it } from 'vitest';
import type { RolloutState } from '../../src/fleet/rollout-ops.js';
import { startOps } from '../../src/rollout/actions.js';
import { appendEntry } from '../../src/rollout/append.js';
import { tick, type ControllerDeps } from '../../src/rollout/controller.js';
import { FeedbackCache } from '../../src/rollout/evidence.js';
import { judgeStep } from '../../src/rollout/judge/index.js';
import { normalizeSpec } from '../../src/rollout/spec.js';
import { forEachBackend } from '../helpers/stores.js';
import { rolloutWorld, type RolloutWorld } from '../rollout/world.js';

const V1 = 'index/kb@1.0.0';
const GOOD = 'index/kb@1.1.0';
const BAD = 'index/kb@1.2.0';

async function start(w: RolloutWorld, id: string, candidate: string): Promise<RolloutState> {
  const spec = normalizeSpec({}, { steps: '25,50,100', interval: '10ms', candidate });
  const res = await appendEntry(w.writer(), (fleet) => ({
    ops: startOps(fleet.state, {
      id,
      spec,
      candidate: { ref: candidate, manifestDigest: w.digests[candidate]! },
      by: 'test',
    }).ops,
  }));
  return res.fleet.state.rollouts?.[id] as RolloutState;
}

async function drive(w: RolloutWorld, id: string, canaryAcceptance: number): Promise<RolloutState> {
  const d: ControllerDeps = {
    ...w.writer(),
    judge: judgeStep,
    by: 'controller:test',
    cache: new FeedbackCache(),
  };
  let r = (await w.state()).state.rollouts?.[id] as RolloutState;
  for (let i = 0; i < 40 && r.status === 'running'; i++) {
    for (const s of r.sites)
      await w.feedback(s, { acceptance: r.canary.includes(s) ? canaryAcceptance : 0.7 });
    r = (await tick(d, id)).rollout;
  }
  return r;
}

const indexOf = async (w: RolloutWorld, site: string) =>
  (await w.state()).state.sites[site]?.assignments.indexes?.map((x) => x.ref);

forEachBackend(
  (mk) => {
    it('a good index version is promoted to every site; a bad one is rolled back to the previous index', async () => {
      const w = await rolloutWorld(await mk(), { indexes: [V1, GOOD, BAD] });
      expect(await indexOf(w, 'store-001')).toEqual([V1]);
      const r0 = await start(w, 'ix-bad', BAD);
      expect(r0.slot).toBe('indexes');
      expect(await indexOf(w, r0.canary[0]!)).toEqual([BAD]);
      const bad = await drive(w, 'ix-bad', 0.3);
      expect(bad.status).toBe('aborted');
      for (const s of w.sites) expect(await indexOf(w, s)).toEqual([V1]);

      await start(w, 'ix-good', GOOD);
      const good = await drive(w, 'ix-good', 0.72);
      expect(good.status).toBe('promoted');
      for (const s of w.sites) expect(await indexOf(w, s)).toEqual([GOOD]);
    });
  },
  ['fs'],
);
