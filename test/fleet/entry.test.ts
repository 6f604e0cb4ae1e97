import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { VerificationError } from '../../src/foundation/errors.js';
import {
  applyEntries,
  applyEntry,
  buildEntry,
  entryDigest,
  genesis,
  parseEntryPayload,
  type AppliedFleet,
  type FleetEntry,
} from '../../src/fleet/entry.js';
import type { FleetOp } from '../../src/fleet/ops.js';
import type { RolloutReducer, RolloutState } from '../../src/fleet/rollout-ops.js';
import { canonicalState, stateDigest, type FleetState } from '../../src/fleet/state.js';
import { canonicalJson, canonicalJsonBytes } from '../../src/foundation/canonical-json.js';
import { at, declaration, fakeDigest } from './fixtures.js';

const draft = { ref: 'model/draft@1.0.0', manifestDigest: fakeDigest('draft1') };
const draft2 = { ref: 'model/draft@1.1.0', manifestDigest: fakeDigest('draft2') };
const support = { ref: 'adapter/support@1.0.0', manifestDigest: fakeDigest('support1') };
const support2 = { ref: 'adapter/support@1.1.0', manifestDigest: fakeDigest('support2') };
const legal = { ref: 'adapter/legal@2.0.0', manifestDigest: fakeDigest('legal') };
const policy = { ref: 'policy/default@1.0.0', manifestDigest: fakeDigest('policy') };

/** Builds and applies an entry through a JSON round trip, as a reader of the registry would. */
function step(
  applied: AppliedFleet,
  ops: FleetOp[],
  minute = applied.seq + 1,
): { entry: FleetEntry; next: AppliedFleet } {
  const { entry } = buildEntry(applied, ops, at(minute));
  const payload = canonicalJsonBytes(entry);
  const decoded = parseEntryPayload(JSON.parse(payload.toString('utf8')), payload, 'test entry');
  return { entry: decoded, next: applyEntry(applied, decoded) };
}

function expectVerification(fn: () => unknown, code: string, message?: RegExp): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(VerificationError);
  expect((err as VerificationError).exitCode).toBe(4);
  expect((err as VerificationError).code).toBe(code);
  if (message) expect((err as Error).message).toMatch(message);
}

function threeSites(): AppliedFleet {
  const ops: FleetOp[] = [
    { op: 'site.put', site: declaration('store-001', { region: 'eu-west', tier: 'branch' }) },
    { op: 'site.put', site: declaration('store-002', { region: 'eu-west', tier: 'branch' }) },
    { op: 'site.put', site: declaration('store-003', { region: 'us-east', tier: 'flagship' }) },
    { op: 'assign', sites: ['store-001', 'store-002', 'store-003'], slot: 'model', ...draft },
    { op: 'assign', sites: ['store-001', 'store-002', 'store-003'], slot: 'adapters', ...support },
    { op: 'assign', sites: ['store-001', 'store-002', 'store-003'], slot: 'policy', ...policy },
  ];
  return step(genesis(), ops).next;
}

describe('applyEntry', () => {
  it('applies site.put and assign from the genesis', () => {
    const fleet = threeSites();
    expect(fleet.seq).toBe(1);
    expect(Object.keys(fleet.state.sites)).toEqual(['store-001', 'store-002', 'store-003']);
    expect(fleet.state.sites['store-003']?.assignments).toEqual({
      model: draft,
      adapters: [support],
      policy,
    });
    expect(fleet.state.sites['store-001']?.declaration.labels).toEqual({ region: 'eu-west', tier: 'branch' });
  });

  it('site.put replaces a declaration and keeps the assignments', () => {
    const fleet = threeSites();
    const changed = {
      ...fleet.state.sites['store-001']!.declaration,
      labels: { region: 'eu-west', tier: 'flagship' },
    };
    const { next } = step(fleet, [{ op: 'site.put', site: changed }]);
    expect(next.state.sites['store-001']?.declaration.labels.tier).toBe('flagship');
    expect(next.state.sites['store-001']?.assignments.model).toEqual(draft);
    // Untouched sites are shared, not copied.
    expect(next.state.sites['store-002']).toBe(fleet.state.sites['store-002']);
  });

  it('site.delete removes the site and its assignments', () => {
    const { next } = step(threeSites(), [{ op: 'site.delete', site: 'store-002' }]);
    expect(Object.keys(next.state.sites)).toEqual(['store-001', 'store-003']);
  });

  it('assign replaces model and policy, and an adapter by name, keeping adapters sorted', () => {
    let fleet = threeSites();
    fleet = step(fleet, [
      { op: 'assign', sites: ['store-001'], slot: 'model', ...draft2 },
      { op: 'assign', sites: ['store-001'], slot: 'adapters', ...support2 },
      { op: 'assign', sites: ['store-001'], slot: 'adapters', ...legal },
    ]).next;
    const a = fleet.state.sites['store-001']!.assignments;
    expect(a.model).toEqual(draft2);
    expect(a.adapters).toEqual([legal, support2]);
    expect(fleet.state.sites['store-002']!.assignments.adapters).toEqual([support]);
  });

  it('unassign clears a slot or removes one adapter', () => {
    let fleet = threeSites();
    fleet = step(fleet, [
      { op: 'unassign', sites: ['store-001', 'store-002'], slot: 'model' },
      { op: 'unassign', sites: ['store-001'], slot: 'adapters', name: 'support' },
    ]).next;
    expect(fleet.state.sites['store-001']!.assignments).toEqual({ adapters: [], policy });
    expect(fleet.state.sites['store-002']!.assignments).toEqual({ adapters: [support], policy });
    expectVerification(
      () => step(fleet, [{ op: 'unassign', sites: ['store-001'], slot: 'adapters', name: 'support' }]),
      'E_ENTRY_INVALID',
      /store-001 has no adapter adapter\/support/,
    );
  });

  it('refuses ops on sites that do not exist', () => {
    expectVerification(
      () => step(threeSites(), [{ op: 'assign', sites: ['store-404'], slot: 'model', ...draft }]),
      'E_ENTRY_INVALID',
      /site store-404 does not exist/,
    );
    expectVerification(
      () => step(threeSites(), [{ op: 'site.delete', site: 'store-404' }]),
      'E_ENTRY_INVALID',
    );
  });

  it('does not modify its input', () => {
    const fleet = threeSites();
    const before = canonicalJson(fleet);
    step(fleet, [
      { op: 'site.delete', site: 'store-001' },
      { op: 'assign', sites: ['store-002'], slot: 'adapters', ...legal },
    ]);
    expect(canonicalJson(fleet)).toBe(before);
  });

  it('re-applying the applied seq is a no-op; a different entry there is a fork', () => {
    const g = genesis();
    const first = step(g, [{ op: 'site.put', site: declaration('a') }]);
    expect(applyEntry(first.next, first.entry)).toBe(first.next);
    const other = step(g, [{ op: 'site.put', site: declaration('b') }]);
    expectVerification(() => applyEntry(first.next, other.entry), 'E_FORK', /fork/);
  });

  it('an older seq is a no-op', () => {
    const first = step(genesis(), [{ op: 'site.put', site: declaration('a') }]);
    const second = step(first.next, [{ op: 'site.put', site: declaration('b') }]);
    expect(applyEntry(second.next, first.entry)).toBe(second.next);
  });

  it('refuses a gap and a broken prev chain', () => {
    const first = step(genesis(), [{ op: 'site.put', site: declaration('a') }]);
    const second = step(first.next, [{ op: 'site.put', site: declaration('b') }]);
    expectVerification(() => applyEntry(genesis(), second.entry), 'E_LOG_GAP', /next entry to apply is 1/);
    // An entry 2 that does not chain to the entry 1 that was applied.
    const elsewhere = step(genesis(), [{ op: 'site.put', site: declaration('c') }]);
    const forked = step(elsewhere.next, [{ op: 'site.put', site: declaration('d') }]);
    expectVerification(() => applyEntry(first.next, forked.entry), 'E_CHAIN', /broken chain/);
  });

  it('refuses an entry whose stateDigest does not match', () => {
    const { entry } = buildEntry(genesis(), [{ op: 'site.put', site: declaration('a') }], at(1));
    const wrong: FleetEntry = { ...entry, stateDigest: fakeDigest('not the state') };
    expectVerification(() => applyEntry(genesis(), wrong), 'E_STATE_DIGEST', /state digest mismatch/);
  });

  it('genesis: seq 1 with prev null', () => {
    const { entry } = buildEntry(genesis(), [{ op: 'site.put', site: declaration('a') }], at(1));
    expect(entry.seq).toBe(1);
    expect(entry.prev).toBeNull();
    expectVerification(() => applyEntry(genesis(), { ...entry, prev: fakeDigest('x') }), 'E_CHAIN');
  });
});

describe('applyEntries (catching up)', () => {
  function chain(): { start: AppliedFleet; entries: FleetEntry[]; end: AppliedFleet } {
    const start = threeSites();
    let a = start;
    const entries: FleetEntry[] = [];
    const opsList: FleetOp[][] = [
      [{ op: 'assign', sites: ['store-001'], slot: 'model', ...draft2 }],
      [{ op: 'site.delete', site: 'store-002' }],
      [{ op: 'assign', sites: ['store-003'], slot: 'adapters', ...legal }],
    ];
    for (const ops of opsList) {
      const s = step(a, ops);
      entries.push(s.entry);
      a = s.next;
    }
    return { start, entries, end: a };
  }

  it('gives the same fleet as applying the entries one by one, without touching the input', () => {
    const { start, entries, end } = chain();
    const before = canonicalJson(start);
    const out = applyEntries(start, entries);
    expect(out.seq).toBe(end.seq);
    expect(out.entryDigest).toBe(end.entryDigest);
    expect(stateDigest(out.state)).toBe(stateDigest(end.state));
    expect(canonicalJson(start)).toBe(before);
    // Entries already applied are skipped.
    expect(applyEntries(end, entries)).toBe(end);
  });

  it('refuses a broken chain in the middle and a wrong digest on the last entry', () => {
    const { start, entries } = chain();
    const [e1, e2, e3] = entries as [FleetEntry, FleetEntry, FleetEntry];
    expectVerification(() => applyEntries(start, [e1, e3]), 'E_LOG_GAP');
    const other = step(threeSites(), [{ op: 'site.delete', site: 'store-001' }]).entry;
    expectVerification(() => applyEntries(start, [other]), 'E_CHAIN');
    const lying = { ...e3, stateDigest: fakeDigest('wrong') };
    expectVerification(() => applyEntries(start, [e1, e2, lying]), 'E_STATE_DIGEST');
  });
});

describe('entry parsing and ops', () => {
  const base = { seq: 1, prev: null, time: at(1).toISOString(), stateDigest: fakeDigest('s') };

  function parse(value: unknown): FleetEntry {
    const bytes = Buffer.from(JSON.stringify(value));
    return parseEntryPayload(value, bytes, 'fleet/log/000000000001.json');
  }

  it('refuses an unknown op type clearly', () => {
    expectVerification(
      () => parse({ ...base, ops: [{ op: 'site.teleport', site: 'a' }] }),
      'E_UNSUPPORTED_OP',
      /ops\[0\]: unknown op type "site\.teleport"/,
    );
  });

  it('refuses a ref in the wrong slot and malformed fields', () => {
    expectVerification(
      () => parse({ ...base, ops: [{ op: 'assign', sites: ['a'], slot: 'model', ...policy }] }),
      'E_ENTRY_INVALID',
      /the model slot takes model refs/,
    );
    expectVerification(
      () => parse({ ...base, seq: 0, ops: [{ op: 'site.delete', site: 'a' }] }),
      'E_ENTRY_INVALID',
    );
    expectVerification(() => parse({ ...base, ops: [] }), 'E_ENTRY_INVALID', /at least one op/);
  });

  it('hands rollout ops to the reducer; the default one refuses an op that does not fit', () => {
    const fleet = threeSites();
    const ops = [
      { op: 'rollout.start', rollout: 'r1', candidate: 'model/draft@1.1.0' },
    ] as unknown as FleetOp[];
    expectVerification(() => buildEntry(fleet, ops, at(5)), 'E_ENTRY_INVALID', /rollout\.start r1/);
    const reducer: RolloutReducer = (rollouts, op, ctx) => ({
      ...rollouts,
      [op.rollout]: { phase: op.op, since: ctx.time } as unknown as RolloutState,
    });
    const { entry, next } = buildEntry(fleet, ops, at(5), { rolloutReducer: reducer });
    expect(next.state.rollouts).toEqual({ r1: { phase: 'rollout.start', since: at(5).toISOString() } });
    expect(applyEntry(fleet, entry, { rolloutReducer: reducer }).state).toEqual(next.state);
  });

  it('the entry digest is the digest of the signed payload bytes', () => {
    const { entry } = buildEntry(genesis(), [{ op: 'site.put', site: declaration('a') }], at(1));
    const payload = canonicalJsonBytes(entry);
    const decoded = parseEntryPayload(JSON.parse(payload.toString()), payload, 'x');
    expect(entryDigest(decoded)).toBe(entryDigest(entry));
  });
});

describe('stateDigest', () => {
  it('equals the SHA-256 of the canonical JSON of the whole state', () => {
    const fleet = threeSites();
    const state: FleetState = {
      ...fleet.state,
      rollouts: { 'r-é': { n: 1, list: [true, null] } as unknown as RolloutState },
    };
    expect(canonicalState(state)).toBe(canonicalJson(state));
    expect(stateDigest(state)).toBe(
      `sha256:${createHash('sha256').update(canonicalJson(state)).digest('hex')}`,
    );
    expect(canonicalState({ sites: {} })).toBe('{"sites":{}}');
  });
});
