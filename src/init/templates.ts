/**
 * The text of the files `edgectl init` writes into a new GitOps repository: edgectl.yaml, the
 * .gitignore that keeps secret keys and local state out of git, short READMEs for artifacts/,
 * sites/, trust/ and keys/, the example site and the package.json (the GitHub Actions workflow is in
 * workflow.ts). They live in code rather than in template files so the built CLI needs nothing
 * outside dist/ to scaffold a repository, except the example artifacts it copies (package-root.ts).
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

\`edgectl init\` put three here, the ones the example site in sites/ runs: \`models/draft\` (a small
draft model), \`adapters/support\` (a LoRA adapter on it) and \`policies/default\`. Publish them
before the first \`edgectl site plan\`, in this order (an adapter needs its base model):

\`\`\`sh
edgectl publish artifact artifacts/policies/default
edgectl publish artifact artifacts/models/draft
edgectl publish artifact artifacts/adapters/support
\`\`\`
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

/** The example site: valid under the site schema once its public key is filled in. */
export function exampleSiteYaml(opts: { name: string; keyid: string; publicKey: string }): string {
  return `# An example site, written by \`edgectl init\`. Its secret key is in the site's data directory
# (.edgectl/sites/${opts.name}/site.key), never in git. Copy this file for more sites, or run
# \`edgectl site add <name> --labels region=...\`, which generates a key for each. Its assignments
# are the artifacts under artifacts/: publish them first (artifacts/README.md), then plan and apply.
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

/**
 * A package.json pinning edgectl (a version, or the tarball/git spec given to `init`), so CI and
 * every developer install the edgectl that wrote the repository.
 */
export function packageJson(opts: { name: string; edgectlSpec: string }): string {
  return `${JSON.stringify(
    {
      name: opts.name,
      private: true,
      description: 'GitOps repository of an edge AI fleet, operated with edgectl',
      devDependencies: { edgectl: opts.edgectlSpec },
    },
    null,
    2,
  )}\n`;
}
