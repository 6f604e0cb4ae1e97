import { rolloutActionCommand } from '../../src/cli/rollout-command.js';

export default rolloutActionCommand({
  action: 'pause',
  summary: 'Pause a running rollout: no more judgements, promotions or rollbacks until resumed.',
  description:
    'The canary sites keep the candidate while paused. `rollout resume` continues (its timeouts restart), `rollout abort` rolls back. Exit 0 when done.',
  examples: ['<%= config.bin %> rollout pause --reason "holiday freeze"'],
});
