/**
 * The metric names a PromQL expression reads, found lexically: string literals, label matchers,
 * range and subquery brackets, grouping clauses and number literals are removed, then every
 * remaining identifier that is not a function call or a keyword is a metric name (recording rule
 * names contain `:`). Enough for the expressions this pack writes; not a full PromQL parser (the
 * test hands every expression to promtool for that).
 */
const KEYWORDS = new Set([
  'and',
  'or',
  'unless',
  'bool',
  'offset',
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'inf',
  'nan',
  'atan2',
]);

export function metricNames(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/(^|[^a-zA-Z_:0-9])[0-9]+(\.[0-9]+)?(e[+-]?[0-9]+)?/g, '$1 ');
  const names = new Set<string>();
  for (const m of stripped.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?/g)) {
    const name = m[1] as string;
    if (m[2] || KEYWORDS.has(name.toLowerCase())) continue;
    names.add(name);
  }
  return [...names].sort();
}
