/**
 * The fleet state (docs/formats.md "Fleet log"): for every site its declaration and its
 * current assignments (each ref pinned to a manifest digest), plus the rollouts extension point.
 * Owns the state types, the empty (genesis) state, and `stateDigest` = `sha256:` of the state's
 * RFC 8785 canonical JSON.
 *
 * State objects are immutable values: `applyEntry` builds new site objects for what changed and
 * shares the rest. That lets `stateDigest` cache each site's canonical text by object identity, so
 * hashing a 10,000-site state after a one-site change costs a concatenation rather than a full
 * re-canonicalization; the output is byte-identical to canonicalizing the whole state at once
 * (tested), which is what the contract fixes.
 */
import { createHash } from 'node:crypto';
import { canonicalJson } from '../foundation/canonical-json.js';
import { canonicalSiteJson } from './canonical-site.js';
import type { RolloutState } from './rollout-ops.js';
import type { SiteDeclaration } from './site-schema.js';

/** A ref pinned to the digest of the manifest it resolved to when it was assigned. */
export interface ResolvedRef {
  ref: string;
  manifestDigest: string;
}

/**
 * A site's assignments. `adapters` is kept sorted by `<kind>/<name>` and holds at most one version
 * of each adapter, so its order never depends on how a YAML file listed it.
 */
export interface SiteAssignments {
  model?: ResolvedRef;
  adapters: ResolvedRef[];
  policy?: ResolvedRef;
  /**
   * Shadow adapters (rollout shadow steps): same shape and keying as `adapters`; absent rather than
   * empty, so the state digest of a fleet that never used a shadow is unchanged.
   */
  shadow?: ResolvedRef[];
  /** Index artifacts (retrieval), keyed by `index/<name>` like adapters; absent rather than empty. */
  indexes?: ResolvedRef[];
}

export interface SiteState {
  declaration: SiteDeclaration;
  assignments: SiteAssignments;
}

export interface FleetState {
  sites: Record<string, SiteState>;
  /** Rollout state folded from rollout ops; absent until the first rollout op (see rollout-ops.ts). */
  rollouts?: Record<string, RolloutState>;
}

export function emptyFleetState(): FleetState {
  return { sites: {} };
}

const siteMember = new WeakMap<SiteState, Buffer>();
const COMMA = Buffer.from(',');

/**
 * UTF-8 of the member `"<name>":<canonical site>` of the `sites` object, cached by object identity.
 * Cached as bytes with the key included: hashing strings would re-flatten and re-encode every
 * site on every digest, which costs several times the hash itself. A site's key in `sites` is
 * always its declaration's name (applyOps and snapshot parsing keep that invariant).
 */
function siteMemberBytes(name: string, site: SiteState): Buffer {
  let bytes = siteMember.get(site);
  if (bytes === undefined) {
    bytes = Buffer.from(`${JSON.stringify(name)}:${canonicalSiteJson(site)}`, 'utf8');
    siteMember.set(site, bytes);
  }
  return bytes;
}

/**
 * The canonical JSON of the state in pieces. RFC 8785 orders object keys by UTF-16 code units,
 * which is what the default Array#sort does for strings; `rollouts` sorts before `sites`, and
 * `JSON.stringify` of a key is its canonical form.
 */
function canonicalPieces(state: FleetState): Buffer[] {
  const open =
    state.rollouts !== undefined ? `{"rollouts":${canonicalJson(state.rollouts)},"sites":{` : '{"sites":{';
  const names = Object.keys(state.sites).sort();
  const pieces: Buffer[] = [Buffer.from(open, 'utf8')];
  for (let i = 0; i < names.length; i++) {
    const name = names[i] as string;
    if (i > 0) pieces.push(COMMA);
    pieces.push(siteMemberBytes(name, state.sites[name] as SiteState));
  }
  pieces.push(Buffer.from('}}'));
  return pieces;
}

/** The canonical JSON of a state (RFC 8785) as UTF-8 bytes. */
export function canonicalStateBytes(state: FleetState): Buffer {
  return Buffer.concat(canonicalPieces(state));
}

/** The canonical JSON text of a state (RFC 8785). */
export function canonicalState(state: FleetState): string {
  return canonicalStateBytes(state).toString('utf8');
}

/** `sha256:<hex>` of the state's canonical JSON. */
export function stateDigest(state: FleetState): string {
  // One native call over one buffer: 10,000 small update() calls cost more than the copy.
  return `sha256:${createHash('sha256').update(canonicalStateBytes(state)).digest('hex')}`;
}

/** Deep-freezes a site record so the identity cache above can never go stale. */
export function freezeSite(site: SiteState): SiteState {
  const d = site.declaration;
  Object.freeze(d.labels);
  Object.freeze(d.publicKey);
  Object.freeze(d.runtime);
  Object.freeze(d);
  const a = site.assignments;
  if (a.model) Object.freeze(a.model);
  if (a.policy) Object.freeze(a.policy);
  a.adapters.forEach((r) => Object.freeze(r));
  Object.freeze(a.adapters);
  for (const list of [a.shadow, a.indexes]) {
    if (!list) continue;
    list.forEach((r) => Object.freeze(r));
    Object.freeze(list);
  }
  Object.freeze(a);
  return Object.freeze(site);
}
