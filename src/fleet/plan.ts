/**
 * Planning (`edgectl site plan`): the ops that take the fleet state from what the registry's log
 * says to what `sites/*.yaml` declares, and a readable per-site diff of them. Every ref is
 * resolved to its manifest digest first; a ref the registry lacks is a UserError (exit 2) naming
 * the file:line of each place it is used, and so is a model ref that names an embedder (a site's
 * model must be a draft LM; src/artifact/model-role.ts).
 *
 * Ops come out in a fixed order (deletes, puts, assigns, unassigns; sites sorted) and `assign` ops
 * are grouped by (slot, ref, digest), so the same desired state always plans to the same entry and
 * a 10,000-site fleet moving to a new model is one op, not 10,000.
 */
import { UserError } from '../foundation/errors.js';
import { formatProblem, type YamlProblem } from '../config/yaml-file.js';
import { SITE_MODEL_ROLE_CODE, SITE_MODEL_ROLE_FIX, siteModelRoleProblem } from '../artifact/model-role.js';
import type { AssignOp, FleetOp, UnassignOp } from './ops.js';
import { refIdentity, refKind } from './refs.js';
import type { DeclaredSite, SiteDeclaration, Slot } from './site-schema.js';
import type { FleetState, ResolvedRef, SiteAssignments } from './state.js';
import type { RefResolver } from './resolve.js';
import { applyRolloutHolds, rolloutHolds, type HeldField } from './rollout-ops.js';

export interface FieldChange {
  /** `labels.tier`, `runtime.listen`, `model`, `adapters[adapter/support]`... */
  field: string;
  from?: string;
  to?: string;
}

export interface SiteChange {
  site: string;
  action: 'add' | 'change' | 'remove';
  fields: FieldChange[];
}

export interface FleetPlan {
  ops: FleetOp[];
  sites: SiteChange[];
  summary: { add: number; change: number; remove: number };
  /** Slots left as the log has them because a rollout controls them (rollout-ops.ts, holds). */
  held?: HeldField[];
}

type RefUse = { site: DeclaredSite; path: PropertyKey[] };

/** Every distinct ref of the declared sites, with the places (file, field) that use it. */
function refUses(desired: DeclaredSite[]): Map<string, RefUse[]> {
  const uses = new Map<string, RefUse[]>();
  const note = (ref: string, site: DeclaredSite, path: PropertyKey[]) => {
    const list = uses.get(ref);
    if (list) list.push({ site, path });
    else uses.set(ref, [{ site, path }]);
  };
  for (const site of desired) {
    const a = site.assignments;
    if (a.model) note(a.model, site, ['assignments', 'model']);
    a.adapters.forEach((r, i) => note(r, site, ['assignments', 'adapters', i]));
    (a.indexes ?? []).forEach((r, i) => note(r, site, ['assignments', 'indexes', i]));
    if (a.policy) note(a.policy, site, ['assignments', 'policy']);
  }
  return uses;
}

/** One problem per use (the first three; the count says how many more). */
function problemsAt(list: RefUse[], message: string): YamlProblem[] {
  const more = list.length > 3 ? ` (used by ${list.length} sites)` : '';
  return list.slice(0, 3).map((use) => ({
    file: use.site.file,
    line: use.site.lineOf(use.path),
    field: use.path.map(String).join('.'),
    message: `${message}${more}`,
  }));
}

function problemsText(problems: YamlProblem[]): string {
  const [first, ...rest] = problems;
  return [formatProblem(first as YamlProblem), ...rest.map((p) => `  ${formatProblem(p)}`)].join('\n');
}

/**
 * Resolves every distinct ref once; throws one UserError naming each missing ref's uses, then one
 * naming each model ref whose role cannot be served as a site's model (an embedder: model-role.ts).
 */
async function resolveAll(desired: DeclaredSite[], resolveRef: RefResolver): Promise<Map<string, string>> {
  const uses = refUses(desired);
  const refs = [...uses.keys()];
  const found = await Promise.all(refs.map((r) => resolveRef(r)));
  const resolved = new Map<string, string>();
  const missing: YamlProblem[] = [];
  const wrongRole: YamlProblem[] = [];
  refs.forEach((ref, i) => {
    const list = uses.get(ref) ?? [];
    const hit = found[i];
    if (hit === undefined) {
      missing.push(...problemsAt(list, `${ref} is not in the registry`));
      return;
    }
    resolved.set(ref, hit.digest);
    // Model refs only ever sit in the model slot (the schema checks slot kinds).
    const roleProblem = refKind(ref) === 'model' ? siteModelRoleProblem(ref, hit.role) : undefined;
    if (roleProblem) wrongRole.push(...problemsAt(list, roleProblem));
  });
  if (missing.length > 0) {
    throw new UserError(problemsText(missing), {
      code: 'E_ARTIFACT_MISSING',
      suggestion: 'publish the artifact first (`edgectl publish artifact <dir>`), or fix the ref',
      details: { problems: missing },
    });
  }
  if (wrongRole.length > 0) {
    throw new UserError(problemsText(wrongRole), {
      code: SITE_MODEL_ROLE_CODE,
      suggestion: SITE_MODEL_ROLE_FIX,
      details: { problems: wrongRole },
    });
  }
  return resolved;
}

/** Equality of JSON values as canonical JSON sees it (undefined members do not count). */
function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const x = a as Record<string, unknown>;
  const y = b as Record<string, unknown>;
  const keys = new Set([...Object.keys(x), ...Object.keys(y)]);
  for (const k of keys) if (!sameJson(x[k], y[k])) return false;
  return true;
}

function flatten(value: unknown, prefix: string, out: Map<string, string>): void {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
  } else if (value !== undefined) {
    out.set(prefix, typeof value === 'string' ? value : JSON.stringify(value));
  }
}

function declarationChanges(
  from: SiteDeclaration | undefined,
  to: SiteDeclaration | undefined,
): FieldChange[] {
  const a = new Map<string, string>();
  const b = new Map<string, string>();
  if (from) flatten(from, '', a);
  if (to) flatten(to, '', b);
  a.delete('name');
  b.delete('name');
  const fields = [...new Set([...a.keys(), ...b.keys()])].sort();
  const out: FieldChange[] = [];
  for (const f of fields) {
    const x = a.get(f);
    const y = b.get(f);
    if (x === y) continue;
    out.push({ field: f, ...(x !== undefined ? { from: x } : {}), ...(y !== undefined ? { to: y } : {}) });
  }
  return out;
}

function show(r: ResolvedRef | undefined): string | undefined {
  return r ? `${r.ref} (${r.manifestDigest.slice(0, 19)}…)` : undefined;
}

function sameRef(x: ResolvedRef | undefined, y: ResolvedRef | undefined): boolean {
  return x?.ref === y?.ref && x?.manifestDigest === y?.manifestDigest;
}

interface OpGroups {
  assigns: Map<string, AssignOp>;
  unassigns: Map<string, UnassignOp>;
}

function addAssign(g: OpGroups, site: string, slot: Slot, r: ResolvedRef): void {
  const key = `${slot}\u0000${r.ref}\u0000${r.manifestDigest}`;
  const op = g.assigns.get(key);
  if (op) op.sites.push(site);
  else
    g.assigns.set(key, { op: 'assign', sites: [site], slot, ref: r.ref, manifestDigest: r.manifestDigest });
}

function addUnassign(g: OpGroups, site: string, slot: Slot, name?: string): void {
  const key = `${slot}\u0000${name ?? ''}`;
  const op = g.unassigns.get(key);
  if (op) op.sites.push(site);
  else g.unassigns.set(key, { op: 'unassign', sites: [site], slot, ...(name !== undefined ? { name } : {}) });
}

/** Diffs one site's assignments, adding ops to the groups and returning the field changes. */
function assignmentChanges(
  site: string,
  cur: SiteAssignments,
  want: SiteAssignments,
  g: OpGroups,
): FieldChange[] {
  const out: FieldChange[] = [];
  const change = (field: string, x: ResolvedRef | undefined, y: ResolvedRef | undefined) => {
    const from = show(x);
    const to = show(y);
    out.push({ field, ...(from ? { from } : {}), ...(to ? { to } : {}) });
  };
  const single = (slot: 'model' | 'policy') => {
    const x = cur[slot];
    const y = want[slot];
    if (sameRef(x, y)) return;
    if (y) addAssign(g, site, slot, y);
    else addUnassign(g, site, slot);
    change(slot, x, y);
  };
  single('model');
  const list = (slot: 'adapters' | 'indexes') => {
    const curById = new Map((cur[slot] ?? []).map((r) => [refIdentity(r.ref), r]));
    const wantById = new Map((want[slot] ?? []).map((r) => [refIdentity(r.ref), r]));
    for (const id of [...new Set([...curById.keys(), ...wantById.keys()])].sort()) {
      const x = curById.get(id);
      const y = wantById.get(id);
      if (sameRef(x, y)) continue;
      if (y) addAssign(g, site, slot, y);
      else addUnassign(g, site, slot, id.slice(id.indexOf('/') + 1));
      change(`${slot}[${id}]`, x, y);
    }
  };
  list('adapters');
  single('policy');
  list('indexes');
  return out;
}

// `shadow` is never planned (only rollouts assign it); it has an order only to satisfy the type.
const SLOT_ORDER: Record<Slot, number> = { model: 0, adapters: 1, policy: 2, shadow: 3, indexes: 4 };

/**
 * The ops and diff from `current` to the declared sites. `resolveRef` maps a ref to its manifest
 * digest (undefined = not in the registry).
 */
export async function planFleet(
  desired: DeclaredSite[],
  current: FleetState,
  resolveRef: RefResolver,
): Promise<FleetPlan> {
  const digests = await resolveAll(desired, resolveRef);
  const pin = (ref: string): ResolvedRef => ({ ref, manifestDigest: digests.get(ref) as string });
  const wanted = new Map(desired.map((s) => [s.declaration.name, s]));
  const names = [...new Set([...Object.keys(current.sites), ...wanted.keys()])].sort();

  const deletes: FleetOp[] = [];
  const puts: FleetOp[] = [];
  const groups: OpGroups = { assigns: new Map(), unassigns: new Map() };
  const sites: SiteChange[] = [];
  const holds = rolloutHolds(current.rollouts);
  const held: HeldField[] = [];
  for (const name of names) {
    const cur = current.sites[name];
    const want = wanted.get(name);
    if (!want) {
      deletes.push({ op: 'site.delete', site: name });
      sites.push({ site: name, action: 'remove', fields: [] });
      continue;
    }
    const fields: FieldChange[] = [];
    if (!cur || !sameJson(cur.declaration, want.declaration)) {
      puts.push({ op: 'site.put', site: want.declaration });
      fields.push(...declarationChanges(cur?.declaration, want.declaration));
    }
    const wantAssignments: SiteAssignments = { adapters: want.assignments.adapters.map(pin) };
    if (want.assignments.model) wantAssignments.model = pin(want.assignments.model);
    if (want.assignments.policy) wantAssignments.policy = pin(want.assignments.policy);
    const indexes = want.assignments.indexes ?? [];
    if (indexes.length > 0) wantAssignments.indexes = indexes.map(pin);
    const curAssignments = cur?.assignments ?? { adapters: [] };
    const hold = applyRolloutHolds(name, curAssignments, wantAssignments, holds.get(name));
    held.push(...hold.held);
    fields.push(...assignmentChanges(name, curAssignments, hold.want, groups));
    if (!cur) sites.push({ site: name, action: 'add', fields });
    else if (fields.length > 0) sites.push({ site: name, action: 'change', fields });
  }
  const assigns = [...groups.assigns.values()].sort(
    (x, y) => SLOT_ORDER[x.slot] - SLOT_ORDER[y.slot] || (x.ref < y.ref ? -1 : x.ref > y.ref ? 1 : 0),
  );
  const unassigns = [...groups.unassigns.values()].sort(
    (x, y) => SLOT_ORDER[x.slot] - SLOT_ORDER[y.slot] || ((x.name ?? '') < (y.name ?? '') ? -1 : 1),
  );
  const count = (action: SiteChange['action']) => sites.filter((s) => s.action === action).length;
  return {
    ops: [...deletes, ...puts, ...assigns, ...unassigns],
    sites,
    summary: { add: count('add'), change: count('change'), remove: count('remove') },
    ...(held.length > 0 ? { held } : {}),
  };
}

/** Human lines for a plan: one block per site, then a summary line. */
export function renderPlan(plan: FleetPlan): string[] {
  const lines: string[] = [];
  const mark = { add: '+', change: '~', remove: '-' } as const;
  for (const s of plan.sites) {
    lines.push(
      `${mark[s.action]} site ${s.site}${s.action === 'remove' ? ' (removed with its assignments)' : ''}`,
    );
    for (const f of s.fields) {
      if (f.from === undefined) lines.push(`    + ${f.field}: ${f.to}`);
      else if (f.to === undefined) lines.push(`    - ${f.field}: ${f.from}`);
      else lines.push(`    ~ ${f.field}: ${f.from} → ${f.to}`);
    }
  }
  for (const h of plan.held ?? []) {
    lines.push(
      `= site ${h.site}: ${h.field} held at ${h.kept ?? '(none)'} by rollout ${h.rollout} (sites/ declares ${h.declared ?? 'none'})`,
    );
  }
  const { add, change, remove } = plan.summary;
  lines.push(
    plan.ops.length === 0
      ? 'No changes: the fleet log matches sites/.'
      : `Plan: ${add} to add, ${change} to change, ${remove} to remove (${plan.ops.length} ops).`,
  );
  return lines;
}
