/**
 * RFC 8785 canonical JSON of one site record, specialized for its known shape. The state digest
 * canonicalizes every site of a fleet (10,000 in the benchmark) whenever a snapshot is read, and
 * the generic serializer (`canonicalize`) spends most of that time discovering and sorting keys it
 * could know in advance. This writes the keys in their canonical order directly and encodes strings
 * with JSON.stringify, exactly as RFC 8785 does for strings.
 *
 * Any value that is not exactly the known shape (an extra field, a non-string where a string is
 * expected) falls back to the generic serializer, so the output is always the canonical JSON of the
 * value; a test checks both agree.
 */
import { canonicalJson } from '../foundation/canonical-json.js';
import type { SiteState } from './state.js';

const str = JSON.stringify;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Own keys whose values are not undefined (canonical JSON omits undefined members). */
function definedKeys(o: Record<string, unknown>): string[] {
  return Object.keys(o).filter((k) => o[k] !== undefined);
}

function onlyKeys(o: Record<string, unknown>, allowed: readonly string[]): boolean {
  return definedKeys(o).every((k) => allowed.includes(k));
}

function stringMap(o: unknown): string | undefined {
  if (!isObject(o)) return undefined;
  const keys = definedKeys(o).sort();
  let out = '{';
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i] as string;
    const v = o[k];
    if (typeof v !== 'string') return undefined;
    out += `${i === 0 ? '' : ','}${str(k)}:${str(v)}`;
  }
  return `${out}}`;
}

/** A record of optional string fields whose names are listed in canonical (sorted) order. */
function fields(o: unknown, sortedNames: readonly string[]): string | undefined {
  if (!isObject(o) || !onlyKeys(o, sortedNames)) return undefined;
  let out = '{';
  let first = true;
  for (const name of sortedNames) {
    const v = o[name];
    if (v === undefined) continue;
    if (typeof v !== 'string') return undefined;
    out += `${first ? '' : ','}"${name}":${str(v)}`;
    first = false;
  }
  return `${out}}`;
}

const RESOLVED = ['manifestDigest', 'ref'] as const;

function resolvedRef(v: unknown): string | undefined {
  const text = fields(v, RESOLVED);
  // Both fields are required for the fast path.
  return text !== undefined &&
    isObject(v) &&
    typeof v.ref === 'string' &&
    typeof v.manifestDigest === 'string'
    ? text
    : undefined;
}

function refList(v: unknown): string | undefined {
  if (!Array.isArray(v)) return undefined;
  const out: string[] = [];
  for (const r of v) {
    const t = resolvedRef(r);
    if (t === undefined) return undefined;
    out.push(t);
  }
  return `[${out.join(',')}]`;
}

function fastSite(site: SiteState): string | undefined {
  const s = site as unknown;
  if (!isObject(s) || !onlyKeys(s, ['assignments', 'declaration'])) return undefined;
  const a = s.assignments;
  const d = s.declaration;
  if (!isObject(a) || !onlyKeys(a, ['adapters', 'indexes', 'model', 'policy', 'shadow'])) return undefined;
  if (!isObject(d) || !onlyKeys(d, ['labels', 'name', 'publicKey', 'runtime'])) return undefined;

  if (!Array.isArray(a.adapters)) return undefined;
  const adapters: string[] = [];
  for (const r of a.adapters) {
    const t = resolvedRef(r);
    if (t === undefined) return undefined;
    adapters.push(t);
  }
  let assignments = `{"adapters":[${adapters.join(',')}]`;
  // Canonical key order: adapters, indexes, model, policy, shadow.
  if (a.indexes !== undefined) {
    const list = refList(a.indexes);
    if (list === undefined) return undefined;
    assignments += `,"indexes":${list}`;
  }
  for (const slot of ['model', 'policy'] as const) {
    if (a[slot] === undefined) continue;
    const t = resolvedRef(a[slot]);
    if (t === undefined) return undefined;
    assignments += `,"${slot}":${t}`;
  }
  if (a.shadow !== undefined) {
    const list = refList(a.shadow);
    if (list === undefined) return undefined;
    assignments += `,"shadow":${list}`;
  }
  assignments += '}';

  if (typeof d.name !== 'string') return undefined;
  const labels = stringMap(d.labels);
  const publicKey = fields(d.publicKey, ['key', 'keyid']);
  const runtime = fields(d.runtime, ['interval', 'listen', 'verifier']);
  if (labels === undefined || publicKey === undefined || runtime === undefined) return undefined;
  const declaration = `{"labels":${labels},"name":${str(d.name)},"publicKey":${publicKey},"runtime":${runtime}}`;
  return `{"assignments":${assignments},"declaration":${declaration}}`;
}

/** Canonical JSON of a site record: the fast path for the known shape, the generic one otherwise. */
export function canonicalSiteJson(site: SiteState): string {
  return fastSite(site) ?? canonicalJson(site);
}
