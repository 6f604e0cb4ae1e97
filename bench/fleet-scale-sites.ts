/**
 * The simulated fleet of `bench:fleet-scale`: feedback history, sites' sync loops and the controller
 * ticks, all in this one process against one store (requests counted by the proxy in front of it).
 *
 * - History: one report per site per 5 min, the newest ending 5 min ago, written as the uploader
 *   writes them (report + index marker) but with the marker filed at the report's SIMULATED upload
 *   time, as if the history had been uploaded over that span, so the index looks like a real
 *   fleet's. Only each site's newest history report is signed by its key (Ed25519 in tweetnacl
 *   costs ~20 ms a signature on this shared machine); the older ones hold the bytes of one signed
 *   report of another site and seq, so a reader that fetched one would reject it (and say so):
 *   the measured readers never fetch them, and listing costs depend on keys, not bodies.
 * - A site's sync loop: every `intervalMs` (each site at its own phase) a conditional GET of the
 *   head; on a change, the head, the new log entries and the manifests of the refs that changed are
 *   fetched by that site (its own requests and bytes). Verifying and applying an entry is pure and
 *   the same for every site, so it is done once per distinct transition and shared (`catchUp`):
 *   in one process the 1,000 sites' CPU would otherwise queue on one core and be measured as
 *   propagation delay that real sites, each with its own CPU, do not have.
 */
import { mapConcurrent } from '../src/artifact/concurrency.js';
import type { AppliedFleet } from '../src/fleet/entry.js';
import { encodeEnvelope } from '../src/registry/envelope.js';
import { artifactKey, feedbackIndexKey, feedbackKey, fleetLogKey } from '../src/registry/layout.js';
import type { Store } from '../src/registry/store.js';
import type { TrustRoot } from '../src/registry/trust.js';
import { catchUp, checkFresh, pollHead, verifyHead } from '../src/site/fleet-sync.js';
import { fleetKeys } from '../src/fleet/signed.js';
import type { FleetHead } from '../src/fleet/head.js';
import {
  FEEDBACK_REPORT_VERSION,
  emptyCounters,
  emptyHistogram,
  signReport,
  type FeedbackReport,
} from '../src/feedback/report.js';
import { putReport } from '../src/feedback/timeline.js';
import type { RolloutWorld } from '../test/rollout/world.js';

export const REPORT_EVERY_MS = 300_000;

function report(
  w: RolloutWorld,
  state: AppliedFleet['state'],
  site: string,
  seq: number,
  end: number,
  fleetSeq: number,
) {
  const a = state.sites[site]?.assignments;
  const counters = emptyCounters();
  counters.requests.speculative = 100;
  counters.draftTokens = 3000;
  counters.acceptedTokens = 2100;
  const r: FeedbackReport = {
    version: FEEDBACK_REPORT_VERSION,
    site,
    seq,
    fleetSeq,
    windowStart: new Date(end - REPORT_EVERY_MS).toISOString(),
    windowEnd: new Date(end).toISOString(),
    refs: {
      ...(a?.model ? { model: a.model } : {}),
      adapters: a?.adapters ?? [],
      ...(a?.policy ? { policy: a.policy } : {}),
    },
    counters,
    latency: { ttftMs: emptyHistogram(), e2eMs: emptyHistogram() },
  };
  const key = w.keys.get(site);
  if (!key) throw new Error(`no key for ${site}`);
  return encodeEnvelope(signReport(r, key));
}

/**
 * Writes reports 1..count of each site, report i ending at `now - (count - i) * 5 min`, with its
 * marker at that simulated time. Returns reports written per second.
 */
export async function writeHistory(
  w: RolloutWorld,
  store: Store,
  applied: AppliedFleet,
  sites: readonly string[],
  count: number,
  now: number,
): Promise<{ reports: number; seconds: number; perSecond: number }> {
  const t0 = performance.now();
  const jobs: { site: string; seq: number }[] = [];
  for (const site of sites) for (let seq = 1; seq <= count; seq++) jobs.push({ site, seq });
  const filler = report(w, applied.state, w.sites[0] as string, 999_999, now, applied.seq);
  await mapConcurrent(jobs, 48, async ({ site, seq }) => {
    const end = now - (count - seq + 1) * REPORT_EVERY_MS;
    const body = seq === count ? report(w, applied.state, site, seq, end, applied.seq) : filler;
    await store.putIfAbsent(feedbackKey(site, seq), body);
    await store.putIfAbsent(feedbackIndexKey(new Date(end), site, seq), Buffer.alloc(0));
  });
  const seconds = (performance.now() - t0) / 1000;
  return {
    reports: jobs.length,
    seconds: Math.round(seconds * 10) / 10,
    perSecond: Math.round(jobs.length / seconds),
  };
}

/** One new report of each of `sites` (seq `seq`), uploaded now by the real uploader path. */
export async function reportNow(
  w: RolloutWorld,
  store: Store,
  applied: AppliedFleet,
  sites: readonly string[],
  seq: number,
): Promise<void> {
  await mapConcurrent(sites, 32, (site) =>
    putReport(store, site, seq, report(w, applied.state, site, seq, Date.now(), applied.seq)),
  );
}

export interface SimSite {
  name: string;
  etag: string | undefined;
  applied: AppliedFleet;
}

/** Shared pure part of a sync: one head verification per etag, one catchUp per transition. */
class Transitions {
  private readonly done = new Map<string, Promise<AppliedFleet>>();
  private readonly heads = new Map<string, FleetHead>();
  verify(body: Buffer, etag: string, now: Date): FleetHead {
    let h = this.heads.get(etag);
    if (!h) {
      h = verifyHead(body, fleetKeys(this.trust), now);
      this.heads.set(etag, h);
    }
    checkFresh(h, now);
    return h;
  }
  constructor(
    private readonly store: Store,
    private readonly trust: TrustRoot,
  ) {}
  apply(from: AppliedFleet, head: Parameters<typeof catchUp>[3]): Promise<AppliedFleet> {
    const k = `${from.entryDigest}>${head.entryDigest}`;
    let p = this.done.get(k);
    if (!p) {
      p = catchUp(this.store, this.trust, from, head).then((r) => r.applied);
      this.done.set(k, p);
    }
    return p;
  }
}

/** One sync of one site (see the module comment); returns whether the head had changed. */
async function syncOnce(store: Store, trust: TrustRoot, t: Transitions, s: SimSite): Promise<boolean> {
  const poll = await pollHead(store, s.etag);
  if (poll.kind !== 'changed') return false;
  const now = new Date();
  const head = t.verify(poll.body, poll.etag, now);
  s.etag = poll.etag;
  if (head.seq === s.applied.seq) return true;
  for (let seq = s.applied.seq + 1; seq <= head.seq; seq++) await store.get(fleetLogKey(seq));
  const next = await t.apply(s.applied, head);
  const before = s.applied.state.sites[s.name]?.assignments;
  const after = next.state.sites[s.name]?.assignments;
  for (const ref of changedRefs(before, after)) {
    const m = /^([a-z]+)\/([^@]+)@(.+)$/.exec(ref);
    if (m?.[1] && m[2] && m[3]) await store.get(artifactKey(m[1], m[2], m[3]));
  }
  s.applied = next;
  return true;
}

type Assignments = AppliedFleet['state']['sites'][string]['assignments'] | undefined;

function changedRefs(a: Assignments, b: Assignments): string[] {
  const refs = (x: Assignments) =>
    new Set(
      [x?.model?.ref, x?.policy?.ref, ...(x?.adapters ?? []).map((r) => r.ref)].filter(
        (r): r is string => r !== undefined,
      ),
    );
  const old = refs(a);
  return [...refs(b)].filter((r) => !old.has(r));
}

/** Every site's first sync (to learn the head's etag), as a site daemon does at start. */
export async function firstSync(store: Store, trust: TrustRoot, sites: SimSite[]): Promise<void> {
  const t = new Transitions(store, trust);
  await mapConcurrent(sites, 64, (s) => syncOnce(store, trust, t, s));
}

/** One sync interval of every site (no change expected): the steady state. */
export async function syncRound(store: Store, trust: TrustRoot, sites: SimSite[]): Promise<number> {
  const t = new Transitions(store, trust);
  const changed = await mapConcurrent(sites, 64, (s) => syncOnce(store, trust, t, s));
  return changed.filter(Boolean).length;
}

/**
 * Runs every site's loop (period `intervalMs`, phases spread evenly) until each has applied
 * `targetSeq` or `timeoutMs` passes; returns each site's delay after `appliedAt` (ms).
 */
export async function propagate(
  store: Store,
  trust: TrustRoot,
  sites: SimSite[],
  opts: { targetSeq: number; appliedAt: number; intervalMs: number; timeoutMs: number },
): Promise<{ delays: number[]; missed: number; failures: number }> {
  const t = new Transitions(store, trust);
  const delays: number[] = [];
  let failures = 0;
  const deadline = opts.appliedAt + opts.timeoutMs;
  await Promise.all(
    sites.map(async (s, i) => {
      await sleep((i / sites.length) * opts.intervalMs);
      while (Date.now() < deadline) {
        // A failed sync is retried at the next interval, as the agent does (counted, never fatal).
        await syncOnce(store, trust, t, s).catch(() => failures++);
        if (s.applied.seq >= opts.targetSeq) {
          delays.push(Date.now() - opts.appliedAt);
          return;
        }
        await sleep(opts.intervalMs);
      }
    }),
  );
  return { delays: delays.sort((a, b) => a - b), missed: sites.length - delays.length, failures };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export function percentile(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? null;
}
