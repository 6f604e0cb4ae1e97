/**
 * Plain-text rendering of the fleet view: one table row per cohort (sites reporting, versions
 * running, freshness, traffic, acceptance, TTFT p95, errors, verifier passes saved), then the
 * active rollouts and the sites that are stale or not running what they are assigned.
 */
import type { FleetStatusResult } from './service.js';

const pct = (v: number | null) => (v === null ? '-' : `${(v * 100).toFixed(1)}%`);
const ms = (v: number | null) => (v === null ? '-' : v >= 1000 ? `${(v / 1000).toFixed(1)}s` : `${v}ms`);
const age = (s: number | null) =>
  s === null ? 'never' : s < 120 ? `${s}s` : s < 7200 ? `${Math.round(s / 60)}m` : `${Math.round(s / 3600)}h`;

function table(rows: string[][]): string[] {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows.map((r) =>
    r
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd(),
  );
}

export function renderFleetStatus(r: FleetStatusResult): string[] {
  const lines = [
    `Fleet at seq ${r.headSeq}, ${r.cohorts.length} cohort(s) by ${r.by}, last ${age(r.windowSeconds)} of feedback`,
    '',
  ];
  const rows = [
    [
      'COHORT',
      'SITES',
      'STALE',
      'LAST REPORT',
      'LAG',
      'REQUESTS',
      'TOKENS/S',
      'ACCEPTANCE',
      'TTFT P95',
      'ERRORS',
      'VIOLATIONS',
      'ABSTAINED',
      'PASSES SAVED',
    ],
  ];
  for (const c of r.cohorts) {
    const req = c.requests.edge + c.requests.speculative + c.requests.cloud;
    rows.push([
      c.cohort,
      `${c.reporting}/${c.sites}`,
      String(c.stale),
      age(c.freshness.oldestReportAgeSeconds),
      c.freshness.maxSeqLag === null ? '-' : String(c.freshness.maxSeqLag),
      String(req),
      String(c.tokensPerSecond),
      pct(c.acceptance),
      ms(c.ttftP95Ms),
      `${c.errors} (${pct(c.errorRate)})`,
      String(c.violations),
      String(c.abstentions),
      pct(c.passesSaved),
    ]);
  }
  lines.push(...table(rows), '');
  for (const c of r.cohorts) {
    const versions = c.versions.map((v) => `${v.ref} (${v.sites})`).join(', ');
    lines.push(`${c.cohort}: running ${versions || 'nothing reported'}`);
    for (const ro of c.rollouts)
      lines.push(
        `  rollout ${ro.id} ${ro.status}: ${ro.candidate} on ${ro.canary} canary, ${ro.baseline} baseline site(s)`,
      );
  }
  const odd = r.sites.filter((s) => s.stale || !s.inSync);
  if (odd.length) {
    lines.push('', 'Sites to look at:');
    for (const s of odd) {
      const why = [
        !s.stale
          ? ''
          : s.reportAgeSeconds === null
            ? 'never reported'
            : `last report ${age(s.reportAgeSeconds)} ago`,
        s.inSync ? '' : 'not running its assignments',
      ]
        .filter(Boolean)
        .join(', ');
      lines.push(`  ${s.site} (${s.cohort}): ${why}${s.seqLag ? `, ${s.seqLag} entries behind` : ''}`);
    }
  }
  if (r.rejected.length)
    lines.push('', `${r.rejected.length} feedback report(s) ignored: failed verification (see --json)`);
  return lines;
}
