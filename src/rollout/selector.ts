/**
 * Site label selectors for rollouts (`--sites tier=branch,region=eu`), in kubectl's syntax: a
 * comma-separated list of requirements that must all hold. `k=v` (or `k==v`) the label equals,
 * `k!=v` it differs (or is absent), `k in (a,b)` one of, `k notin (a,b)` none of (or absent), `k`
 * the label exists, `!k` it does not. Commas inside `(...)` separate values, not requirements; `|`
 * is accepted there too (the form older specs use). The special key `name` matches the site's
 * name, so `name in (store-001,store-002)` picks sites explicitly. The empty selector matches every
 * site.
 */
import { UserError } from '../foundation/errors.js';

export type Requirement =
  | { key: string; op: 'eq' | 'ne'; value: string }
  | { key: string; op: 'in' | 'notin'; values: string[] }
  | { key: string; op: 'exists' | 'absent' };

const KEY = '[a-z0-9]([a-z0-9._/-]{0,61}[a-z0-9])?';
const VALUE = '[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?';
const EQ_RE = new RegExp(`^(${KEY})\\s*(==|=|!=)\\s*(${VALUE})$`);
const IN_RE = new RegExp(`^(${KEY})\\s+(in|notin)\\s*\\(([^)]*)\\)$`);
const EXISTS_RE = new RegExp(`^(!?)(${KEY})$`);

function bad(text: string, part: string): UserError {
  return new UserError(`invalid site selector "${text}": cannot read "${part}"`, {
    code: 'E_SELECTOR',
    suggestion:
      'use comma-separated label requirements: tier=branch,region!=us, region in (eu,uk), tier notin (lab), gpu, !legacy',
  });
}

/** Splits on the commas outside parentheses (those inside separate the values of `in`/`notin`). */
function splitTopLevel(s: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '(') depth++;
    else if (c === ')') depth = Math.max(0, depth - 1);
    else if (c === ',' && depth === 0) {
      parts.push(s.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(s.slice(start));
  return parts;
}

/** Parses a selector; throws UserError naming the part it cannot read. */
export function parseSelector(text: string): Requirement[] {
  const s = text.trim();
  if (s === '' || s === '*') return [];
  const out: Requirement[] = [];
  for (const raw of splitTopLevel(s)) {
    const part = raw.trim();
    let m = EQ_RE.exec(part);
    if (m) {
      out.push({ key: m[1] as string, op: m[3] === '!=' ? 'ne' : 'eq', value: m[4] as string });
      continue;
    }
    m = IN_RE.exec(part);
    if (m) {
      const values = (m[4] as string)
        .split(/[|,]/)
        .map((v) => v.trim())
        .filter(Boolean);
      if (values.length === 0 || values.some((v) => !new RegExp(`^${VALUE}$`).test(v))) throw bad(text, part);
      out.push({ key: m[1] as string, op: m[3] === 'notin' ? 'notin' : 'in', values });
      continue;
    }
    m = EXISTS_RE.exec(part);
    if (m) {
      out.push({ key: m[2] as string, op: m[1] === '!' ? 'absent' : 'exists' });
      continue;
    }
    throw bad(text, part);
  }
  return out;
}

/** Whether a site (its name and labels) satisfies every requirement. */
export function matches(
  reqs: readonly Requirement[],
  name: string,
  labels: Readonly<Record<string, string>>,
): boolean {
  const get = (k: string) => (k === 'name' ? name : Object.hasOwn(labels, k) ? labels[k] : undefined);
  return reqs.every((r) => {
    const v = get(r.key);
    switch (r.op) {
      case 'eq':
        return v === r.value;
      case 'ne':
        return v !== r.value;
      case 'in':
        return v !== undefined && r.values.includes(v);
      case 'notin':
        return v === undefined || !r.values.includes(v);
      case 'exists':
        return v !== undefined;
      case 'absent':
        return v === undefined;
    }
  });
}
