/**
 * The text of the files `edgectl init` writes into a new GitOps repository: edgectl.yaml, the
 * .gitignore that keeps secret keys and local state out of git, short READMEs for artifacts/,
 * sites/, trust/ and keys/, and the GitHub Actions workflow (publish on tag, plan on pull request,
 * apply on merge to main, a canary rollout gated on its exit code). They live in code rather than
 * in template files so the built CLI needs nothing outside dist/ to scaffold a repository.
 *
 * Key layout: three keys, so the root key (which signs trust roots only) can stay offline while CI
 * holds the artifacts and fleet keys, written from repository secrets into keys/ at job start.
 */

export const EDGECTL_YAML = `# edgectl project configuration. Paths are relative to this file.
# EDGECTL_REGISTRY and --registry override the registry; see \`edgectl --help\`.

# Where signed artifacts and the fleet log live: file:<dir> (a directory, good for a first try)
# or s3://<bucket>/<prefix> (S3, MinIO, R2: endpoint, region and credentials from the AWS env).
registry: file:.edgectl/registry

# The trust root every signature is checked against (\`edgectl trust init\` creates it; commit it).
trust: trust/root.json

# Site declarations, one <name>.yaml per site (\`edgectl site add <name>\`).
sites: sites

# Secret keys (mode 0600, git-ignored). root signs trust roots only and can stay offline;
# CI holds artifacts (signs manifests) and fleet (signs the fleet log, rollouts included).
keys:
  root: keys/root.key
  artifacts: keys/artifacts.key
  fleet: keys/fleet.key
`;

export const GITIGNORE = `# Written by \`edgectl init\`. Secret keys never enter git: keep keys/ out (public halves too, to be
# safe; the trust root in trust/ already carries every public key that matters).
keys/
*.key
# Local state: a file: registry, site data directories (each holds its site's secret key), pid
# and log files of daemons started here.
.edgectl/
node_modules/
`;

export const ARTIFACTS_README = `# Artifacts

Sources of the artifacts this fleet runs, one directory per artifact, each with an \`artifact.yaml\`
(kind, name, version; \`base\` for adapters, \`role\` for models):

\`\`\`
artifacts/
  models/<name>/      model.onnx, config.json, tokenizer.json (Hugging Face Optimum layout), artifact.yaml
  adapters/<name>/    adapter_config.json, adapter_model.safetensors (PEFT LoRA), artifact.yaml
  policies/<name>/    policy.yaml (routing, redaction, block rules), artifact.yaml
\`\`\`

\`edgectl lint\` checks every directory here offline; \`edgectl publish artifact <dir>\` validates,
chunks, signs and uploads one. Versions are immutable: bump \`version\` in artifact.yaml for every
change (republishing the same bytes is a no-op, different bytes under the same version an error).
Large model files belong in Git LFS or in the registry only; CI publishes on every tag.
`;

export const SITES_README = `# Sites

The desired state of the fleet: one \`<name>.yaml\` per site with its labels, public key, runtime
settings and assignments (model, adapters, policy). \`edgectl site add <name>\` creates one with a
fresh key (the secret key stays in the site's data directory, never here). A pull request shows
\`edgectl site plan\`; merging to main runs \`edgectl site apply\`.
`;

export const TRUST_README = `# Trust

\`root.json\` is the trust root: the public keys of the root, artifacts and fleet roles. Create it
with \`edgectl trust init\`, publish it with \`edgectl registry init\`, and commit it: sites and CI
verify every signature against it. Rotate keys with \`edgectl trust rotate\` (archived versions
go to trust/root/<version>.json; commit them too, sites walk the chain).
`;

/**
 * The GitHub Actions workflow. Repository variables (vars.*) hold the registry URL and S3 settings;
 * secrets hold the artifacts and fleet keys (the content of keys/*.key) and S3 credentials.
 */
export const GITHUB_WORKFLOW = `# edgectl GitOps pipeline, written by \`edgectl init\`.
#
#   pull request to main   lint + \`site plan\` (what the merge would change, in the job summary)
#   push to main           lint + \`site apply\` (one signed fleet log entry)
#   tag v*                 publish every artifact under artifacts/ (unchanged ones are no-ops)
#   manual run             \`rollout canary <ref> --wait\`: the job passes only when it is promoted
#
# Repository settings:
#   variables  EDGECTL_REGISTRY (s3://bucket/prefix), AWS_REGION, AWS_ENDPOINT_URL_S3 (MinIO, R2)
#   secrets    EDGECTL_ARTIFACTS_KEY, EDGECTL_FLEET_KEY (content of keys/artifacts.key and
#              keys/fleet.key), AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY
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

jobs:
  plan:
    if: github.event_name == 'pull_request'
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-node@v4
        with:
          node-version: 22
      - name: Install edgectl
        run: if [ -f package-lock.json ]; then npm ci; else npm install --no-audit --no-fund; fi
      - name: Lint sites and artifacts
        run: npx edgectl lint
      - name: Plan
        id: plan
        # --detailed-exitcode (as terraform plan): 0 = nothing to change, 2 = changes, 1 = error.
        run: |
          set +e
          npx edgectl site plan --detailed-exitcode --json > plan.json
          code=$?
          set -e
          case "$code" in
            0) echo 'changes=false' >> "$GITHUB_OUTPUT" ;;
            2) echo 'changes=true' >> "$GITHUB_OUTPUT" ;;
            *) cat plan.json >&2; exit "$code" ;;
          esac
          npx edgectl site plan > plan.txt
          { echo '### edgectl site plan'; echo '\`\`\`'; cat plan.txt; echo '\`\`\`'; } >> "$GITHUB_STEP_SUMMARY"

  apply:
    if: github.event_name == 'push' && github.ref == 'refs/heads/main'
    runs-on: ubuntu-latest
    # One fleet writer at a time (the head also moves by compare-and-swap; this avoids retries).
    concurrency:
      group: edgectl-fleet
      cancel-in-progress: false
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-node@v4
        with:
          node-version: 22
      - name: Install edgectl
        run: if [ -f package-lock.json ]; then npm ci; else npm install --no-audit --no-fund; fi
      - name: Fleet key
        env:
          EDGECTL_FLEET_KEY: \${{ secrets.EDGECTL_FLEET_KEY }}
        run: |
          umask 077
          mkdir -p keys
          printf '%s\\n' "$EDGECTL_FLEET_KEY" > keys/fleet.key
      - run: npx edgectl lint
      - name: Apply
        run: npx edgectl site apply

  publish:
    if: github.event_name == 'push' && startsWith(github.ref, 'refs/tags/v')
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
        with:
          lfs: true
      - uses: actions/setup-node@v4
        with:
          node-version: 22
      - name: Install edgectl
        run: if [ -f package-lock.json ]; then npm ci; else npm install --no-audit --no-fund; fi
      - name: Artifacts key
        env:
          EDGECTL_ARTIFACTS_KEY: \${{ secrets.EDGECTL_ARTIFACTS_KEY }}
        run: |
          umask 077
          mkdir -p keys
          printf '%s\\n' "$EDGECTL_ARTIFACTS_KEY" > keys/artifacts.key
      - run: npx edgectl lint
      - name: Publish
        # Policies first, then models, then adapters (an adapter's base model must be published).
        run: |
          for kind in policies models adapters; do
            for yaml in artifacts/$kind/*/artifact.yaml; do
              [ -e "$yaml" ] || continue
              npx edgectl publish artifact "$(dirname "$yaml")"
            done
          done

  rollout:
    if: github.event_name == 'workflow_dispatch'
    runs-on: ubuntu-latest
    concurrency:
      group: edgectl-fleet
      cancel-in-progress: false
    # A rollout outlives this job: if the job is cancelled, \`edgectl rollout resume\` continues it.
    timeout-minutes: 120
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-node@v4
        with:
          node-version: 22
      - name: Install edgectl
        run: if [ -f package-lock.json ]; then npm ci; else npm install --no-audit --no-fund; fi
      - name: Fleet key
        env:
          EDGECTL_FLEET_KEY: \${{ secrets.EDGECTL_FLEET_KEY }}
        run: |
          umask 077
          mkdir -p keys
          printf '%s\\n' "$EDGECTL_FLEET_KEY" > keys/fleet.key
      - name: Canary
        env:
          CANDIDATE: \${{ inputs.candidate }}
          SITES: \${{ inputs.sites }}
          STEPS: \${{ inputs.steps }}
        # Exit codes: 0 promoted, 5 rolled back, 6 paused or inconclusive, 7 timed out.
        run: |
          set +e
          args=(rollout canary "$CANDIDATE" --steps "$STEPS" --wait --json)
          if [ -n "$SITES" ]; then args+=(--sites "$SITES"); fi
          npx edgectl "\${args[@]}" > rollout.json
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

/** The example site: valid under the site schema once its public key is filled in. */
export function exampleSiteYaml(opts: { name: string; keyid: string; publicKey: string }): string {
  return `# An example site, written by \`edgectl init\`. Its secret key is in the site's data directory
# (.edgectl/sites/${opts.name}/site.key), never in git. Copy this file for more sites, or run
# \`edgectl site add <name> --labels region=...\`, which generates a key for each.
name: ${opts.name}
labels:
  region: eu-west
  tier: branch
publicKey:
  keyid: ${opts.keyid}
  key: ${opts.publicKey}
runtime:
  listen: 127.0.0.1:8080
  verifier: http://127.0.0.1:8700
  interval: 30s
assignments:
  model: model/draft@1.0.0
  adapters:
    - adapter/support@1.0.0
  policy: policy/default@1.0.0
`;
}

/** A package.json pinning edgectl, so CI installs the same version everyone ran locally. */
export function packageJson(opts: { name: string; edgectlVersion: string }): string {
  return `${JSON.stringify(
    {
      name: opts.name,
      private: true,
      description: 'GitOps repository of an edge AI fleet, operated with edgectl',
      devDependencies: { edgectl: `^${opts.edgectlVersion}` },
    },
    null,
    2,
  )}\n`;
}
