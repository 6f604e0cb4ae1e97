import { rolloutActionCommand } from '../../src/cli/rollout-command.js';

export default rolloutActionCommand({
  action: 'undo',
  summary: 'Undo a promoted rollout: every site that got the candidate goes back to its previous ref.',
  description:
    'Instant, without re-running any analysis: the previous refs recorded when the rollout started are re-assigned in one entry (sites keep the previous generation for this). Only a promoted rollout can be undone; abort a running one. Exit 0 when done.',
  examples: ['<%= config.bin %> rollout undo', '<%= config.bin %> rollout undo support-1.1.0-ab12 --json'],
});
