/**
 * Site label selectors for rollouts (`--sites tier=branch,region=eu`): a comma-separated list of
 * requirements that must all hold. `k=v` (or `k==v`) the label equals, `k!=v` it differs (or is
 * absent), `k in (a|b)` one of, `k` the label exists, `!k` it does not. The special key `name`
 * matches the site's name, so `name in (store-001|store-002)` picks sites explicitly. The empty
 * selector matches every site.
 */
import { UserError } from '../cli/errors.js';

export type Requirement =
  | { key: string; op: 'eq' | 'ne'; value: string }
  | { key: string; op: 'in'; values: string[] }
  | { key: string; op: 'exists' | 'absent' };

const KEY = '[a-z0-9]([a-z0-9._/-]{0,61}[a-z0-9])?';
const VALUE = '[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?';
const EQ_RE = new RegExp(`^(${KEY})\\s*(==|=|!=)\\s*(${VALUE})$`);
const IN_RE = new RegExp(`^(${KEY})\\s+in\\s+\\(([^)]*)\\)$`);
const EXISTS_RE = new RegExp(`^(!?)(${KEY})$`);

function bad(text: string, part: string): UserError {
  return new UserError(`invalid site selector "${text}": cannot read "${part}"`, {
    code: 'E_SELECTOR',
    suggestion:
      'use comma-separated label requirements: tier=branch,region!=us, region in (eu|uk), gpu, !legacy',
  });
}

/** Parses a selector; throws UserError naming the part it cannot read. */
export function parseSelector(text: string): Requirement[] {
  const s = text.trim();
  if (s === '' || s === '*') return [];
  const out: Requirement[] = [];
  // Commas inside `in (...)` lists are not separators, so `|` separates list values.
  for (const raw of s.split(',')) {
    const part = raw.trim();
    let m = EQ_RE.exec(part);
    if (m) {
      out.push({ key: m[1] as string, op: m[3] === '!=' ? 'ne' : 'eq', value: m[4] as string });
      continue;
    }
    m = IN_RE.exec(part);
    if (m) {
      const values = (m[3] as string)
        .split('|')
        .map((v) => v.trim())
        .filter(Boolean);
      if (values.length === 0 || values.some((v) => !new RegExp(`^${VALUE}$`).test(v))) throw bad(text, part);
      out.push({ key: m[1] as string, op: 'in', values });
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
      case 'exists':
        return v !== undefined;
      case 'absent':
        return v === undefined;
    }
  });
}
