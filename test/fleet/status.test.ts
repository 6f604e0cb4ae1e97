/**
 * `edgectl fleet status` against a real registry holding real signed feedback (the rollout test
 * world: a trust root, four sites in two regions with their own keys, the fleet applied, reports
 * signed with the sites' keys): per-cohort figures, a site that never reported (stale), a report
 * signed by another site's key (ignored and listed), a site that lags behind the head, an active
 * rollout, and the CLI (`--json`, human table, `--watch` ended by SIGINT with exit 130).
 */
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { fleetStatus, type FleetStatusResult } from '../../src/fleet-status/service.js';
import { FsStore } from '../../src/registry/fs-store.js';
import { startOps } from '../../src/rollout/actions.js';
import { appendEntry } from '../../src/rollout/append.js';
import { normalizeSpec } from '../../src/rollout/spec.js';
import { NODE, RUN_JS, runCli } from '../helpers/cli.js';
import { REFS, rolloutWorld, type RolloutWorld } from '../rollout/world.js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const MIN = 60_000;

async function world(): Promise<RolloutWorld> {
  const store = new FsStore(join(mkdtempSync(join(tmpdir(), 'edgectl-fleet-status-')), 'registry'));
  // store-001, -003: eu; store-002, -004: us.
  const w = await rolloutWorld(store, { sites: 4 });
  const now = Date.now();
  const at = (ago: number) => ({ start: new Date(now - ago - MIN), end: new Date(now - ago) });
  await w.feedback('store-001', { requests: 100, acceptance: 0.8, ttftMs: 80, ...at(2 * MIN) });
  await w.feedback('store-001', { requests: 100, acceptance: 0.6, ttftMs: 80, errors: 2, ...at(1 * MIN) });
  await w.feedback('store-003', { requests: 200, acceptance: 0.7, ttftMs: 400, ...at(1 * MIN) });
  // store-002 reported long ago (outside the window, but its latest report) and an entry behind.
  await w.feedback('store-002', { requests: 50, ...at(3 * 60 * MIN), fleetSeq: 0 });
  // A report for store-004 signed with store-002's key: ignored, so store-004 never reported.
  await w.feedback('store-004', { requests: 999, signer: w.keys.get('store-002'), ...at(MIN) });
  const spec = normalizeSpec({}, { steps: '50,100', candidate: REFS.good });
  const candidate = { ref: REFS.good, manifestDigest: w.digests[REFS.good] as string };
  await appendEntry(w.writer(), (fleet) => ({
    ops: startOps(fleet.state, { id: 'support-good', spec, candidate, by: 'test' }).ops,
  }));
  return w;
}

function opts(w: RolloutWorld, by = 'region') {
  return { registryUrl: w.store.url, trustPath: w.trustPath, by, windowMs: 15 * MIN, staleAfterMs: 5 * MIN };
}

describe('fleet status', () => {
  it('sums signed feedback per cohort', async () => {
    const w = await world();
    const r = await fleetStatus(opts(w));
    expect(r.cohorts.map((c) => c.cohort)).toEqual(['eu', 'us']);
    const [eu, us] = r.cohorts as [FleetStatusResult['cohorts'][0], FleetStatusResult['cohorts'][0]];
    expect(eu).toMatchObject({ sites: 2, reporting: 2, stale: 0, errors: 2, violations: 0 });
    expect(eu.requests.speculative).toBe(400);
    expect(eu.errorRate).toBeCloseTo(2 / 400);
    // 100*30*0.8 + 100*30*0.6 + 200*30*0.7 accepted of 400*30 drafted.
    expect(eu.acceptance).toBeCloseTo((2400 + 1800 + 4200) / 12000);
    expect(eu.passesSaved).toBeCloseTo(8400 / (8400 + 400 * 5));
    // 198 requests at 80 ms and 200 at 400 ms: the p95 falls in the 400 ms one's bucket (<= 500).
    expect(eu.ttftP95Ms).toBe(500);
    expect(eu.tokensPerSecond).toBeCloseTo((400 * 40) / (15 * 60), 1);
    expect(eu.versions.map((v) => v.ref)).toContain(REFS.base);
    // us: store-002's only report is 3 h old (stale, not summed), store-004's is forged.
    expect(us).toMatchObject({
      sites: 2,
      reporting: 1,
      stale: 2,
      errors: 0,
      acceptance: null,
      ttftP95Ms: null,
    });
    expect(us.freshness.oldestReportAgeSeconds).toBeNull();
    const s2 = r.sites.find((s) => s.site === 'store-002');
    expect(s2?.reportAgeSeconds).toBeGreaterThan(3 * 3600 - 5);
    expect(s2?.seqLag).toBe(r.headSeq);
    expect(r.rejected).toHaveLength(1);
    expect(r.rejected[0]?.key).toContain('feedback/store-004/');
    // The rollout selects every site; wave 1 (50%) is one eu and one us site or both of one region.
    const ro = [...eu.rollouts, ...us.rollouts];
    expect(ro.every((x) => x.id === 'support-good' && x.status === 'running')).toBe(true);
    expect(ro.reduce((n, x) => n + x.canary, 0)).toBe(2);
    expect(ro.reduce((n, x) => n + x.canary + x.baseline, 0)).toBe(4);
    const bySite = await fleetStatus(opts(w, 'site'));
    expect(bySite.cohorts.map((c) => c.cohort)).toEqual(['store-001', 'store-002', 'store-003', 'store-004']);
  });

  it('prints the table, --json, and --watch exits 130 on Ctrl-C', async () => {
    const w = await world();
    const args = ['--registry', w.store.url, '--trust', w.trustPath];
    const human = await runCli(['fleet', 'status', ...args], { cwd: w.dir });
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/^COHORT\s+SITES/m);
    expect(human.stdout).toMatch(/^eu\s+2\/2\s+0\s/m);
    expect(human.stdout).toContain('rollout support-good running');
    expect(human.stdout).toContain('store-004 (us): never reported');
    const json = await runCli(['fleet', 'status', ...args, '--by', 'tier', '--json'], { cwd: w.dir });
    expect(json.code).toBe(0);
    expect(json.json<FleetStatusResult>().cohorts.map((c) => c.cohort)).toEqual(['branch']);

    const child = spawn(
      NODE,
      [RUN_JS, 'fleet', 'status', ...args, '--watch', '--interval', '200ms', '--json'],
      {
        cwd: w.dir,
        env: { ...process.env, CI: '1' },
      },
    );
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    const code = await new Promise<number | null>((resolve) => {
      const timer = setInterval(() => {
        if (out.split('\n').filter(Boolean).length >= 2) {
          clearInterval(timer);
          child.kill('SIGINT');
        }
      }, 50);
      child.on('close', (c) => {
        clearInterval(timer);
        resolve(c);
      });
    });
    expect(code).toBe(130);
    const docs = out
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as FleetStatusResult);
    expect(docs.length).toBeGreaterThanOrEqual(2);
    expect(docs[0]?.cohorts).toHaveLength(2);
  }, 60_000);
});
