import { rolloutActionCommand } from '../../src/cli/rollout-command.js';

export default rolloutActionCommand({
  action: 'abort',
  summary: 'Abort a rollout: every canary site goes back to its previous ref at once.',
  description:
    'Appends `rollout.abort` and, in the same entry, re-assigns each canary site the ref it had before (or removes the slot if it had none). Sites still hold the previous generation, so the rollback takes effect at their next sync without any download. Exit 0 when done (the report says rolled-back).',
  examples: [
    '<%= config.bin %> rollout abort',
    '<%= config.bin %> rollout abort support-1.2.0-9f3c --reason "customer reports"',
  ],
});
