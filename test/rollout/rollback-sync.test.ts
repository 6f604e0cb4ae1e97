/**
 * Rollback reaches real sites: four site data directories run real sync agents (every 400 ms)
 * against a directory registry with real published artifacts. A bad adapter goes to wave 1;
 * canary sites report its (bad) acceptance from the generation they actually serve; the
 * controller rolls back, and every canary site is back on its previous generation (the same
 * generation id, nothing downloaded) within one sync interval of the abort entry.
 */
import { join } from 'node:path';
import { expect, it } from 'vitest';
import type { RolloutState } from '../../src/fleet/rollout-ops.js';
import { FsStore } from '../../src/registry/fs-store.js';
import { startOps } from '../../src/rollout/actions.js';
import { appendEntry } from '../../src/rollout/append.js';
import { tick } from '../../src/rollout/controller.js';
import { FeedbackCache } from '../../src/rollout/evidence.js';
import { judgeStep } from '../../src/rollout/judge/index.js';
import { normalizeSpec } from '../../src/rollout/spec.js';
import { tempDir } from '../site/fixtures.js';
import { siteFleet } from './sites.js';
import { feedbackWriter } from './world.js';

const SYNC_MS = 400;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

it('a rolled-back canary is back on its previous generation within one sync interval', async () => {
  const store = new FsStore(join(tempDir(), 'registry'));
  const f = await siteFleet(store, 4);
  const stop = f.startAgents(SYNC_MS);
  try {
    const until = async (what: string, ok: () => Promise<boolean>, ms = 30_000) => {
      const end = Date.now() + ms;
      while (!(await ok())) {
        if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
        await sleep(50);
      }
    };
    const all = async (ref: string, sites: string[]) =>
      (await Promise.all(sites.map((s) => f.currentAdapter(s)))).every((a) => a === ref);
    await until('the first install', () => all('adapter/support@1.0.0', f.sites));
    const before = new Map(
      await Promise.all(f.sites.map(async (s) => [s, (await f.context(s))?.generation] as const)),
    );

    const w = { store, trust: f.t.trust, signers: [f.t.fleet], clock: () => new Date() };
    const spec = normalizeSpec({}, { candidate: 'adapter/support@1.2.0', steps: '50' });
    const candidate = {
      ref: 'adapter/support@1.2.0',
      manifestDigest: f.digests['adapter/support@1.2.0'] as string,
    };
    const started = await appendEntry(w, (fleet) => ({
      ops: startOps(fleet.state, { id: 'bad', spec, candidate, by: 'test' }).ops,
    }));
    const r = started.fleet.state.rollouts?.bad as RolloutState;
    expect(r.canary).toHaveLength(2);
    await until('the canary install', () => all('adapter/support@1.2.0', r.canary));

    // Sites report what they actually serve: the canary's bad acceptance comes from 1.2.0.
    const feedback = feedbackWriter(store, f.t.trust, f.keys);
    const deps = { ...w, judge: judgeStep, by: 'test', cache: new FeedbackCache() };
    let abortAt = 0;
    for (let i = 0; i < 20 && abortAt === 0; i++) {
      for (const s of f.sites) {
        const ctx = await f.context(s);
        const onCandidate = ctx?.refs.adapters.some((a) => a.ref === candidate.ref);
        await feedback(s, {
          acceptance: onCandidate ? 0.4 : 0.7,
          ...(ctx ? { refs: ctx.refs, fleetSeq: ctx.fleetSeq } : {}),
        });
      }
      const t = await tick(deps, 'bad');
      if (t.rollout.status === 'aborted') abortAt = performance.now();
    }
    expect(abortAt).toBeGreaterThan(0);
    await until('the rollback', () => all('adapter/support@1.0.0', r.canary), 10_000);
    const backs = () =>
      f.switches.filter(
        (s) => r.canary.includes(s.site) && s.adapter === 'adapter/support@1.0.0' && s.at >= abortAt,
      );
    await until('the switch events', () => Promise.resolve(backs().length === r.canary.length), 2_000);
    const back = backs();
    const latest = Math.max(...back.map((s) => s.at)) - abortAt;
    // One sync interval, plus the sync itself (a switch to a generation that is still on disk).
    expect(latest).toBeLessThan(SYNC_MS + 1000);
    for (const s of r.canary) expect((await f.context(s))?.generation).toBe(before.get(s));
    // Baseline sites never left their generation.
    for (const s of f.sites.filter((x) => !r.canary.includes(x))) {
      expect((await f.context(s))?.generation).toBe(before.get(s));
    }
  } finally {
    await stop();
  }
});
