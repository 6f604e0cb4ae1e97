/**
 * Index freshness on the daemon's `/metrics` (issue #20 item 5): `edgectl_index_age_seconds`, the
 * age of each index the served generation holds (now minus its newest document time), and
 * `edgectl_index_passages`, its live passages, both labelled by index name and ref. Read at scrape
 * time from the generation serving, so a hot swap to a new index version shows at the next scrape.
 */
import { Gauge, type Registry } from 'prom-client';
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
}
