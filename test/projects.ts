/**
 * Which test files are end to end (vitest project `e2e`) and which are unit tests (project `unit`,
 * every other test file). A file is end to end when it starts anything outside the vitest
 * worker: the CLI or a daemon as a child process (`runCli`, `startVerifierDaemon`,
 * `startVerifierProcess`, `spawn`), Ceph RGW (`forAllBackends`, a backend list with `'rgw'`), or another program
 * (systemd-analyze, promtool, git, npm). Unit tests run in process only: s3rver, fastify servers
 * and worker threads inside the test's own process are fine. `npm test` runs both, unit first
 * (`npm run test:unit`, `npm run test:e2e` run one); docs/development.md explains the split.
 * test/projects.test.ts keeps this list honest: a unit file that starts a process fails it, and so
 * does a listed file that no longer exists (after a move, update the path here).
 */

/** End-to-end test files, relative to the repository root. */
export const E2E_FILES: readonly string[] = [
  'test/architecture/layering.test.ts',
  'test/artifact/cli.test.ts',
  'test/artifact/lint.test.ts',
  'test/artifact/registry.test.ts',
  'test/bench/cpu-pinning.test.ts',
  'test/cli/habits.test.ts',
  'test/doctor/doctor.test.ts',
  'test/e2e/install.test.ts',
  'test/e2e/verifier-auth.test.ts',
  'test/e2e/verifier-bench.test.ts',
  'test/e2e/verifier.test.ts',
  'test/feedback/crash.test.ts',
  'test/fleet/cli.test.ts',
  'test/fleet/key-rotation.test.ts',
  'test/fleet/race.test.ts',
  'test/fleet/registry.test.ts',
  'test/index/cli.test.ts',
  'test/index-site/cli.test.ts',
  'test/index-site/done-when.test.ts',
  'test/index-site/rag-block.test.ts',
  'test/index-site/procedure.test.ts',
  'test/index-site/rag-redaction.test.ts',
  'test/fleet/repair.test.ts',
  'test/fleet/status.test.ts',
  'test/inference/generate-cli.test.ts',
  'test/inference/lora-graph/external-data.test.ts',
  'test/inference/lora-graph/procedure.test.ts',
  'test/init/cli-help.test.ts',
  'test/init/init.test.ts',
  'test/init/launcher.test.ts',
  'test/init/workflow.test.ts',
  'test/observability/pack.test.ts',
  'test/quickstart/quickstart.test.ts',
  'test/readme.test.ts',
  'test/registry/commands.test.ts',
  'test/registry/conditional-writes.test.ts',
  'test/registry/faults.test.ts',
  'test/registry/fs-race.test.ts',
  'test/registry/store-contract.test.ts',
  'test/rollout/cli.test.ts',
  'test/rollout/e2e.test.ts',
  'test/rollout/feedback-cost.test.ts',
  'test/rollout/shadow-e2e.test.ts',
  'test/rollout/spec.test.ts',
  'test/runtime/daemon/cloud-route.test.ts',
  'test/runtime/daemon/feedback-restart.test.ts',
  'test/runtime/daemon/site-up.test.ts',
  'test/runtime/serve/openai-surface.test.ts',
  'test/runtime/serve/pii.test.ts',
  'test/runtime/serve/repetition-penalty.test.ts',
  'test/runtime/serve/resilience.test.ts',
  'test/runtime/serve/server.test.ts',
  'test/runtime/serve/shadow.test.ts',
  'test/runtime/serve/structured.test.ts',
  'test/runtime/serve/tools.test.ts',
  'test/site/bounded.test.ts',
  'test/site/cli.test.ts',
  'test/site/kill.test.ts',
  'test/site/sync.test.ts',
  'test/supervisor/daemon.test.ts',
  'test/supervisor/systemd-unit.test.ts',
];

/**
 * What marks a test file as end to end: child processes, the CLI, daemons, RGW (see above). Used by
 * test/projects.test.ts on each file's text.
 */
export const E2E_MARKERS =
  /node:child_process|runCli|startVerifierDaemon|startVerifierProcess|forAllBackends|startRgw|startLiveFleet|spool-child|helpers\/gha|'rgw'\]/;
