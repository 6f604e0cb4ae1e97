import { Flags } from '@oclif/core';
import { BaseCommand } from '../../src/cli/base-command.js';
import { exportObservability, type ExportResult } from '../../src/observability/export.js';

export default class ObservabilityExport extends BaseCommand<typeof ObservabilityExport> {
  static override summary =
    'Write the Grafana dashboard and the Prometheus rules (with promtool tests) for a fleet.';
  static override description =
    'Writes edgectl-dashboard.json (Grafana: cohort views by region, tier and version), edgectl-rules.yml ' +
    '(recording rules and multi-window burn-rate alerts on TTFT, errors, violations and freshness) and ' +
    'edgectl-rules.test.yml (run `promtool test rules` on it). docs/observability.md explains them.';
  static override examples = ['<%= config.bin %> observability export --out monitoring/'];
  static override flags = {
    out: Flags.string({ summary: 'Directory to write into (created if missing).', required: true }),
  };

  public async run(): Promise<ExportResult> {
    const result = exportObservability(this.flags.out);
    for (const f of result.files) this.out(`wrote ${f}`);
    return result;
  }
}
