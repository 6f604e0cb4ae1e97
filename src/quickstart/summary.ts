/**
 * The human summary of a quickstart run: what was served and how (acceptance, tokens per verify
 * round, verifier CPU against cloud-only), what each rollout decided and why, and where to look
 * next. `--json` prints the QuickstartSummary itself.
 */
import type { QuickstartSummary } from './quickstart.js';

const pct = (x: number | null) => (x === null ? 'n/a' : `${(x * 100).toFixed(1)}%`);

export function summaryLines(s: QuickstartSummary, bin = 'edgectl'): string[] {
  const t = s.traffic;
  const routes = Object.entries(t.byRoute)
    .sort((a, b) => b[1] - a[1])
    .map(([r, n]) => `${r} ${n}`)
    .join(', ');
  const lines = [
    '',
    `Quickstart ${s.ok ? 'finished' : 'finished with unexpected rollout results'} in ${s.seconds} s (workspace ${s.workspace}).`,
    '',
    'Serving',
    `  requests            ${t.requests - t.errors - t.rejected} answered (${routes || 'none'}), ${t.errors} errors, ${t.rejected} rejected (429)`,
    `  acceptance          ${pct(t.acceptance)} of ${t.draftTokens} drafted tokens accepted by the verifier`,
    `  tokens per round    ${t.tokensPerRound ?? 'n/a'} tokens per verifier round trip (cloud-only: 1)`,
    `  verifier CPU        ${s.verifierCpu.seconds} s for ${t.completionTokens} tokens` +
      (s.verifierCpu.cloudOnlyEstimateSeconds !== null
        ? `; cloud-only would need ~${s.verifierCpu.cloudOnlyEstimateSeconds} s (${s.verifierCpu.perKTokensCloud} s per 1k tokens, measured): ${pct(s.verifierCpu.saved)} saved`
        : ''),
    '',
    'Rollouts',
  ];
  for (const r of s.rollouts) {
    lines.push(
      `  ${r.ok ? 'ok  ' : 'FAIL'} ${r.candidate}: ${r.outcome} (exit ${r.exitCode}, expected ${r.expected}) in ${r.seconds} s`,
    );
    lines.push(`       why: ${r.reason}`);
    const last = r.judgements.at(-1);
    if (last && last.reason !== r.reason)
      lines.push(`       last judgement (step ${last.step}): ${last.decision}: ${last.reason}`);
  }
  lines.push('');
  if (s.stopped) {
    lines.push(`Stopped the verifier and ${s.sites.length} sites.`);
  } else {
    lines.push(
      `Still running (--keep): verifier ${s.verifier.url}, sites ${s.sites.map((x) => `${x.name} ${x.url}`).join(', ')}.`,
    );
    lines.push(`  cd ${s.workspace} && ${bin} site status store-001 --watch`);
    lines.push(
      `  stop: cd ${s.workspace} && for s in store-001 store-002 store-003; do ${bin} site down $s; done; ${bin} verifier down`,
    );
  }
  lines.push(`Inspect: cd ${s.workspace} && ${bin} fleet log && ${bin} rollout history`);
  return lines;
}
