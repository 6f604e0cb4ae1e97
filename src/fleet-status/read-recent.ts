/**
 * Recent signed feedback of every site for the fleet view: each site's reports whose window ends
 * inside the view's window, plus its latest report whatever its age (freshness needs the last one
 * even when it is old). The first read walks each site's reports newest first and stops at the
 * first batch that ends before the window, so a site with months of history costs a few GETs;
 * later reads (`--watch`) fetch only reports above the last seq seen. Verification is the rollout
 * controller's (feedback/read.ts): only reports signed by the site's declared key count; the others
 * are listed in `rejected`.
 */
import { mapConcurrent } from '../artifact/concurrency.js';
import { decodeEnvelope } from '../registry/envelope.js';
import { feedbackPrefix, parseSeqKey } from '../registry/layout.js';
import type { Store } from '../registry/store.js';
import { readFeedback, verifyReport, type DeclaredSiteKeys, type FeedbackReport } from '../feedback/index.js';

const BATCH = 8;

interface SiteReports {
  lastSeq: number;
  latest: FeedbackReport | undefined;
  reports: FeedbackReport[];
}

export class RecentFeedback {
  private readonly sites = new Map<string, SiteReports>();
  rejected: { key: string; reason: string }[] = [];

  async refresh(store: Store, declared: DeclaredSiteKeys, since: Date): Promise<void> {
    const names = Object.keys(declared);
    await mapConcurrent(names, 4, async (site) => {
      const cur = this.sites.get(site);
      const next = cur
        ? await this.newer(store, site, declared, cur)
        : await this.initial(store, site, declared, since);
      const t = since.getTime();
      next.reports = next.reports.filter((r) => Date.parse(r.windowEnd) >= t);
      this.sites.set(site, next);
    });
  }

  latest(site: string): FeedbackReport | undefined {
    return this.sites.get(site)?.latest;
  }

  reports(site: string): readonly FeedbackReport[] {
    return this.sites.get(site)?.reports ?? [];
  }

  private async newer(
    store: Store,
    site: string,
    declared: DeclaredSiteKeys,
    cur: SiteReports,
  ): Promise<SiteReports> {
    const read = await readFeedback(store, site, declared, { afterSeq: cur.lastSeq });
    this.rejected.push(...read.rejected);
    const reports = [...cur.reports, ...read.reports];
    return {
      lastSeq: Math.max(cur.lastSeq, read.lastSeq),
      latest: read.reports.at(-1) ?? cur.latest,
      reports,
    };
  }

  private async initial(
    store: Store,
    site: string,
    declared: DeclaredSiteKeys,
    since: Date,
  ): Promise<SiteReports> {
    const prefix = feedbackPrefix(site);
    const keys = (await store.list(prefix))
      .map((o) => ({ key: o.key, seq: parseSeqKey(o.key, prefix) }))
      .filter((k): k is { key: string; seq: number } => k.seq !== undefined)
      .sort((a, b) => b.seq - a.seq);
    const out: SiteReports = { lastSeq: keys[0]?.seq ?? 0, latest: undefined, reports: [] };
    for (let i = 0; i < keys.length; i += BATCH) {
      const batch = await mapConcurrent(keys.slice(i, i + BATCH), BATCH, async ({ key, seq }) => {
        const obj = await store.get(key);
        if (!obj) return undefined;
        try {
          return verifyReport(decodeEnvelope(obj.body, key), declared, {
            what: key,
            expectSite: site,
            expectSeq: seq,
          });
        } catch (err) {
          this.rejected.push({ key, reason: err instanceof Error ? err.message : String(err) });
          return undefined;
        }
      });
      const valid = batch.filter((r): r is FeedbackReport => r !== undefined);
      out.latest ??= valid[0];
      out.reports.push(...valid);
      if (valid.some((r) => Date.parse(r.windowEnd) < since.getTime())) break;
    }
    out.reports.sort((a, b) => a.seq - b.seq);
    return out;
  }
}
