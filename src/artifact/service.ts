/**
 * What the `artifact *`, `publish artifact` and `registry gc` commands call (docs/cli.md): each
 * opens the registry named by the project configuration, loads the trust root in force (and the
 * signing key, for publish), runs one operation of this folder and closes the registry, so a
 * command only parses its flags and renders the result. The operations themselves (publish.ts,
 * pull.ts, verify.ts, show.ts, gc.ts) take an open store and stay usable on their own.
 */
import { resolve } from 'node:path';
import { NotFoundError } from '../foundation/errors.js';
import type { Io } from '../foundation/output.js';
import { loadSigningKey } from '../registry/keys.js';
import { openStore } from '../registry/open-store.js';
import type { Store } from '../registry/store.js';
import { loadRegistryTrust, type TrustRoot } from '../registry/trust.js';
import { loadTrustInForce } from '../registry/trust-history.js';
import { defaultCacheDir } from './chunk-cache.js';
import { gcRegistry, type GcResult } from './gc.js';
import { PACK_STORE_OPTIONS } from './pack.js';
import { publishArtifact, type PublishOptions, type PublishResult } from './publish.js';
import { pullArtifact, type PullResult } from './pull.js';
import { listPublished, showArtifact, type ListResult, type ShowResult } from './show.js';
import { verifyArtifact, type VerifyResult } from './verify.js';

/** The registry and trust root of the project (edgectl.yaml, with --registry and --trust applied). */
export interface RegistryTarget {
  registryUrl: string;
  trustPath: string;
  io: Io;
}

async function withStore<T>(url: string, body: (store: Store) => Promise<T>, packs = false): Promise<T> {
  const store = await (packs ? openStore(url, PACK_STORE_OPTIONS) : openStore(url));
  try {
    return await body(store);
  } finally {
    await store.close();
  }
}

/** `artifact list`: the published refs matching the selector (no trust needed to list). */
export function listArtifacts(
  t: Pick<RegistryTarget, 'registryUrl'>,
  selector?: string,
): Promise<ListResult> {
  return withStore(t.registryUrl, (store) => listPublished(store, selector));
}

/**
 * `artifact show`: the manifest, verified against the trust root in force; without one (and no
 * `--trust` given: `trustRequired` false) it is shown unverified, with a warning.
 */
export function showArtifactIn(t: RegistryTarget, ref: string, trustRequired: boolean): Promise<ShowResult> {
  return withStore(t.registryUrl, async (store) => {
    let trust: TrustRoot | undefined;
    try {
      trust = await loadTrustInForce(store, t.trustPath, new Date());
    } catch (err) {
      if (!(err instanceof NotFoundError) || trustRequired) throw err;
      t.io.log('warn', `no trust root (${err.message}); the manifest is shown unverified`);
    }
    return showArtifact(store, ref, trust);
  });
}

/** `artifact pull`: materialize `ref` into `dir` through the chunk cache (default cache dir when none). */
export function pullArtifactInto(
  t: RegistryTarget,
  o: { ref: string; dir: string; cacheDir: string | undefined; concurrency: number },
): Promise<PullResult> {
  return withStore(t.registryUrl, async (store) =>
    pullArtifact({
      store,
      ref: o.ref,
      trust: await loadTrustInForce(store, t.trustPath, new Date()),
      dir: resolve(o.dir),
      cacheDir: o.cacheDir ? resolve(o.cacheDir) : defaultCacheDir(),
      io: t.io,
      concurrency: o.concurrency,
    }),
  );
}

/** `artifact verify`: the signature and every byte of `ref`. */
export function verifyArtifactIn(t: RegistryTarget, ref: string, concurrency: number): Promise<VerifyResult> {
  return withStore(t.registryUrl, async (store) =>
    verifyArtifact({
      store,
      ref,
      trust: await loadTrustInForce(store, t.trustPath, new Date()),
      io: t.io,
      concurrency,
    }),
  );
}

/** `publish artifact`: signs with `keyPath` (or EDGECTL_SIGNING_KEY) and publishes to the registry. */
export function publishArtifactTo(
  t: RegistryTarget & { keyPath: string | undefined },
  o: Pick<PublishOptions, 'dir' | 'kind' | 'name' | 'version' | 'description' | 'concurrency'>,
): Promise<PublishResult> {
  const signer = loadSigningKey(t.keyPath, process.env, { flag: '--key', configKey: 'keys.artifacts' });
  return withStore(
    t.registryUrl,
    async (store) =>
      publishArtifact({
        ...o,
        store,
        signer,
        trust: await loadRegistryTrust(store, t.trustPath, new Date()),
        io: t.io,
      }),
    true,
  );
}

/** `registry gc`: delete unreferenced blobs older than the grace period. */
export function gcRegistryAt(
  t: Pick<RegistryTarget, 'registryUrl' | 'io'>,
  o: { dryRun: boolean; graceMs: number },
): Promise<GcResult> {
  return withStore(t.registryUrl, (store) => gcRegistry({ store, ...o, io: t.io }));
}
