/**
 * The series every edgectl daemon exports besides its own: prom-client's default process and
 * Node.js metrics (`process_*`, `nodejs_*`: CPU, memory, event-loop lag, GC) and
 * `edgectl_build_info{version,component,node_version}` (value 1), so a dashboard can group by the
 * edgectl version a daemon runs and join it to anything else on `instance`. One call per registry:
 * each server owns its registry, so several servers in one test process do not collide.
 */
import { collectDefaultMetrics, Gauge, type Registry } from 'prom-client';
import { edgectlPackage } from '../foundation/package-root.js';

export type DaemonComponent = 'site' | 'verifier';

export function registerProcessMetrics(registry: Registry, component: DaemonComponent): void {
  // A registry reused by a restarted server already holds these series.
  if (registry.getSingleMetric('edgectl_build_info')) return;
  collectDefaultMetrics({ register: registry });
  const info = new Gauge({
    name: 'edgectl_build_info',
    help: 'The edgectl build this daemon runs (value 1).',
    labelNames: ['version', 'component', 'node_version'],
    registers: [registry],
  });
  info.set({ version: edgectlPackage().version, component, node_version: process.versions.node }, 1);
}
