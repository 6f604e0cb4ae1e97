import { BaseCommand } from '../../src/cli/base-command.js';
import { registryFlag, trustFlag } from '../../src/cli/flags.js';
import { renderHistory } from '../../src/rollout/render.js';
import { rolloutHistory, type HistoryItem } from '../../src/rollout/service.js';

export default class RolloutHistory extends BaseCommand<typeof RolloutHistory> {
  static override needsFleetRepository = 'registry' as const;
  static override summary = 'List every rollout in the fleet log, newest first.';
  static override description =
    'One line per rollout: id, status (running, paused, promoted, aborted, undone), candidate, step, sites and ' +
    'why it ended. `rollout status <id> --json` shows one rollout with all its judgements and events.';
  static override examples = [
    '<%= config.bin %> rollout history',
    '<%= config.bin %> rollout history --json',
  ];
  static override flags = { registry: registryFlag, trust: trustFlag };

  public async run(): Promise<{ registry: string; fleetSeq: number; rollouts: HistoryItem[] }> {
    const cfg = this.projectConfig(this.flags.registry);
    const result = await rolloutHistory({ registryUrl: cfg.registry, trustPath: cfg.trustPath });
    for (const line of renderHistory(result.rollouts)) this.out(line);
    return result;
  }
}
