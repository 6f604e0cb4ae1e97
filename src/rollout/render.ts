/**
 * Plain-text views of a rollout for people: the report every `rollout` command prints (waves,
 * sites, the judgements with their evidence, the outcome and why), one progress line per
 * controller pass for `--wait` on stderr, and the history table. The live ink view
 * (src/ui/rollout-watch.tsx) shows the same tree; off a TTY these lines are what CI logs show.
 */
import type { Judgement } from './judge/types.js';
import type { TickResult } from './controller.js';
import type { HistoryItem, RolloutReport } from './service.js';

function num(x: number | null | undefined, digits = 3): string {
  if (x === null || x === undefined) return '-';
  if (!Number.isFinite(x)) return x > 0 ? '∞' : '-∞';
  return Math.abs(x) >= 1000 ? x.toExponential(2) : Number(x.toFixed(digits)).toString();
}

/** One line per judgement: verdict, values per arm, evidence against the boundary, samples. */
export function judgementLine(j: Judgement): string {
  const mark = j.verdict === 'pass' ? '✓' : j.verdict === 'fail' ? '✗' : '…';
  return (
    `${mark} ${j.metric}${j.dryRun ? ' (dry run)' : ''}: ${j.verdict}` +
    ` canary ${num(j.value.canary)} vs baseline ${num(j.value.baseline)}` +
    ` | evidence fail ${num(j.evidence.fail)} / pass ${num(j.evidence.pass)} (boundary ${num(j.boundary)})` +
    ` | samples ${j.samples.canary}/${j.samples.baseline}` +
    ` | sites ${j.sites.canary.length}/${j.sites.baseline.length}`
  );
}

const OUTCOME_TEXT: Record<RolloutReport['outcome'], string> = {
  running: 'running',
  promoted: 'PROMOTED',
  'rolled-back': 'ROLLED BACK',
  paused: 'PAUSED',
  timeout: 'TIMED OUT',
  undone: 'UNDONE',
};

export function renderReport(r: RolloutReport, opts: { events?: boolean } = {}): string[] {
  const v = r.rollout;
  const lines: string[] = [];
  lines.push(
    `Rollout ${v.id}: ${v.candidate} (${v.slot}) on ${v.waves.at(-1)?.size ?? 0} sites [${v.selector || 'all sites'}] — ${OUTCOME_TEXT[r.outcome]} (exit ${r.exitCode})`,
  );
  lines.push(`  ${r.reason}`);
  const live = new Map((r.live?.sites ?? []).map((s) => [s.site, s]));
  if (v.shadow) {
    const mark = v.shadow.state === 'done' ? '✓' : v.shadow.state === 'current' ? '▶' : '✗';
    lines.push(
      `  ${mark} shadow step: ${v.shadow.sites.length} site${v.shadow.sites.length === 1 ? '' : 's'} run the candidate in shadow, never serving it (${v.shadow.state})`,
    );
    if (v.shadow.state !== 'done')
      for (const s of v.shadow.sites) lines.push(`      ${s}: shadow ${v.candidate}`);
  }
  for (const w of v.waves) {
    const mark = w.state === 'done' ? '✓' : w.state === 'current' ? '▶' : ' ';
    lines.push(`  ${mark} wave ${w.step}: ${w.size} site${w.size === 1 ? '' : 's'} (${w.state})`);
    for (const s of w.sites) {
      const l = live.get(s);
      const on = v.canary.includes(s) ? v.candidate : (v.previous[s] ?? '(none)');
      const stats = l
        ? ` — ${l.windows} windows, ${l.requests} requests, ${l.errors} errors, acceptance ${l.acceptance === null ? '-' : l.acceptance.toFixed(3)}`
        : '';
      lines.push(`      ${s}: ${on}${stats}`);
    }
  }
  const judgements = r.live?.judgements ?? r.judgements.at(-1)?.judgements ?? [];
  if (judgements.length > 0) {
    lines.push(
      r.live
        ? `  Current step (judged now, not logged):`
        : `  Last judgement (${r.judgements.at(-1)?.shadow ? 'shadow step' : `step ${r.judgements.at(-1)?.step}`}):`,
    );
    for (const j of judgements) {
      lines.push(`    ${judgementLine(j)}`);
      lines.push(`        ${j.reason}`);
    }
  }
  if (opts.events) {
    lines.push('  Events:');
    for (const e of r.events) lines.push(`    #${e.seq} ${e.time} ${e.summary}`);
  }
  return lines;
}

/** A progress line for one controller pass (stderr while waiting). */
export function tickLine(t: TickResult): string {
  const r = t.rollout;
  const head = `[${r.id}] ${r.phase === 'shadow' && r.step === 0 ? 'shadow step' : `step ${r.step}/${r.waves.length}`}`;
  if (!t.judged || !t.decided) return `${head}: ${r.status}${r.reason ? `: ${r.reason}` : ''}`;
  const verdicts = t.judged.judgements.map((j) => `${j.metric}=${j.verdict}`).join(' ');
  const wrote =
    t.wrote !== null ? ` (logged at seq ${t.wrote})` : t.raced ? ' (another controller acted first)' : '';
  return `${head}: ${t.decided.decision}${wrote} — ${verdicts} — windows ${t.evidence?.windows.canary ?? 0}/${t.evidence?.windows.baseline ?? 0}: ${t.decided.reason}`;
}

export function renderHistory(items: readonly HistoryItem[]): string[] {
  if (items.length === 0) return ['No rollouts in the fleet log.'];
  return items.map(
    (r) =>
      `${r.id}  ${r.status.padEnd(8)}  ${r.candidate}  step ${r.step}/${r.steps}  ${r.sites} sites [${r.selector || 'all'}]  ${r.startedAt}${r.endedAt ? ` → ${r.endedAt}` : ''}${r.reason ? `  ${r.reason}` : ''}`,
  );
}
