/**
 * What the `site plan`, `site apply` and `fleet log` commands call: each opens the registry named
 * by the project configuration, walks its trust chain from the pinned root, runs one fleet
 * operation and closes the store. Kept apart from the pure modules so those stay usable by the
 * site sync agent without any configuration or key handling.
 */
import { relative } from 'node:path';
import type { Io } from '../foundation/output.js';
import { loadSigningKey } from '../registry/keys.js';
import { openStore } from '../registry/open-store.js';
import type { Store } from '../registry/store.js';
import type { TrustRoot } from '../registry/trust.js';
import { loadTrustInForce } from '../registry/trust-history.js';
import { applyFleetWithRetries, type ApplyFleetResult } from './apply.js';
import { isHeadExpired } from './head.js';
import { listFleetLog, type FleetLogResult } from './log.js';
import { planFleet, type FleetPlan } from './plan.js';
import { readFleet } from './read.js';
import { repairFleet, type FleetRepairResult } from './repair.js';
import { resignFleet, type ResignFleetResult } from './resign.js';
import { fleetKeys } from './signed.js';
import { pinnedDigests, registryRefResolver } from './resolve.js';
import { loadSiteDeclarations } from './site-files.js';
import { guardFleetWrite } from './write-guard.js';

export interface RegistryTarget {
  registryUrl: string;
  trustPath: string;
  /** Paths in messages are shown relative to this directory (default: the working directory). */
  cwd?: string;
}

/** Shows paths relative to `cwd` when that is shorter, as users typed them. */
export function displayPath(cwd: string = process.cwd()): (path: string) => string {
  return (path) => {
    const rel = relative(cwd, path);
    return rel && !rel.startsWith('..') && rel.length < path.length ? rel : path;
  };
}

async function withRegistry<T>(
  target: RegistryTarget,
  now: Date,
  body: (store: Store, trust: TrustRoot) => Promise<T>,
): Promise<T> {
  const store = await openStore(target.registryUrl);
  try {
    // With the earlier roots: objects signed before a key rotation (registry/trust-history.ts).
    const trust = await loadTrustInForce(store, target.trustPath, now);
    return await body(store, trust);
  } finally {
    await store.close();
  }
}

export interface SitePlanResult {
  registry: string;
  /** Seq of the fleet head the plan was made against (0: empty fleet). */
  seq: number;
  headExpired: boolean;
  changes: boolean;
  summary: FleetPlan['summary'];
  sites: FleetPlan['sites'];
  ops: FleetPlan['ops'];
  held?: FleetPlan['held'];
}

export async function planSites(
  opts: RegistryTarget & { sitesDir: string; now?: Date },
): Promise<SitePlanResult> {
  const now = opts.now ?? new Date();
  const display = displayPath(opts.cwd);
  const desired = loadSiteDeclarations(opts.sitesDir, display);
  return withRegistry(opts, now, async (store, trust) => {
    const fleet = await readFleet(store, trust, { now, allowExpired: true });
    const plan = await planFleet(
      desired,
      fleet.state,
      registryRefResolver(store, trust, pinnedDigests(fleet.state)),
    );
    return {
      registry: store.url,
      seq: fleet.seq,
      headExpired: fleet.head !== undefined && isHeadExpired(fleet.head, now),
      changes: plan.ops.length > 0,
      summary: plan.summary,
      sites: plan.sites,
      ops: plan.ops,
      ...(plan.held ? { held: plan.held } : {}),
    };
  });
}

export interface ApplySitesOptions extends RegistryTarget {
  sitesDir: string;
  /** Fleet secret key file; undefined = EDGECTL_SIGNING_KEY. */
  keyPath: string | undefined;
  env?: NodeJS.ProcessEnv;
  retries?: number;
  snapshotEvery?: number;
  headTtlMs?: number;
  clock?: () => Date;
  io?: Io;
  /** Take the lease on a store without conditional writes instead of refusing (write-guard.ts). */
  singleWriter?: boolean;
}

export async function applySites(opts: ApplySitesOptions): Promise<ApplyFleetResult & { registry: string }> {
  const clock = opts.clock ?? (() => new Date());
  const display = displayPath(opts.cwd);
  const signer = loadSigningKey(opts.keyPath, opts.env ?? process.env, {
    flag: '--key',
    configKey: 'keys.fleet',
  });
  const desired = loadSiteDeclarations(opts.sitesDir, display);
  return withRegistry(opts, clock(), async (store, trust) => {
    const guard = {
      command: 'site apply',
      singleWriter: opts.singleWriter ?? false,
      ...(opts.io ? { io: opts.io } : {}),
    };
    const result = await guardFleetWrite(store, guard, () =>
      applyFleetWithRetries(
        {
          store,
          trust,
          signer,
          desired,
          clock,
          display,
          ...(opts.snapshotEvery !== undefined ? { snapshotEvery: opts.snapshotEvery } : {}),
          ...(opts.headTtlMs !== undefined ? { headTtlMs: opts.headTtlMs } : {}),
          ...(opts.io ? { io: opts.io } : {}),
        },
        opts.retries ?? 0,
      ),
    );
    return { registry: store.url, ...result };
  });
}

export async function fleetLog(
  opts: RegistryTarget & { since?: number; now?: Date },
): Promise<FleetLogResult> {
  const now = opts.now ?? new Date();
  return withRegistry(opts, now, (store, trust) =>
    listFleetLog(store, trust, { now, ...(opts.since ? { since: opts.since } : {}) }),
  );
}

export interface RepairFleetOptions extends RegistryTarget {
  /** Write (default: dry run). */
  apply: boolean;
  /** Fleet secret key file; undefined = EDGECTL_SIGNING_KEY. Only read with `apply`. */
  keyPath: string | undefined;
  env?: NodeJS.ProcessEnv;
  singleWriter?: boolean;
  io?: Io;
  now?: Date;
}

/** `fleet repair`: the repair report; with `apply`, written under the fleet write guard. */
export async function repairFleetLog(opts: RepairFleetOptions): Promise<FleetRepairResult> {
  const now = opts.now ?? new Date();
  const signer = opts.apply
    ? loadSigningKey(opts.keyPath, opts.env ?? process.env, { flag: '--key', configKey: 'keys.fleet' })
    : undefined;
  return withRegistry(opts, now, async (store, trust) => {
    const run = () =>
      repairFleet({
        store,
        keys: fleetKeys(trust),
        now,
        apply: opts.apply,
        ...(signer ? { signers: [signer] } : {}),
      });
    if (!opts.apply) return run();
    const guard = {
      command: 'fleet repair',
      singleWriter: opts.singleWriter ?? false,
      ...(opts.io ? { io: opts.io } : {}),
    };
    return guardFleetWrite(store, guard, run);
  });
}

export interface ResignOptions extends RegistryTarget {
  /** Fleet secret key file; undefined = EDGECTL_SIGNING_KEY. */
  keyPath: string | undefined;
  acceptRevoked?: boolean;
  env?: NodeJS.ProcessEnv;
  headTtlMs?: number;
  clock?: () => Date;
}

/** `fleet resign`: re-signs the head (and objects signed by revoked keys) with the current fleet key. */
export async function resignFleetHead(
  opts: ResignOptions,
): Promise<ResignFleetResult & { registry: string }> {
  const clock = opts.clock ?? (() => new Date());
  const signer = loadSigningKey(opts.keyPath, opts.env ?? process.env, {
    flag: '--key',
    configKey: 'keys.fleet',
  });
  return withRegistry(opts, clock(), async (store, trust) => ({
    registry: store.url,
    ...(await resignFleet({
      store,
      trust,
      signers: [signer],
      clock,
      ...(opts.acceptRevoked ? { acceptRevoked: true } : {}),
      ...(opts.headTtlMs !== undefined ? { headTtlMs: opts.headTtlMs } : {}),
    })),
  }));
}
