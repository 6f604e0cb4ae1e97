/**
 * A real registry for fleet tests: a trust root with separate root, artifacts and fleet keys, and
 * signed artifact manifests. The manifests are minimal (no files) but real: valid against the
 * manifest schema, signed by the artifacts key and stored at artifacts/<kind>/<name>/<version>.json,
 * which is all the fleet reads of an artifact. `writeProject` lays out a project directory
 * (edgectl.yaml, trust/root.json, keys/) for tests that run the CLI.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CHUNKING_ALGORITHM, DEFAULT_CHUNKER } from '../../src/artifact/chunker.js';
import { manifestDigest, type Manifest } from '../../src/artifact/manifest.js';
import { PayloadType, encodeEnvelope, signEnvelope, type Envelope } from '../../src/registry/envelope.js';
import { generateKeyPair, writeKeyPair, type KeyPair } from '../../src/registry/keys.js';
import { artifactKey } from '../../src/registry/layout.js';
import type { Store } from '../../src/registry/store.js';
import { createTrustRoot, verifySelfSignedRoot, type TrustRoot } from '../../src/registry/trust.js';

export interface TestTrust {
  root: KeyPair;
  artifacts: KeyPair;
  fleet: KeyPair;
  envelope: Envelope;
  trust: TrustRoot;
}

export function makeTrust(): TestTrust {
  const root = generateKeyPair();
  const artifacts = generateKeyPair();
  const fleet = generateKeyPair();
  const envelope = createTrustRoot({
    rootKeys: [root],
    artifactsKeys: [artifacts],
    fleetKeys: [fleet],
    expires: new Date(Date.now() + 365 * 86_400_000),
  });
  return { root, artifacts, fleet, envelope, trust: verifySelfSignedRoot(envelope) };
}

/** Publishes a signed, file-less manifest for `<kind>/<name>@<version>`; returns its digest. */
export async function publishManifest(store: Store, signer: KeyPair, ref: string): Promise<string> {
  const m = /^(model|adapter|policy|index)\/([a-z0-9_-]+)@(.+)$/.exec(ref);
  if (!m) throw new Error(`bad test ref ${ref}`);
  const [, kind, name, version] = m as unknown as [string, Manifest['kind'], string, string];
  const manifest: Manifest = {
    schema: 'edgectl.artifact-manifest.v1',
    kind,
    name,
    version,
    created: '2030-01-01T00:00:00.000Z',
    size: 0,
    meta: {},
    chunking: { algorithm: CHUNKING_ALGORITHM, ...DEFAULT_CHUNKER },
    blobs: [],
    files: [],
  };
  const env = signEnvelope(PayloadType.artifact, manifest, [signer]);
  await store.putIfAbsent(artifactKey(kind, name, version), encodeEnvelope(env));
  return manifestDigest(manifest);
}

export const EXAMPLE_REFS = ['model/draft@1.0.0', 'adapter/support@1.0.0', 'policy/default@1.0.0'];

/** A site YAML as a user would write it. */
export function siteYaml(
  name: string,
  opts: {
    labels?: Record<string, string>;
    model?: string;
    adapters?: string[];
    policy?: string;
    extra?: string;
    /** base64 public key; default: a new one. */
    key?: string;
  } = {},
): string {
  const key = opts.key ?? Buffer.from(generateKeyPair().publicKey).toString('base64');
  const lines = [`name: ${name}`, 'labels:'];
  for (const [k, v] of Object.entries(opts.labels ?? { region: 'eu-west' })) lines.push(`  ${k}: ${v}`);
  lines.push(`publicKey: ${key}`);
  lines.push('assignments:');
  lines.push(`  model: ${opts.model ?? 'model/draft@1.0.0'}`);
  const adapters = opts.adapters ?? ['adapter/support@1.0.0'];
  lines.push(adapters.length ? '  adapters:' : '  adapters: []');
  for (const a of adapters) lines.push(`    - ${a}`);
  lines.push(`  policy: ${opts.policy ?? 'policy/default@1.0.0'}`);
  if (opts.extra) lines.push(opts.extra);
  return `${lines.join('\n')}\n`;
}

export function writeSite(sitesDir: string, name: string, yaml: string): void {
  mkdirSync(sitesDir, { recursive: true });
  writeFileSync(join(sitesDir, `${name}.yaml`), yaml);
}

/**
 * A project directory using a directory registry at `<dir>/registry`: edgectl.yaml, the pinned
 * trust root, and the fleet key at keys/fleet.key.
 */
export function writeProject(dir: string, t: TestTrust, registry = 'file:registry'): void {
  mkdirSync(join(dir, 'trust'), { recursive: true });
  writeFileSync(join(dir, 'trust/root.json'), encodeEnvelope(t.envelope));
  writeKeyPair(join(dir, 'keys/fleet.key'), t.fleet);
  writeKeyPair(join(dir, 'keys/artifacts.key'), t.artifacts);
  writeFileSync(join(dir, 'edgectl.yaml'), `registry: ${registry}\nkeys:\n  fleet: keys/fleet.key\n`);
  mkdirSync(join(dir, 'sites'), { recursive: true });
}
