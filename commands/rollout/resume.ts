import { rolloutActionCommand } from '../../src/cli/rollout-command.js';

export default rolloutActionCommand({
  action: 'resume',
  summary: 'Resume a paused rollout, or (with --wait) drive a running one to its end.',
  description:
    'The rollout state is folded from the fleet log, so any machine can continue a rollout whose CI job died: ' +
    '`rollout resume --wait` resumes it if paused (timeouts restart) and runs the controller until it is ' +
    'promoted (exit 0), rolled back (5), paused again (6) or the --timeout passes (7). Two controllers on one ' +
    'rollout never both act: each decision is a create-only fleet entry written against the state it judged.',
  examples: [
    '<%= config.bin %> rollout resume --wait',
    '<%= config.bin %> rollout resume support-1.1.0-ab12 --wait --timeout 1h --json',
  ],
});
