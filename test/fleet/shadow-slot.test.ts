/**
 * The `shadow` assignment slot: `assign`/`unassign` with `slot: shadow` behave like `adapters`
 * (keyed by name, replace or add, remove by name), leave every other slot alone, vanish from the
 * state when empty (so a fleet that never used a shadow keeps its digest), survive canonical JSON's
 * fast path and snapshots, reach the site's assigned artifacts last (`shadow/<name>`), and are
 * never touched by `site plan` (site declarations have no shadow field).
 */
import { describe, expect, it } from 'vitest';
import { VerificationError } from '../../src/foundation/errors.js';
import { canonicalSiteJson } from '../../src/fleet/canonical-site.js';
import { applyEntry, buildEntry, genesis, type AppliedFleet } from '../../src/fleet/entry.js';
import { parseOp, type FleetOp } from '../../src/fleet/ops.js';
import { planFleet } from '../../src/fleet/plan.js';
import type { DeclaredSite } from '../../src/fleet/site-schema.js';
import { buildSnapshot, parseSnapshotPayload } from '../../src/fleet/snapshot.js';
import { stateDigest } from '../../src/fleet/state.js';
import { canonicalJson } from '../../src/foundation/canonical-json.js';
import { assignedArtifacts } from '../../src/site/manifests.js';
import { at, declaration, fakeDigest, resolvedFrom } from './fixtures.js';

const MODEL = { ref: 'model/draft@1.0.0', manifestDigest: fakeDigest('m') };
const A100 = { ref: 'adapter/support@1.0.0', manifestDigest: fakeDigest('a100') };
const A110 = { ref: 'adapter/support@1.1.0', manifestDigest: fakeDigest('a110') };
const A120 = { ref: 'adapter/support@1.2.0', manifestDigest: fakeDigest('a120') };
const FAQ = { ref: 'adapter/faq@2.0.0', manifestDigest: fakeDigest('faq') };

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

describe('shadow slot ops', () => {
  it('assigns by name (add, then replace), leaves adapters alone, and unassigns by name', () => {
    const f0 = fleet();
    let f = write(f0, [{ op: 'assign', sites: ['s1'], slot: 'shadow', ...A110 }], 1);
    expect(f.state.sites.s1?.assignments.shadow).toEqual([A110]);
    expect(f.state.sites.s1?.assignments.adapters).toEqual([A100]);
    expect(f.state.sites.s2?.assignments.shadow).toBeUndefined();
    f = write(f, [{ op: 'assign', sites: ['s1'], slot: 'shadow', ...A120 }], 2);
    expect(f.state.sites.s1?.assignments.shadow).toEqual([A120]);
    f = write(f, [{ op: 'assign', sites: ['s1'], slot: 'shadow', ...FAQ }], 3);
    expect(f.state.sites.s1?.assignments.shadow?.map((r) => r.ref)).toEqual([FAQ.ref, A120.ref]);
    // Other slots' ops keep the shadow list.
    f = write(f, [{ op: 'assign', sites: ['s1'], slot: 'adapters', ...A110 }], 4);
    expect(f.state.sites.s1?.assignments.shadow).toHaveLength(2);
    expect(f.state.sites.s1?.assignments.adapters).toEqual([A110]);
    f = write(f, [{ op: 'unassign', sites: ['s1'], slot: 'shadow', name: 'faq' }], 5);
    f = write(f, [{ op: 'unassign', sites: ['s1'], slot: 'shadow', name: 'support' }], 6);
    // Empty: the field is gone, and the state digest is what it would be without any shadow.
    expect(f.state.sites.s1?.assignments).not.toHaveProperty('shadow');
    const back = write(f0, [{ op: 'assign', sites: ['s1'], slot: 'adapters', ...A110 }], 1);
    expect(stateDigest(f.state)).toBe(stateDigest(back.state));
  });

  it('refuses an unassign of a shadow the site does not have, and a shadow unassign without a name', () => {
    const f = fleet();
    expect(() =>
      buildEntry(f, [{ op: 'unassign', sites: ['s1'], slot: 'shadow', name: 'support' }], at(1)),
    ).toThrow(/has no shadow adapter adapter\/support/);
    expect(() => parseOp({ op: 'unassign', sites: ['s1'], slot: 'shadow' }, 'ops[0]')).toThrow(
      VerificationError,
    );
    expect(() => parseOp({ op: 'assign', sites: ['s1'], slot: 'shadow', ...MODEL }, 'ops[0]')).toThrow(
      /adapter/,
    );
  });

  it('canonical JSON: the fast path agrees with the generic serializer for shadow assignments', () => {
    const f = write(fleet(), [{ op: 'assign', sites: ['s1'], slot: 'shadow', ...A110 }], 1);
    const site = f.state.sites.s1!;
    expect(canonicalSiteJson(site)).toBe(canonicalJson(site));
    expect(canonicalSiteJson(site)).toContain('"shadow":[');
    // A snapshot of the state reads back to the same digest.
    const snap = buildSnapshot(f);
    const back = parseSnapshotPayload(JSON.parse(canonicalJson(snap)), 'snapshot');
    expect(stateDigest(back.state)).toBe(stateDigest(f.state));
    expect(back.state.sites.s1?.assignments.shadow).toEqual([A110]);
  });

  it('sites fetch shadow adapters last, into shadow/<name>', () => {
    const f = write(fleet(), [{ op: 'assign', sites: ['s1'], slot: 'shadow', ...A110 }], 1);
    const arts = assignedArtifacts(f.state.sites.s1!.assignments);
    expect(arts.map((a) => `${a.slot}:${a.dir}`)).toEqual([
      'adapter:adapters/support',
      'model:model',
      'shadow:shadow/support',
    ]);
  });

  it('site plan leaves the shadow slot alone (declarations have none)', async () => {
    const f = write(fleet(), [{ op: 'assign', sites: ['s1'], slot: 'shadow', ...A110 }], 1);
    const declared = Object.values(f.state.sites).map((s) => ({
      file: `sites/${s.declaration.name}.yaml`,
      declaration: s.declaration,
      assignments: { model: MODEL.ref, adapters: [A100.ref] },
      lineOf: () => 1,
    })) as unknown as DeclaredSite[];
    const resolve = (ref: string) => Promise.resolve(resolvedFrom([MODEL, A100, A110], ref));
    const plan = await planFleet(declared, f.state, resolve);
    expect(plan.ops).toEqual([]);
    expect(plan.sites).toEqual([]);
    // A real change elsewhere on the same site is planned without touching the shadow.
    const changed = declared.map((d) =>
      d.declaration.name === 's1' ? { ...d, assignments: { model: MODEL.ref, adapters: [A110.ref] } } : d,
    ) as DeclaredSite[];
    const plan2 = await planFleet(changed, f.state, resolve);
    expect(plan2.ops).toEqual([{ op: 'assign', sites: ['s1'], slot: 'adapters', ...A110 }]);
    const after = write(f, plan2.ops, 2);
    expect(after.state.sites.s1?.assignments.shadow).toEqual([A110]);
  });
});
