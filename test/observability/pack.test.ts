/**
 * The observability pack checked by Prometheus' own tool and against real daemons: the committed
 * docs/observability/ files equal what `observability export` generates; promtool accepts the rule
 * file (`check rules`) and its unit tests pass (`test rules`); every dashboard query parses (each is
 * handed to promtool as a recording rule); and every metric a rule or panel reads is exported by a
 * real site daemon (sync agent, runtime, ONNX draft) or a real verifier scraped here after a
 * speculative request, or is recorded by a rule; the site serves an index under a policy with a
 * staleness budget, so the index gauges the Indexes panels and EdgectlIndexStale read are sampled,
 * not only declared. promtool comes from Debian's `prometheus` package
 * (.ci/run installs it); without it these checks are skipped locally and fail under CI.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { FsStore } from '../../src/registry/fs-store.js';
import { runSiteDaemon, type SiteDaemon } from '../../src/runtime/daemon/daemon.js';
import { daemonLog } from '../../src/runtime/daemon/log.js';
import type { RunningVerifier } from '../../src/verifier/server/server.js';
import { dashboardQueries } from '../../src/observability/dashboard.js';
import { exportObservability, observabilityPack } from '../../src/observability/export.js';
import { metricNames } from '../../src/observability/promql-names.js';
import { buildRules } from '../../src/observability/rules.js';
import { NODE, REPO_ROOT, RUN_JS } from '../helpers/cli.js';
import { daemonWorld, REFS } from '../runtime/daemon/world.js';
import { embedderModelDir, indexDir } from '../index-site/fixtures.js';
import { policyVariant } from '../site/fixtures.js';
import { startTestVerifier } from '../verifier/helpers.js';

const promtool = spawnSync('promtool', ['--version']).status === 0;
const needsPromtool = it.skipIf(!promtool && !process.env.CI);

function runPromtool(args: string[], cwd: string): string {
  const r = spawnSync('promtool', args, { cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`promtool ${args.join(' ')} failed:\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

/** Grafana variables replaced by values that keep the query's shape. */
function concrete(q: string): string {
  return q.replaceAll('$cohort', 'region').replaceAll('$region', '.*').replaceAll('$tier', '.*');
}

const recorded = new Set(
  buildRules().groups.flatMap((g) => g.rules.flatMap((r) => ('record' in r ? [r.record] : []))),
);

it('the committed pack under docs/observability is what export writes', () => {
  for (const [name, text] of Object.entries(observabilityPack()))
    expect(
      readFileSync(join(REPO_ROOT, 'docs/observability', name), 'utf8'),
      `${name}: run npm run docs:observability`,
    ).toBe(text);
});

needsPromtool('promtool checks the rules and passes their unit tests', () => {
  const dir = mkdtempSync(join(tmpdir(), 'edgectl-obs-'));
  exportObservability(dir);
  expect(runPromtool(['check', 'rules', 'edgectl-rules.yml'], dir)).toMatch(/SUCCESS: \d+ rules found/);
  expect(runPromtool(['test', 'rules', 'edgectl-rules.test.yml'], dir)).toMatch(/SUCCESS/);
});

needsPromtool('every dashboard query parses', () => {
  const dir = mkdtempSync(join(tmpdir(), 'edgectl-obs-q-'));
  const queries = dashboardQueries();
  expect(queries.length).toBeGreaterThan(15);
  const rules = queries.map((q, i) => ({ record: `dashboard:query_${i}:check`, expr: concrete(q) }));
  writeFileSync(join(dir, 'queries.yml'), stringify({ groups: [{ name: 'dashboard', rules }] }));
  expect(runPromtool(['check', 'rules', 'queries.yml'], dir)).toContain(
    `SUCCESS: ${queries.length} rules found`,
  );
  // And a broken query is caught (the check can fail).
  writeFileSync(
    join(dir, 'bad.yml'),
    stringify({ groups: [{ name: 'x', rules: [{ record: 'a:b:c', expr: 'sum by (x (y)' }] }] }),
  );
  expect(() => runPromtool(['check', 'rules', 'bad.yml'], dir)).toThrow(/failed/);
});

/** Metric names a /metrics text declares (TYPE lines, histogram series expanded) or samples. */
function exported(text: string): Set<string> {
  const names = new Set<string>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)/.exec(line);
    if (type) {
      const [, name, kind] = type as unknown as [string, string, string];
      names.add(name);
      if (kind === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(`${name}${s}`);
    } else if (line && !line.startsWith('#')) names.add(line.split(/[{ ]/)[0] as string);
  }
  return names;
}

describe('metric names against real daemons', () => {
  let verifier: RunningVerifier;
  let daemon: SiteDaemon;
  let siteText = '';
  let verifierText = '';

  beforeAll(async () => {
    verifier = await startTestVerifier();
    const store = new FsStore(join(mkdtempSync(join(tmpdir(), 'edgectl-obs-reg-')), 'registry'));
    const w = await daemonWorld(store, { publishExtra: false });
    const src = mkdtempSync(join(tmpdir(), 'edgectl-obs-src-'));
    await w.publish(embedderModelDir(src));
    await w.publish(await indexDir(src));
    const policy = policyVariant(src, '1.1.0');
    // A staleness budget (the index budget gauge) and a block rule one retrieved passage matches
    // (the withheld-passages series); the user's text does not match it.
    const base = readFileSync(join(policy, 'policy.yaml'), 'utf8').replace(
      '\nblock:\n',
      "\nblock:\n  - name: obs-withheld\n    keywords: ['applies to']\n    message: withheld\n",
    );
    writeFileSync(join(policy, 'policy.yaml'), `${base}\nretrieval:\n  maxAge: 3650d\n`);
    await w.publish(policy);
    await w.declare({
      adapters: [REFS.support100],
      verifier: verifier.url,
      labels: { region: 'eu-west', tier: 'branch' },
      policyRef: 'policy/default@1.1.0',
      indexes: ['index/kb@1.0.0'],
    });
    daemon = await runSiteDaemon({
      site: w.site,
      dataDir: w.dataDir,
      registryUrl: store.url,
      projectTrustPath: w.trustPath,
      listen: '127.0.0.1:0',
      bearerToken: undefined,
      syncIntervalMs: 3_600_000,
      feedbackWindowMs: 60_000,
      verifierUrl: undefined,
      log: daemonLog('error', () => undefined),
    });
    const res = await fetch(`${daemon.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-edgectl-route': 'speculative' },
      body: JSON.stringify({
        model: 'draft:support',
        messages: [{ role: 'user', content: 'Where is my order?' }],
        max_tokens: 12,
      }),
    });
    expect(res.status).toBe(200);
    // A RAG request: the retrieval series of the Indexes row get a sample.
    const rag = await fetch(`${daemon.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'draft',
        messages: [{ role: 'user', content: 'The receipt printer is jammed' }],
        max_tokens: 4,
        edgectl: { route: 'edge', retrieval: { index: 'kb', k: 2 } },
      }),
    });
    expect(rag.status).toBe(200);
    siteText = await (await fetch(`${daemon.url}/metrics`)).text();
    verifierText = await (await fetch(`${verifier.url}/metrics`)).text();
  }, 120_000);

  afterAll(async () => {
    await daemon?.close();
    await verifier?.close();
  });

  it('every metric in the rules and the dashboard is exported by a daemon or recorded by a rule', () => {
    const available = new Set([...exported(siteText), ...exported(verifierText), ...recorded]);
    const used = new Set([
      ...dashboardQueries().flatMap((q) => metricNames(concrete(q))),
      ...buildRules().groups.flatMap((g) => g.rules.flatMap((r) => metricNames(r.expr))),
    ]);
    expect(used.size).toBeGreaterThan(20);
    expect([...used].filter((n) => !available.has(n))).toEqual([]);
    expect(available.has('edgectl_no_such_metric')).toBe(false);
  });

  it('the index gauges and retrieval series the Indexes row and the stale-index alert read have samples', () => {
    const kb = '\\{index="kb",ref="index/kb@1\\.0\\.0"\\}';
    expect(siteText).toMatch(new RegExp(`^edgectl_index_age_seconds${kb} \\d`, 'm'));
    expect(siteText).toMatch(new RegExp(`^edgectl_index_passages${kb} [1-9]`, 'm'));
    expect(siteText).toMatch(new RegExp(`^edgectl_index_max_age_seconds${kb} 315360000$`, 'm'));
    const sampled = new Set(
      siteText.split('\n').flatMap((l) => (l && !l.startsWith('#') ? [l.split(/[{ ]/)[0] as string] : [])),
    );
    const indexMetrics = [
      ...dashboardQueries().flatMap((q) => metricNames(concrete(q))),
      ...buildRules().groups.flatMap((g) => g.rules.flatMap((r) => metricNames(r.expr))),
    ].filter((n) => n.startsWith('edgectl_index_'));
    expect(new Set(indexMetrics)).toEqual(
      new Set(['edgectl_index_age_seconds', 'edgectl_index_passages', 'edgectl_index_max_age_seconds']),
    );
    expect(indexMetrics.filter((n) => !sampled.has(n))).toEqual([]);
    // The retrieval panels read these (through the cohort recording rules).
    expect(siteText).toMatch(/^edgectl_runtime_retrievals_total\{result="hit"\} 1$/m);
    expect(siteText).toMatch(/^edgectl_runtime_retrieval_seconds_count 1$/m);
    expect(siteText).toMatch(/^edgectl_runtime_retrieval_withheld_total\{rule="obs-withheld"\} [1-9]/m);
    const recordedFrom = buildRules()
      .groups.flatMap((g) => g.rules)
      .filter((r) => 'record' in r && /retriev/.test(r.record))
      .flatMap((r) => metricNames(r.expr));
    expect(recordedFrom.filter((n) => n.startsWith('edgectl_runtime_retriev') && !sampled.has(n))).toEqual(
      [],
    );
    expect(recordedFrom).toContain('edgectl_runtime_retrieval_seconds_bucket');
  });

  it('names follow the conventions: counters end in _total, one meaning per label, process and build info', () => {
    for (const text of [siteText, verifierText]) {
      for (const m of text.matchAll(/^# TYPE (\S+) counter$/gm)) expect(m[1]).toMatch(/_total$/);
      expect(text).toMatch(/^process_cpu_seconds_total /m);
      expect(text).toMatch(/^nodejs_heap_size_used_bytes /m);
    }
    // `route` is edge/speculative/cloud/blocked wherever it appears; the verifier's HTTP path is `path`.
    for (const m of `${siteText}\n${verifierText}`.matchAll(/route="([^"]*)"/g))
      expect(['edge', 'speculative', 'cloud', 'blocked']).toContain(m[1]);
    expect(verifierText).toMatch(
      /edgectl_verifier_request_duration_seconds_bucket\{[^}]*path="\/v1\/sessions/,
    );
    expect(siteText).toMatch(
      /^edgectl_build_info\{version="[^"]+",component="site",node_version="[^"]+"\} 1$/m,
    );
    expect(verifierText).toMatch(/^edgectl_build_info\{[^}]*component="verifier"/m);
    expect(siteText).toMatch(/^edgectl_site_info\{site="[^"]+",region="eu-west",tier="branch"\} 1$/m);
    expect(siteText).toMatch(
      /^edgectl_site_artifact_info\{slot="adapters",ref="adapter\/support@1.0.0"\} 1$/m,
    );
    expect(siteText).toMatch(/^edgectl_runtime_verify_rounds_total [1-9]/m);
  });
});

it('observability export writes the pack', () => {
  const dir = mkdtempSync(join(tmpdir(), 'edgectl-obs-cli-'));
  const out = execFileSync(NODE, [RUN_JS, 'observability', 'export', '--out', dir, '--json'], {
    encoding: 'utf8',
  });
  const r = JSON.parse(out) as { files: string[] };
  expect(r.files.map((f) => f.slice(dir.length + 1)).sort()).toEqual(Object.keys(observabilityPack()).sort());
  expect(JSON.parse(readFileSync(join(dir, 'edgectl-dashboard.json'), 'utf8'))).toMatchObject({
    uid: 'edgectl-fleet',
  });
});
