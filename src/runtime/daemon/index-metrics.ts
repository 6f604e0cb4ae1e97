/**
 * Index freshness on the daemon's `/metrics` (issue #20 item 5): `edgectl_index_age_seconds`, the
 * age of each index the served generation holds (now minus its newest document time), and
 * `edgectl_index_passages`, its live passages, and `edgectl_index_max_age_seconds`, the staleness
 * budget the served policy sets (`retrieval.maxAge`; no sample without one), all labelled by index
 * name and ref so age / budget is a one-to-one division for the dashboard and the stale-index alert
 * (src/observability). Read at scrape time from the generation serving, so a hot swap to a new
 * index version or policy shows at the next scrape.
 */
import { Gauge, type Registry } from 'prom-client';
import { parseDuration } from '../../foundation/duration.js';
import type { LoadedGeneration } from '../engine/generation.js';
import { indexAgeSeconds } from '../engine/site-indexes.js';

export function registerIndexMetrics(registry: Registry, current: () => LoadedGeneration | undefined): void {
  new Gauge({
    name: 'edgectl_index_age_seconds',
    help: "Seconds since the newest document of each index the site serves (its freshness; a policy's retrieval.maxAge bounds it).",
    labelNames: ['index', 'ref'],
    registers: [registry],
    collect() {
      this.reset();
      for (const ix of current()?.indexes.all() ?? []) {
        this.set({ index: ix.name, ref: ix.ref ?? '' }, indexAgeSeconds(ix.reader));
      }
    },
  });
  new Gauge({
    name: 'edgectl_index_passages',
    help: 'Live passages of each index the site serves.',
    labelNames: ['index', 'ref'],
    registers: [registry],
    collect() {
      this.reset();
      for (const ix of current()?.indexes.all() ?? []) {
        this.set({ index: ix.name, ref: ix.ref ?? '' }, ix.reader.manifest.passages);
      }
    },
  });
  new Gauge({
    name: 'edgectl_index_max_age_seconds',
    help: "The staleness budget of each index the site serves: the served policy's retrieval.maxAge (absent when it sets none).",
    labelNames: ['index', 'ref'],
    registers: [registry],
    collect() {
      this.reset();
      const gen = current();
      const budget = gen?.policy.retrieval?.maxAge;
      if (!gen || budget === undefined) return;
      // The policy was validated at publish (a duration), so this parse cannot fail here.
      const seconds = parseDuration(budget, 'retrieval.maxAge') / 1000;
      for (const ix of gen.indexes.all()) this.set({ index: ix.name, ref: ix.ref ?? '' }, seconds);
    },
  });
}
