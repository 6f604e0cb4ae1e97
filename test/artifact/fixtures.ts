/**
 * Test fixtures for artifact tests: a registry with a real trust root (root key + artifacts key,
 * the pinned root file on disk and trust/root/1.json in the store), artifact source directories
 * (tiny real ONNX models, PEFT adapters, policies) and deterministic pseudo-random bytes.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { memoryIo } from '../../src/foundation/output.js';
import { encodeEnvelope, type Envelope } from '../../src/registry/envelope.js';
import { generateKeyPair, writeKeyPair, type KeyPair } from '../../src/registry/keys.js';
import { trustRootKey } from '../../src/registry/layout.js';
import type { Store } from '../../src/registry/store.js';
import { createTrustRoot, loadRegistryTrust, type TrustRoot } from '../../src/registry/trust.js';
import { silentProgress } from '../../src/artifact/progress.js';
import { publishArtifact, type PublishOptions, type PublishResult } from '../../src/artifact/publish.js';
import { tinyOnnx, type TinyOnnxOptions } from './onnx-fixture.js';

export function tempDir(prefix = 'edgectl-art-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Deterministic bytes (xorshift32), so chunk boundaries are the same on every run. */
export function seededBytes(n: number, seed = 1): Buffer {
  const out = Buffer.allocUnsafe(n);
  let x = seed >>> 0 || 1;
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out.writeUInt32LE(x >>> 0, i);
  }
  for (; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

export interface RegistryFixture {
  store: Store;
  trust: TrustRoot;
  /** The pinned trust root file. */
  trustPath: string;
  rootEnvelope: Envelope;
  rootKey: KeyPair;
  signer: KeyPair;
  /** Secret key file of `signer` (mode 0600). */
  signerPath: string;
  dir: string;
}

export async function setupRegistry(store: Store, opts: { expires?: Date } = {}): Promise<RegistryFixture> {
  const dir = tempDir('edgectl-trust-');
  const rootKey = generateKeyPair();
  const signer = generateKeyPair();
  const rootEnvelope = createTrustRoot({
    rootKeys: [rootKey],
    artifactsKeys: [signer],
    expires: opts.expires ?? new Date(Date.now() + 365 * 86_400_000),
  });
  const trustPath = join(dir, 'root.json');
  writeFileSync(trustPath, encodeEnvelope(rootEnvelope));
  await store.putIfAbsent(trustRootKey(1), encodeEnvelope(rootEnvelope));
  const signerPath = join(dir, 'artifacts.key');
  writeKeyPair(signerPath, signer);
  const trust = await loadRegistryTrust(store, trustPath, new Date());
  return { store, trust, trustPath, rootEnvelope, rootKey, signer, signerPath, dir };
}

export interface ModelDirOptions extends Partial<TinyOnnxOptions> {
  name?: string;
  version?: string;
  role?: 'draft' | 'verifier';
  /** Extra weight-like bytes (weights.bin), for chunking and dedup tests. */
  weights?: Buffer;
  /** config.json num_hidden_layers (default: the ONNX layer count). */
  configLayers?: number;
  lora?: { target_modules: string[]; max_rank: number };
}

export function makeModelDir(parent: string, opts: ModelDirOptions = {}): string {
  const layers = opts.layers ?? 2;
  const dir = join(parent, `model-${opts.name ?? 'draft'}-${Math.random().toString(36).slice(2, 8)}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'model.onnx'), tinyOnnx({ ...opts, layers }));
  writeFileSync(
    join(dir, 'config.json'),
    JSON.stringify({
      num_hidden_layers: opts.configLayers ?? layers,
      vocab_size: 8,
      hidden_size: 8,
      num_attention_heads: 2,
      num_key_value_heads: 2,
      ...(opts.lora ? { lora: opts.lora } : {}),
    }),
  );
  writeFileSync(
    join(dir, 'tokenizer.json'),
    JSON.stringify({ version: '1.0', model: { type: 'BPE', vocab: {}, merges: [] } }),
  );
  if (opts.weights) writeFileSync(join(dir, 'weights.bin'), opts.weights);
  writeFileSync(
    join(dir, 'artifact.yaml'),
    `kind: model\nname: ${opts.name ?? 'draft'}\nversion: ${opts.version ?? '1.0.0'}\nrole: ${opts.role ?? 'draft'}\n`,
  );
  return dir;
}

/** A PEFT adapter directory: safetensors header with LoRA A/B tensors of rank `r`. */
export function makeAdapterDir(
  parent: string,
  opts: {
    base?: string;
    r?: number;
    modules?: string[];
    layers?: number;
    name?: string;
    tensorRank?: number;
  } = {},
): string {
  const r = opts.r ?? 4;
  const modules = opts.modules ?? ['q_proj'];
  const dir = join(parent, `adapter-${Math.random().toString(36).slice(2, 8)}`);
  mkdirSync(dir, { recursive: true });
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let offset = 0;
  const rank = opts.tensorRank ?? r;
  for (let layer = 0; layer < (opts.layers ?? 2); layer++) {
    for (const m of modules) {
      const prefix = `base_model.model.model.layers.${layer}.self_attn.${m}`;
      for (const [ab, shape] of [
        ['A', [rank, 4]],
        ['B', [4, rank]],
      ] as const) {
        const bytes = shape[0] * shape[1] * 4;
        header[`${prefix}.lora_${ab}.weight`] = {
          dtype: 'F32',
          shape,
          data_offsets: [offset, offset + bytes],
        };
        offset += bytes;
      }
    }
  }
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  writeFileSync(join(dir, 'adapter_model.safetensors'), Buffer.concat([len, json, seededBytes(offset, 7)]));
  writeFileSync(
    join(dir, 'adapter_config.json'),
    JSON.stringify({
      peft_type: 'LORA',
      r,
      lora_alpha: 2 * r,
      target_modules: modules,
      base_model_name_or_path: 'hf/x',
    }),
  );
  writeFileSync(
    join(dir, 'artifact.yaml'),
    `kind: adapter\nname: ${opts.name ?? 'support'}\nversion: 1.0.0\n${opts.base ? `base: ${opts.base}\n` : ''}`,
  );
  return dir;
}

export function makePolicyDir(
  parent: string,
  opts: { version?: string; yaml?: string; extra?: Buffer } = {},
): string {
  const dir = join(parent, `policy-${Math.random().toString(36).slice(2, 8)}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'policy.yaml'),
    opts.yaml ?? 'version: 1\nrouting:\n  default: speculative\nredaction:\n  detectors: [email]\n',
  );
  if (opts.extra) writeFileSync(join(dir, 'data.bin'), opts.extra);
  writeFileSync(
    join(dir, 'artifact.yaml'),
    `kind: policy\nname: default\nversion: ${opts.version ?? '1.0.0'}\n`,
  );
  return dir;
}

/** publishArtifact with the fixture's signer and trust, quietly. */
export function publish(
  fx: RegistryFixture,
  dir: string,
  extra: Partial<PublishOptions> = {},
): Promise<PublishResult> {
  return publishArtifact({
    dir,
    store: fx.store,
    signer: fx.signer,
    trust: fx.trust,
    io: memoryIo(),
    progress: silentProgress,
    ...extra,
  });
}

/** Replaces a registry object (tampering): delete then create, which works on both backends. */
export async function overwrite(store: Store, key: string, body: Buffer): Promise<void> {
  await store.delete(key);
  await store.putIfAbsent(key, body);
}
