/**
 * The `indexes` assignment slot (issue #20): declared in `sites/<name>.yaml` under
 * `assignments.indexes`, planned and applied like `adapters` (a set keyed by `index/<name>`),
 * absent from the state when empty (a fleet without indexes keeps its digest), kept by canonical
 * JSON's fast path and snapshots, and fetched by sites after adapters and before the model.
 */
import { describe, expect, it } from 'vitest';
import { canonicalSiteJson } from '../../src/fleet/canonical-site.js';
import { applyEntry, buildEntry, genesis, type AppliedFleet } from '../../src/fleet/entry.js';
import type { FleetOp } from '../../src/fleet/ops.js';
import { planFleet } from '../../src/fleet/plan.js';
import { siteFileSchema, toDeclaration, type DeclaredSite } from '../../src/fleet/site-schema.js';
import { buildSnapshot, parseSnapshotPayload } from '../../src/fleet/snapshot.js';
import { stateDigest } from '../../src/fleet/state.js';
import { canonicalJson } from '../../src/foundation/canonical-json.js';
import { assignedArtifacts } from '../../src/site/manifests.js';
import { at, declaration, fakeDigest, resolvedFrom } from './fixtures.js';

const MODEL = { ref: 'model/draft@1.0.0', manifestDigest: fakeDigest('m') };
const A100 = { ref: 'adapter/support@1.0.0', manifestDigest: fakeDigest('a100') };
const KB1 = { ref: 'index/kb@1.0.0', manifestDigest: fakeDigest('kb1') };
const KB2 = { ref: 'index/kb@1.1.0', manifestDigest: fakeDigest('kb2') };
const FAQ = { ref: 'index/faq@1.0.0', manifestDigest: fakeDigest('faq') };

function fleet(): AppliedFleet {
  const ops: FleetOp[] = [
    { op: 'site.put', site: declaration('s1') },
    { op: 'site.put', site: declaration('s2') },
    { op: 'assign', sites: ['s1', 's2'], slot: 'model', ...MODEL },
    { op: 'assign', sites: ['s1', 's2'], slot: 'adapters', ...A100 },
  ];
  return buildEntry(genesis(), ops, at(0)).next;
}

function write(f: AppliedFleet, ops: FleetOp[], minute: number): AppliedFleet {
  const { entry, next } = buildEntry(f, ops, at(minute));
  expect(applyEntry(f, entry).state).toEqual(next.state);
  return next;
}

function declared(f: AppliedFleet, indexes: (name: string) => string[]): DeclaredSite[] {
  return Object.values(f.state.sites).map((s) => ({
    file: `sites/${s.declaration.name}.yaml`,
    declaration: s.declaration,
    assignments: { model: MODEL.ref, adapters: [A100.ref], indexes: indexes(s.declaration.name) },
    lineOf: () => 1,
  }));
}

const resolve = (ref: string) => Promise.resolve(resolvedFrom([MODEL, A100, KB1, KB2, FAQ], ref));

describe('indexes slot', () => {
  it('site files declare indexes; a duplicate index or a ref of another kind is refused', () => {
    const base = { name: 's1', publicKey: declaration('s1').publicKey };
    const ok = siteFileSchema.parse({ ...base, assignments: { indexes: [KB1.ref, FAQ.ref] } });
    expect(toDeclaration(ok).assignments.indexes).toEqual([KB1.ref, FAQ.ref]);
    expect(toDeclaration(siteFileSchema.parse(base)).assignments).not.toHaveProperty('indexes');
    const dup = siteFileSchema.safeParse({ ...base, assignments: { indexes: [KB1.ref, KB2.ref] } });
    expect(dup.error?.issues[0]?.message).toMatch(/index index\/kb is listed twice/);
    const wrong = siteFileSchema.safeParse({ ...base, assignments: { indexes: [A100.ref] } });
    expect(wrong.error?.issues[0]?.message).toMatch(/the indexes slot takes index refs/);
  });

  it('plans and applies index assignments by name, and an emptied slot leaves the digest as before', async () => {
    const f0 = fleet();
    const plan = await planFleet(
      declared(f0, (n) => (n === 's1' ? [KB1.ref] : [])),
      f0.state,
      resolve,
    );
    expect(plan.ops).toEqual([{ op: 'assign', sites: ['s1'], slot: 'indexes', ...KB1 }]);
    expect(plan.sites[0]?.fields[0]?.field).toBe('indexes[index/kb]');
    let f = write(f0, plan.ops, 1);
    expect(f.state.sites.s1?.assignments.indexes).toEqual([KB1]);
    f = write(f, [{ op: 'assign', sites: ['s1', 's2'], slot: 'indexes', ...KB2 }], 2);
    f = write(f, [{ op: 'assign', sites: ['s1'], slot: 'indexes', ...FAQ }], 3);
    expect(f.state.sites.s1?.assignments.indexes).toEqual([FAQ, KB2]);
    expect(f.state.sites.s1?.assignments.adapters).toEqual([A100]);
    const unplan = await planFleet(
      declared(f, () => []),
      f.state,
      resolve,
    );
    expect(unplan.ops).toEqual([
      { op: 'unassign', sites: ['s1'], slot: 'indexes', name: 'faq' },
      { op: 'unassign', sites: ['s1', 's2'], slot: 'indexes', name: 'kb' },
    ]);
    f = write(f, unplan.ops, 4);
    expect(f.state.sites.s1?.assignments).not.toHaveProperty('indexes');
    expect(stateDigest(f.state)).toBe(stateDigest(f0.state));
    expect(() =>
      buildEntry(f, [{ op: 'unassign', sites: ['s1'], slot: 'indexes', name: 'kb' }], at(5)),
    ).toThrow(/has no index index\/kb/);
  });

  it('canonical JSON fast path and snapshots keep indexes', () => {
    const f = write(fleet(), [{ op: 'assign', sites: ['s1'], slot: 'indexes', ...KB1 }], 1);
    const site = f.state.sites.s1!;
    expect(canonicalSiteJson(site)).toBe(canonicalJson(site));
    expect(canonicalSiteJson(site)).toContain('"indexes":[');
    const back = parseSnapshotPayload(JSON.parse(canonicalJson(buildSnapshot(f))), 'snapshot');
    expect(stateDigest(back.state)).toBe(stateDigest(f.state));
  });

  it('sites fetch indexes after adapters and before the model, into indexes/<name>', () => {
    const f = write(fleet(), [{ op: 'assign', sites: ['s1'], slot: 'indexes', ...KB1 }], 1);
    expect(assignedArtifacts(f.state.sites.s1!.assignments).map((a) => `${a.slot}:${a.dir}`)).toEqual([
      'adapter:adapters/support',
      'index:indexes/kb',
      'model:model',
    ]);
  });
});
