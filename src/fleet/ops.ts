/**
 * Fleet log ops (docs/formats.md "Fleet log"): their types, their schema for parsing
 * signed entries, and how each one changes the state. Ops are applied in order; each is pure and
 * returns a new state sharing every untouched site object.
 *
 * - `site.put`: create a site or replace its declaration; a new site starts with no assignments,
 *   an existing one keeps its assignments.
 * - `site.delete`: remove a site and its assignments.
 * - `assign`: set one slot on a list of sites to a ref pinned to its manifest digest. `model` and
 *   `policy` are replaced. `adapters` is a set keyed by `<kind>/<name>`: assigning an adapter
 *   replaces the version of the same adapter if the site has one, otherwise adds it; the list stays
 *   sorted by ref. So a rollout of `adapter/support@1.1.0` is one `assign` op.
 * - `unassign`: clear `model` or `policy`, or remove the adapter named `name` (`adapter/<name>`)
 *   from `adapters`. The site must have it.
 * - `shadow` behaves exactly like `adapters` (a set keyed by name) for both ops; only rollouts'
 *   shadow steps assign it. An empty shadow list is dropped, so it never shows in the state.
 * - `indexes` is a set of `index` refs keyed by name, like `adapters`; an empty list is dropped
 *   like `shadow`'s, so fleets without indexes keep their state digest.
 * - `rollout.*`: handed to the rollout reducer (rollout-ops.ts).
 *
 * An op that does not fit the state (unknown site, wrong ref kind, missing adapter) makes the whole
 * entry invalid: VerificationError, since a signed entry that cannot be applied must be refused.
 */
import { z } from 'zod';
import { VerificationError } from '../foundation/errors.js';
import { isDigest } from '../foundation/digest.js';
import { refIdentity, refProblem } from './refs.js';
import {
  defaultRolloutReducer,
  jsonValueSchema,
  ROLLOUT_OP_NAMES,
  type RolloutOp,
  type RolloutReducer,
  type RolloutState,
} from './rollout-ops.js';
import {
  SITE_NAME_RE,
  SLOT_KIND,
  SLOTS,
  siteDeclarationSchema,
  type SiteDeclaration,
  type Slot,
} from './site-schema.js';
import {
  freezeSite,
  type FleetState,
  type ResolvedRef,
  type SiteAssignments,
  type SiteState,
} from './state.js';

export interface SitePutOp {
  op: 'site.put';
  site: SiteDeclaration;
}
export interface SiteDeleteOp {
  op: 'site.delete';
  site: string;
}
export interface AssignOp {
  op: 'assign';
  sites: string[];
  slot: Slot;
  ref: string;
  manifestDigest: string;
}
export interface UnassignOp {
  op: 'unassign';
  sites: string[];
  slot: Slot;
  /** For `adapters`, `shadow` and `indexes`: the artifact's name (`support` for `adapter/support@...`). */
  name?: string;
}
export type CoreOp = SitePutOp | SiteDeleteOp | AssignOp | UnassignOp;
export type FleetOp = CoreOp | RolloutOp;

export const CORE_OP_NAMES = ['site.put', 'site.delete', 'assign', 'unassign'] as const;

/** Slots holding a list of artifacts keyed by name (adapters, shadow adapters, indexes). */
export function isAdapterList(slot: Slot): slot is 'adapters' | 'shadow' | 'indexes' {
  return slot === 'adapters' || slot === 'shadow' || slot === 'indexes';
}

const siteNames = z.array(z.string().regex(SITE_NAME_RE, 'invalid site name')).min(1);
const slot = z.enum(SLOTS);

const sitePutSchema = z.object({ op: z.literal('site.put'), site: siteDeclarationSchema }).strict();
const siteDeleteSchema = z
  .object({ op: z.literal('site.delete'), site: z.string().regex(SITE_NAME_RE) })
  .strict();
const assignSchema = z
  .object({
    op: z.literal('assign'),
    sites: siteNames,
    slot,
    ref: z.string(),
    manifestDigest: z.string().refine(isDigest, 'must be sha256:<64 hex>'),
  })
  .strict()
  .superRefine((v, ctx) => {
    const problem = refProblem(v.ref, SLOT_KIND[v.slot], v.slot);
    if (problem) ctx.addIssue({ code: 'custom', message: problem, path: ['ref'] });
  });
const unassignSchema = z
  .object({ op: z.literal('unassign'), sites: siteNames, slot, name: z.string().min(1).optional() })
  .strict()
  .superRefine((v, ctx) => {
    if (isAdapterList(v.slot) !== (v.name !== undefined)) {
      ctx.addIssue({
        code: 'custom',
        message: 'name is required for the adapters, shadow and indexes slots and only there',
        path: ['name'],
      });
    }
  });
const rolloutSchema = z
  .object({ op: z.enum(ROLLOUT_OP_NAMES), rollout: z.string().min(1) })
  .catchall(jsonValueSchema);

const KNOWN = new Set<string>([...CORE_OP_NAMES, ...ROLLOUT_OP_NAMES]);

/** Parses one op of a signed entry; `where` prefixes messages (`fleet entry 7: ops[2]`). */
export function parseOp(value: unknown, where: string): FleetOp {
  const name = (value as { op?: unknown } | null)?.op;
  if (typeof name !== 'string' || !KNOWN.has(name)) {
    throw new VerificationError(`${where}: unknown op type ${JSON.stringify(name ?? null)}`, {
      code: 'E_UNSUPPORTED_OP',
      suggestion: `known ops: ${[...KNOWN].join(', ')}; a newer edgectl may have written this entry, upgrade`,
      details: { op: name ?? null },
    });
  }
  const schema =
    name === 'site.put'
      ? sitePutSchema
      : name === 'site.delete'
        ? siteDeleteSchema
        : name === 'assign'
          ? assignSchema
          : name === 'unassign'
            ? unassignSchema
            : rolloutSchema;
  const result = schema.safeParse(value);
  if (!result.success) {
    const issue = result.error.issues[0];
    const field = issue?.path.map(String).join('.') ?? '';
    throw new VerificationError(
      `${where} (${name}): ${field ? `${field}: ` : ''}${issue?.message ?? 'invalid'}`,
      {
        code: 'E_ENTRY_INVALID',
      },
    );
  }
  return result.data as FleetOp;
}

export interface ApplyContext {
  seq: number;
  time: string;
  rolloutReducer?: RolloutReducer;
}

function bad(ctx: ApplyContext, index: number, message: string): VerificationError {
  return new VerificationError(`fleet entry ${ctx.seq}: ops[${index}]: ${message}`, {
    code: 'E_ENTRY_INVALID',
    details: { seq: ctx.seq, op: index },
  });
}

type ListSlot = 'adapters' | 'shadow' | 'indexes';

/** Assignments with empty optional lists (`shadow`, `indexes`) dropped, so they never show in the state. */
function assignments(parts: {
  model?: ResolvedRef | undefined;
  adapters: ResolvedRef[];
  policy?: ResolvedRef | undefined;
  shadow?: ResolvedRef[] | undefined;
  indexes?: ResolvedRef[] | undefined;
}): SiteAssignments {
  const a: SiteAssignments = { adapters: parts.adapters };
  if (parts.model) a.model = parts.model;
  if (parts.policy) a.policy = parts.policy;
  if (parts.shadow && parts.shadow.length > 0) a.shadow = parts.shadow;
  if (parts.indexes && parts.indexes.length > 0) a.indexes = parts.indexes;
  return a;
}

function listOf(a: SiteAssignments, slot: ListSlot): ResolvedRef[] {
  return slot === 'adapters' ? a.adapters : (a[slot] ?? []);
}

function byRef(x: ResolvedRef, y: ResolvedRef): number {
  return x.ref < y.ref ? -1 : x.ref > y.ref ? 1 : 0;
}

function assignOne(site: SiteState, op: AssignOp): SiteState {
  const a = site.assignments;
  const value: ResolvedRef = { ref: op.ref, manifestDigest: op.manifestDigest };
  let next: SiteAssignments;
  if (op.slot === 'model' || op.slot === 'policy') next = assignments({ ...a, [op.slot]: value });
  else {
    const id = refIdentity(op.ref);
    const list = listOf(a, op.slot).filter((r) => refIdentity(r.ref) !== id);
    list.push(value);
    list.sort(byRef);
    next = assignments({ ...a, [op.slot]: list });
  }
  return { declaration: site.declaration, assignments: next };
}

const LIST_LABEL: Record<ListSlot, string> = {
  adapters: 'adapter',
  shadow: 'shadow adapter',
  indexes: 'index',
};

/** The site without the assignment, or why it cannot be removed. */
function unassignOne(site: SiteState, op: UnassignOp): SiteState | string {
  const a = site.assignments;
  let next: SiteAssignments;
  if (isAdapterList(op.slot)) {
    const id = `${SLOT_KIND[op.slot]}/${op.name ?? ''}`;
    const before = listOf(a, op.slot);
    const list = before.filter((r) => refIdentity(r.ref) !== id);
    if (list.length === before.length) return `has no ${LIST_LABEL[op.slot]} ${id}`;
    next = assignments({ ...a, [op.slot]: list });
  } else {
    if (a[op.slot] === undefined) return `has no ${op.slot} assigned`;
    next = assignments({ ...a, [op.slot]: undefined });
  }
  return { declaration: site.declaration, assignments: next };
}

/** A copy the state can freeze without freezing the op it came from. */
function copyDeclaration(d: SiteDeclaration): SiteDeclaration {
  return { name: d.name, labels: { ...d.labels }, publicKey: { ...d.publicKey }, runtime: { ...d.runtime } };
}

/**
 * A state being built: `sites` is a private copy that ops may modify in place. Several entries can
 * be folded into one draft (a reader catching up), so a large fleet is copied once, not per entry.
 */
export interface StateDraft {
  sites: Record<string, SiteState>;
  rollouts: Record<string, RolloutState> | undefined;
}

export function draftOf(state: FleetState): StateDraft {
  return { sites: { ...state.sites }, rollouts: state.rollouts };
}

export function stateOf(draft: StateDraft): FleetState {
  return draft.rollouts === undefined
    ? { sites: draft.sites }
    : { sites: draft.sites, rollouts: draft.rollouts };
}

/** Applies ops to a draft. Site records are never modified, only replaced (they are shared). */
export function applyOpsToDraft(draft: StateDraft, ops: readonly FleetOp[], ctx: ApplyContext): void {
  const sites = draft.sites;
  ops.forEach((op, i) => {
    switch (op.op) {
      case 'site.put': {
        const existing = sites[op.site.name];
        sites[op.site.name] = freezeSite({
          declaration: copyDeclaration(op.site),
          assignments: existing ? existing.assignments : { adapters: [] },
        });
        break;
      }
      case 'site.delete':
        if (!sites[op.site]) throw bad(ctx, i, `site.delete: site ${op.site} does not exist`);
        delete sites[op.site];
        break;
      case 'assign':
      case 'unassign':
        for (const name of op.sites) {
          const site = sites[name];
          if (!site) throw bad(ctx, i, `${op.op}: site ${name} does not exist`);
          const next = op.op === 'assign' ? assignOne(site, op) : unassignOne(site, op);
          if (typeof next === 'string') throw bad(ctx, i, `unassign: site ${name} ${next}`);
          sites[name] = freezeSite(next);
        }
        break;
      default: {
        const reducer = ctx.rolloutReducer ?? defaultRolloutReducer;
        draft.rollouts = reducer(draft.rollouts ?? {}, op, { seq: ctx.seq, time: ctx.time });
      }
    }
  });
}

/** Applies the ops of one entry to a state. Pure: the input is not modified. */
export function applyOps(state: FleetState, ops: readonly FleetOp[], ctx: ApplyContext): FleetState {
  const draft = draftOf(state);
  applyOpsToDraft(draft, ops, ctx);
  return stateOf(draft);
}
