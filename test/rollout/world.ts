/**
 * A real fleet for rollout tests: a registry (any Store) with a trust root, signed manifests of
 * the refs a rollout moves between, N sites declared with their own Ed25519 keys and labels, the
 * fleet applied through `applyFleet`, and signed feedback reports synthesized with the real
 * signing code (`signReport`, the site's key) and written where sites upload them. A report takes
 * the site's refs and the fleet seq from the fleet state at the time it is written, as a site that
 * has synced would.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyFleet } from '../../src/fleet/apply.js';
import type { FleetState } from '../../src/fleet/state.js';
import { encodeEnvelope } from '../../src/registry/envelope.js';
import { generateKeyPair, type KeyPair } from '../../src/registry/keys.js';
import { trustRootKey } from '../../src/registry/layout.js';
import type { Store } from '../../src/registry/store.js';
import { readLatest, type FleetWriter } from '../../src/rollout/append.js';
import {
  FEEDBACK_REPORT_VERSION,
  emptyCounters,
  emptyHistogram,
  observe,
  signReport,
  type FeedbackRefs,
  type FeedbackReport,
} from '../../src/feedback/report.js';
import { putReport } from '../../src/feedback/timeline.js';
import {
  makeTrust,
  publishManifest,
  siteYaml,
  writeSite,
  type TestTrust,
} from '../fleet/registry-fixture.js';

export const REFS = {
  model: 'model/draft@1.0.0',
  policy: 'policy/default@1.0.0',
  good: 'adapter/support@1.1.0',
  bad: 'adapter/support@1.2.0',
  base: 'adapter/support@1.0.0',
} as const;

export interface Traffic {
  /** Requests in the window (default 400). */
  requests?: number;
  /** Draft tokens (default 30 per request) and the acceptance rate (default 0.7). */
  draftTokens?: number;
  acceptance?: number;
  errors?: number;
  fallbacks?: number;
  /** TTFT of every request, ms (default 80). */
  ttftMs?: number;
  /** Window start (default now - 1 s) and end (default now). */
  start?: Date;
  end?: Date;
  /** Sign with this key instead of the site's. */
  signer?: KeyPair;
  /** Override the fleet seq and the refs the report claims (default: from the fleet state). */
  fleetSeq?: number;
  refs?: FeedbackRefs;
  /**
   * Shadow runs of every shadow adapter the site has (rollout shadow steps): their acceptance and
   * draft tokens (default: a fifth of the served ones).
   */
  shadow?: { acceptance: number; draftTokens?: number; errors?: number };
}

export interface RolloutWorld {
  store: Store;
  t: TestTrust;
  dir: string;
  trustPath: string;
  sitesDir: string;
  sites: string[];
  keys: Map<string, KeyPair>;
  /** Manifest digest of each ref in REFS. */
  digests: Record<string, string>;
  clock: () => Date;
  writer(clock?: () => Date): FleetWriter;
  state(): Promise<{ state: FleetState; seq: number }>;
  /** Writes one signed window of feedback for `site`; returns the report. */
  feedback(site: string, traffic?: Traffic): Promise<FeedbackReport>;
  /** One window for each of `sites` (acceptance per site from `acceptanceOf`). */
  feedbackAll(sites: readonly string[], traffic: (site: string) => Traffic): Promise<void>;
}

/**
 * Writes signed feedback windows for sites, as a synced site would: refs and fleet seq from the
 * fleet state at the time of writing, signed with the site's key, at feedback/<site>/<seq>.
 */
export function feedbackWriter(
  store: Store,
  trust: TestTrust['trust'],
  keys: Map<string, KeyPair>,
  clock: () => Date = () => new Date(),
): (site: string, tr?: Traffic) => Promise<FeedbackReport> {
  const feedbackSeq = new Map<string, number>();
  return async (site, tr = {}) => {
    const latest = await readLatest(store, trust, clock());
    const a = latest.applied.state.sites[site]?.assignments;
    if (!a) throw new Error(`no site ${site}`);
    const requests = tr.requests ?? 400;
    const draft = tr.draftTokens ?? requests * 30;
    const counters = emptyCounters();
    counters.requests.speculative = requests;
    counters.draftTokens = draft;
    counters.acceptedTokens = Math.round(draft * (tr.acceptance ?? 0.7));
    counters.verifyRounds = requests * 5;
    counters.outputTokens = requests * 40;
    counters.errors = tr.errors ?? 0;
    counters.fallbacks = tr.fallbacks ?? 0;
    const ttft = emptyHistogram();
    const e2e = emptyHistogram();
    for (let i = 0; i < requests - (tr.errors ?? 0); i++) {
      observe(ttft, tr.ttftMs ?? 80);
      observe(e2e, (tr.ttftMs ?? 80) * 10);
    }
    const now = clock();
    const n = (feedbackSeq.get(site) ?? 0) + 1;
    feedbackSeq.set(site, n);
    const report: FeedbackReport = {
      version: FEEDBACK_REPORT_VERSION,
      site,
      seq: n,
      fleetSeq: tr.fleetSeq ?? latest.applied.seq,
      windowStart: (tr.start ?? new Date(now.getTime() + 1)).toISOString(),
      windowEnd: (tr.end ?? new Date(now.getTime() + 2)).toISOString(),
      refs: tr.refs ?? {
        ...(a.model ? { model: { ...a.model } } : {}),
        adapters: a.adapters.map((r) => ({ ...r })),
        ...(a.policy ? { policy: { ...a.policy } } : {}),
        ...(a.shadow ? { shadow: a.shadow.map((r) => ({ ...r })) } : {}),
        ...(a.indexes ? { indexes: a.indexes.map((r) => ({ ...r })) } : {}),
      },
      counters,
      latency: { ttftMs: ttft, e2eMs: e2e },
    };
    if (tr.shadow && a.shadow && a.shadow.length > 0) {
      const drafted = tr.shadow.draftTokens ?? Math.round(draft / 5);
      report.shadow = a.shadow.map((r) => ({
        ...r,
        runs: Math.round(requests / 5),
        draftTokens: drafted,
        acceptedTokens: Math.round(drafted * (tr.shadow?.acceptance ?? 0)),
        verifyRounds: Math.round(requests / 5) * 5,
        errors: tr.shadow?.errors ?? 0,
      }));
    }
    const env = signReport(report, tr.signer ?? (keys.get(site) as KeyPair));
    await putReport(store, site, n, encodeEnvelope(env));
    return report;
  };
}

export async function rolloutWorld(
  store: Store,
  opts: {
    sites?: number;
    labels?: (i: number) => Record<string, string>;
    clock?: () => Date;
    /** Index refs to publish (stub manifests); the first is assigned to every site. */
    indexes?: string[];
  } = {},
): Promise<RolloutWorld> {
  const dir = mkdtempSync(join(tmpdir(), 'edgectl-rollout-'));
  const t = makeTrust();
  const trustPath = join(dir, 'trust-root.json');
  writeFileSync(trustPath, encodeEnvelope(t.envelope));
  await store.putIfAbsent(trustRootKey(1), encodeEnvelope(t.envelope));
  const digests: Record<string, string> = {};
  for (const ref of [...Object.values(REFS), ...(opts.indexes ?? [])])
    digests[ref] = await publishManifest(store, t.artifacts, ref);
  const sitesDir = join(dir, 'sites');
  const n = opts.sites ?? 4;
  const sites: string[] = [];
  const keys = new Map<string, KeyPair>();
  for (let i = 1; i <= n; i++) {
    const name = `store-${String(i).padStart(3, '0')}`;
    const kp = generateKeyPair();
    keys.set(name, kp);
    sites.push(name);
    writeSite(
      sitesDir,
      name,
      siteYaml(name, {
        key: Buffer.from(kp.publicKey).toString('base64'),
        labels: opts.labels?.(i) ?? { tier: 'branch', region: i % 2 ? 'eu' : 'us' },
        model: REFS.model,
        adapters: [REFS.base],
        policy: REFS.policy,
        ...(opts.indexes?.[0] ? { extra: `  indexes:\n    - ${opts.indexes[0]}` } : {}),
      }),
    );
  }
  const clock = opts.clock ?? (() => new Date());
  await applyFleet({ store, trust: t.trust, signer: t.fleet, sitesDir, clock });
  const world: RolloutWorld = {
    store,
    t,
    dir,
    trustPath,
    sitesDir,
    sites,
    keys,
    digests,
    clock,
    writer: (c = clock) => ({ store, trust: t.trust, signers: [t.fleet], clock: c }),
    async state() {
      const latest = await readLatest(store, t.trust, clock());
      return { state: latest.applied.state, seq: latest.applied.seq };
    },
    feedback: feedbackWriter(store, t.trust, keys, clock),
    async feedbackAll(list, traffic) {
      for (const s of list) await world.feedback(s, traffic(s));
    },
  };
  return world;
}
