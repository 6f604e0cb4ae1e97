import { rolloutActionCommand } from '../../src/cli/rollout-command.js';

export default rolloutActionCommand({
  action: 'promote',
  summary: 'Advance a rollout to its next wave now, or with --full to every selected site.',
  description:
    'Skips the judgement of the current step (a human decision, recorded with who made it). Without --full the next wave is assigned the candidate (a paused rollout is resumed); with --full every selected site is, and the rollout ends as promoted. Exit 0 when done.',
  examples: [
    '<%= config.bin %> rollout promote',
    '<%= config.bin %> rollout promote support-1.1.0-ab12 --full --reason "verified by hand"',
  ],
});
