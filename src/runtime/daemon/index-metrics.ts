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
import { indexAgeSeconds, type ServedIndex } from '../engine/site-indexes.js';

type Current = () => LoadedGeneration | undefined;

/** A gauge with one sample per index the serving generation holds (`value` undefined: no sample). */
function perIndexGauge(
  registry: Registry,
  current: Current,
  name: string,
  help: string,
  value: (ix: ServedIndex, gen: LoadedGeneration) => number | undefined,
): void {
  new Gauge({
    name,
    help,
    labelNames: ['index', 'ref'],
    registers: [registry],
    collect() {
      this.reset();
      const gen = current();
      if (!gen) return;
      for (const ix of gen.indexes.all()) {
        const v = value(ix, gen);
        if (v !== undefined) this.set({ index: ix.name, ref: ix.ref ?? '' }, v);
      }
    },
  });
}

export function registerIndexMetrics(registry: Registry, current: Current): void {
  perIndexGauge(
    registry,
    current,
    'edgectl_index_age_seconds',
    "Seconds since the newest document of each index the site serves (its freshness; a policy's retrieval.maxAge bounds it).",
    (ix) => indexAgeSeconds(ix.reader),
  );
  perIndexGauge(
    registry,
    current,
    'edgectl_index_passages',
    'Live passages of each index the site serves.',
    (ix) => ix.reader.manifest.passages,
  );
  perIndexGauge(
    registry,
    current,
    'edgectl_index_max_age_seconds',
    "The staleness budget of each index the site serves: the served policy's retrieval.maxAge (absent when it sets none).",
    (_ix, gen) => {
      const budget = gen.policy.retrieval?.maxAge;
      // The policy was validated at publish (a duration), so this parse cannot fail here.
      return budget === undefined ? undefined : parseDuration(budget, 'retrieval.maxAge') / 1000;
    },
  );
}
