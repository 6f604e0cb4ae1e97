/**
 * The GitHub Actions workflow `edgectl init` writes (.github/workflows/edgectl.yml): plan on pull
 * request, apply on merge to main, publish on tag, a canary rollout on manual dispatch. Each job
 * installs the edgectl the repository's package.json pins (the one that ran `init`, or what
 * `--edgectl-spec` named), puts node_modules/.bin on PATH and calls `edgectl` from there, so a job
 * can never run some other edgectl that npx would fetch.
 *
 * Missing settings fail the job at its first step with an error annotation naming the variable or
 * secret: without EDGECTL_REGISTRY edgectl would fall back to edgectl.yaml's `file:` registry, a
 * directory in the runner's checkout that is thrown away with the job, so a publish or an apply
 * would "succeed" into nothing. Apply and rollouts share one concurrency group (both move the
 * fleet head); publish has its own (artifact writes are create-only and never touch the head, and
 * GitHub keeps one pending run per group, so sharing would let a queued apply cancel a publish).
 */

/** Where each signing-key secret goes (the paths edgectl.yaml names). */
const KEY_FILES: Record<string, string> = {
  EDGECTL_ARTIFACTS_KEY: 'keys/artifacts.key',
  EDGECTL_FLEET_KEY: 'keys/fleet.key',
};

/**
 * The first step of every job: fails unless EDGECTL_REGISTRY names a registry that outlives the
 * runner and every secret the job needs is set, before any time goes into installing.
 */
function checkSettings(secrets: string[]): string {
  const env = secrets.length
    ? `        env:\n${secrets.map((x) => `          ${x}: \${{ secrets.${x} }}\n`).join('')}`
    : '';
  const checks = secrets
    .map(
      (x) => `          if [ -z "$${x}" ]; then
            echo '::error title=Secret ${x} is not set::Add the repository secret ${x} (Settings > Secrets and variables > Actions) with the content of ${KEY_FILES[x] ?? 'the key file'}.'
            exit 1
          fi
`,
    )
    .join('');
  return `      - name: Check repository settings
        # A file: registry inside the checkout would be thrown away with the runner.
${env}        run: |
          case "$EDGECTL_REGISTRY" in
            s3://?*|file:/?*) echo "registry: $EDGECTL_REGISTRY" ;;
            '')
              echo '::error title=EDGECTL_REGISTRY is not set::Set the repository variable EDGECTL_REGISTRY (Settings > Secrets and variables > Actions > Variables) to s3://<bucket>/<prefix>. Without it edgectl would use a directory on this runner, which is thrown away with the job.'
              exit 1 ;;
            *)
              echo "::error title=EDGECTL_REGISTRY is not usable in CI::EDGECTL_REGISTRY=$EDGECTL_REGISTRY: use s3://<bucket>/<prefix>, or file:/<absolute path> on a self-hosted runner with shared storage."
              exit 1 ;;
          esac
${checks}`;
}

const SETUP = `      - uses: actions/setup-node@v4
        with:
          node-version: 22
      - name: Install edgectl
        # The edgectl package.json pins; onnxruntime's optional CUDA download is skipped (CPU only).
        run: |
          if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; else npm install --no-audit --no-fund; fi
          echo "$PWD/node_modules/.bin" >> "$GITHUB_PATH"
          "$PWD/node_modules/.bin/edgectl" --version
`;

/** Writes a signing key from a secret (checked by the first step) into keys/. */
function keyStep(name: string, secret: string): string {
  return `      - name: ${name}
        env:
          ${secret}: \${{ secrets.${secret} }}
        run: |
          umask 077
          mkdir -p keys
          printf '%s\\n' "$${secret}" > ${KEY_FILES[secret] ?? 'keys/unknown.key'}
`;
}

const FLEET_GROUP = `    # One fleet writer at a time (the head also moves by compare-and-swap; this avoids retries).
    concurrency:
      group: edgectl-fleet
      cancel-in-progress: false
`;

export const GITHUB_WORKFLOW = `# edgectl GitOps pipeline, written by \`edgectl init\`.
#
#   pull request to main   lint + \`site plan\` (what the merge would change, in the job summary)
#   push to main           lint + \`site apply\` (one signed fleet log entry)
#   tag v*                 publish every artifact under artifacts/ (unchanged ones are no-ops)
#   manual run             \`rollout canary <ref> --wait\`: the job passes only when it is promoted
#
# Every job installs the edgectl that package.json pins (devDependencies.edgectl).
# Repository settings (a job fails at its first step, naming what is missing):
#   variables  EDGECTL_REGISTRY (required: s3://bucket/prefix), AWS_REGION,
#              AWS_ENDPOINT_URL_S3 (MinIO, R2)
#   secrets    EDGECTL_ARTIFACTS_KEY (publish), EDGECTL_FLEET_KEY (apply, rollout): the content
#              of keys/artifacts.key and keys/fleet.key; AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY
# The root key is not needed here; keep it offline.
name: edgectl

on:
  pull_request:
    branches: [main]
  push:
    branches: [main]
    tags: ['v*']
  workflow_dispatch:
    inputs:
      candidate:
        description: Artifact to roll out, e.g. adapter/support@1.1.0
        required: true
        type: string
      sites:
        description: Site selector (labels), e.g. tier=branch
        required: false
        default: ''
        type: string
      steps:
        description: Waves as shares of the selected sites (percent)
        required: false
        default: '10,50,100'
        type: string

permissions:
  contents: read

env:
  EDGECTL_REGISTRY: \${{ vars.EDGECTL_REGISTRY }}
  AWS_REGION: \${{ vars.AWS_REGION }}
  AWS_ENDPOINT_URL_S3: \${{ vars.AWS_ENDPOINT_URL_S3 }}
  AWS_ACCESS_KEY_ID: \${{ secrets.AWS_ACCESS_KEY_ID }}
  AWS_SECRET_ACCESS_KEY: \${{ secrets.AWS_SECRET_ACCESS_KEY }}
  ONNXRUNTIME_NODE_INSTALL: skip

jobs:
  plan:
    if: github.event_name == 'pull_request'
    runs-on: ubuntu-latest
    steps:
${checkSettings([])}      - uses: actions/checkout@v4
${SETUP}      - name: Lint sites and artifacts
        run: edgectl lint
      - name: Plan
        id: plan
        # --detailed-exitcode (as terraform plan): 0 = nothing to change, 2 = changes, 1 = error.
        run: |
          set +e
          edgectl site plan --detailed-exitcode --json > plan.json
          code=$?
          set -e
          case "$code" in
            0) echo 'changes=false' >> "$GITHUB_OUTPUT" ;;
            2) echo 'changes=true' >> "$GITHUB_OUTPUT" ;;
            *) cat plan.json >&2; exit "$code" ;;
          esac
          edgectl site plan > plan.txt
          { echo '### edgectl site plan'; echo '\`\`\`'; cat plan.txt; echo '\`\`\`'; } >> "$GITHUB_STEP_SUMMARY"

  apply:
    if: github.event_name == 'push' && github.ref == 'refs/heads/main'
    runs-on: ubuntu-latest
${FLEET_GROUP}    steps:
${checkSettings(['EDGECTL_FLEET_KEY'])}      - uses: actions/checkout@v4
${SETUP}${keyStep('Fleet key', 'EDGECTL_FLEET_KEY')}      - name: Lint sites and artifacts
        run: edgectl lint
      - name: Apply
        run: edgectl site apply

  publish:
    if: github.event_name == 'push' && startsWith(github.ref, 'refs/tags/v')
    runs-on: ubuntu-latest
    # One publisher at a time; apart from the fleet writers (artifact writes are create-only).
    concurrency:
      group: edgectl-publish
      cancel-in-progress: false
    steps:
${checkSettings(['EDGECTL_ARTIFACTS_KEY'])}      - uses: actions/checkout@v4
        with:
          lfs: true
${SETUP}${keyStep('Artifacts key', 'EDGECTL_ARTIFACTS_KEY')}      - name: Lint sites and artifacts
        run: edgectl lint
      - name: Publish
        # Policies first, then models, then adapters (an adapter's base model must be published).
        run: |
          for kind in policies models adapters; do
            for yaml in artifacts/$kind/*/artifact.yaml; do
              [ -e "$yaml" ] || continue
              edgectl publish artifact "$(dirname "$yaml")"
            done
          done

  rollout:
    if: github.event_name == 'workflow_dispatch'
    runs-on: ubuntu-latest
${FLEET_GROUP}    # A rollout outlives this job: if the job is cancelled, \`edgectl rollout resume\` continues it.
    timeout-minutes: 120
    steps:
${checkSettings(['EDGECTL_FLEET_KEY'])}      - uses: actions/checkout@v4
${SETUP}${keyStep('Fleet key', 'EDGECTL_FLEET_KEY')}      - name: Canary
        env:
          CANDIDATE: \${{ inputs.candidate }}
          SITES: \${{ inputs.sites }}
          STEPS: \${{ inputs.steps }}
        # Exit codes: 0 promoted, 5 rolled back, 6 paused or inconclusive, 7 timed out.
        run: |
          set +e
          args=(rollout canary "$CANDIDATE" --steps "$STEPS" --wait --json)
          if [ -n "$SITES" ]; then args+=(--sites "$SITES"); fi
          edgectl "\${args[@]}" > rollout.json
          code=$?
          case "$code" in
            0) verdict='promoted' ;;
            5) verdict='rolled back: the canary was worse than the baseline' ;;
            6) verdict='paused or inconclusive: see edgectl rollout status' ;;
            7) verdict='timed out: edgectl rollout resume continues it' ;;
            *) verdict="failed (exit $code)" ;;
          esac
          { echo "### Rollout of $CANDIDATE: $verdict"; echo '\`\`\`json'; cat rollout.json; echo '\`\`\`'; } >> "$GITHUB_STEP_SUMMARY"
          exit "$code"
      - uses: actions/upload-artifact@v4
        if: always()
        with:
          name: rollout
          path: rollout.json
`;
