/**
 * Initialising a registry (`edgectl registry init`): publish the trust root chain under
 * `trust/root/<version>.json` (create-only, so re-running is a no-op and a different root at the same
 * version is refused), check that the registry's chain walks from the local root, and probe whether
 * the backend enforces conditional writes (create-only and compare-and-swap), which the fleet head's
 * safety against concurrent writers depends on.
 */
import { ConflictError, UserError } from '../foundation/errors.js';
import {
  conditionalWritesEnforced,
  probeConditionalWrites,
  type ConditionalWriteProbeResult,
} from './conditional-writes.js';
import { encodeEnvelope, type Envelope } from './envelope.js';
import { trustRootKey } from './layout.js';
import { openStore, type OpenStoreOptions } from './open-store.js';
import type { Store } from './store.js';
import { readTrustHistory } from './trust-files.js';
import {
  checkNotExpired,
  readTrustRootEnvelope,
  verifySelfSignedRoot,
  walkRegistryTrust,
  walkTrustChain,
} from './trust.js';

export interface InitRegistryResult {
  url: string;
  /** Newest trust root version in the registry after init (verified from the local root). */
  trustVersion: number;
  /** Whether the backend enforces both create-only and compare-and-swap (refuses wrong, accepts right). */
  conditionalWrites: boolean;
  /** What the probe found for each condition, with the server's answers. */
  conditionalWriteProbe: ConditionalWriteProbeResult;
  /** True when this run wrote the local root's version to the registry. */
  created: boolean;
  /** Trust root versions this run wrote (older archived versions included). */
  uploaded: number[];
}

export interface InitRegistryOptions {
  /** Older versions of the trust root (trust/root/<v>.json next to the trust file), uploaded too. */
  history?: Envelope[];
  now?: Date;
}

export async function initRegistry(
  store: Store,
  trustEnvelope: Envelope,
  opts: InitRegistryOptions = {},
): Promise<InitRegistryResult> {
  const now = opts.now ?? new Date();
  const root = verifySelfSignedRoot(trustEnvelope, 'local trust root');
  checkNotExpired(root, now, 'local trust root');

  // Publish the local chain from its oldest archived version; verify it first so nothing unverifiable
  // is ever uploaded.
  const older = (opts.history ?? []).filter((e) => versionOf(e) < root.version);
  const chain = [...older.sort((a, b) => versionOf(a) - versionOf(b)), trustEnvelope];
  const [oldest, ...rest] = chain;
  if (oldest && rest.length > 0) walkTrustChain(oldest, rest, now);

  const uploaded: number[] = [];
  let created = false;
  for (const env of chain) {
    const version = versionOf(env);
    const key = trustRootKey(version);
    let status: 'created' | 'exists';
    try {
      status = (await store.putIfAbsent(key, encodeEnvelope(env))).status;
    } catch (err) {
      if (!(err instanceof ConflictError)) throw err;
      throw new UserError(`${store.url} already holds a different trust root version ${version} (${key})`, {
        code: 'E_TRUST_MISMATCH',
        suggestion:
          'this registry belongs to another trust root: use another registry, or the trust root it was created with',
        details: { key, version },
      });
    }
    if (status === 'created') uploaded.push(version);
    if (version === root.version) created = status === 'created';
  }

  const walked = await walkRegistryTrust(store, trustEnvelope, now);
  const probe = await probeConditionalWrites(store);
  return {
    url: store.url,
    trustVersion: walked.root.version,
    conditionalWrites: conditionalWritesEnforced(probe),
    conditionalWriteProbe: probe,
    created,
    uploaded,
  };
}

function versionOf(env: Envelope): number {
  return verifySelfSignedRoot(env, 'trust root').version;
}

export interface InitRegistryFromFilesOptions {
  registryUrl: string;
  trustPath: string;
  now?: Date;
  store?: OpenStoreOptions;
}

/** `registry init`: opens the registry, publishes the project's trust root chain, closes the store. */
export async function initRegistryFromFiles(opts: InitRegistryFromFilesOptions): Promise<InitRegistryResult> {
  const trust = readTrustRootEnvelope(opts.trustPath);
  const history = readTrustHistory(opts.trustPath);
  const store = await openStore(opts.registryUrl, opts.store);
  try {
    return await initRegistry(store, trust, { history, ...(opts.now ? { now: opts.now } : {}) });
  } finally {
    await store.close();
  }
}
