/**
 * The guard every fleet write goes through (`site apply`, rollout decisions, `fleet repair`). The
 * fleet log is safe against concurrent writers only because entry seqs are create-only and the
 * head moves by compare-and-swap; on a store that does not enforce those (s3rver, some
 * S3-compatible servers) four concurrent applies can leave a head naming an entry the log does
 * not hold. So, by default, a fleet write on such a store is refused (UserError, exit 2: the
 * command as given is unsafe on this registry) with the fix named. With the operator's explicit
 * opt-in (`--single-writer`, or `singleWriter: true` in edgectl.yaml) the write takes the lease
 * `fleet/lease.json` instead (lease.ts) and says on stderr that this relies on the operator.
 *
 * Whether a store enforces conditional writes comes from the store's own probe (registry init's,
 * S3Store.probeConditionalWrites), asked once per registry URL per process; stores without a
 * probe (the directory backend) declare it.
 */
import { UserError } from '../foundation/errors.js';
import type { Io } from '../foundation/output.js';
import type { ConditionalWriteProbeResult } from '../registry/conditional-writes.js';
import type { Store } from '../registry/store.js';
import { LEASE_KEY, withLease, type LeaseOptions } from './lease.js';

export type ConditionalWrites = 'enforced' | 'not-enforced' | 'broken';

const probed = new Map<string, Promise<ConditionalWrites>>();
const warned = new Set<string>();

/** What a store's probe answers (registry/conditional-writes.ts); a bare boolean from older stores. */
type ProbeAnswer = boolean | ConditionalWriteProbeResult | undefined;

interface Probe {
  probeConditionalWrites(): Promise<ProbeAnswer>;
}

/** Both conditions must hold; a broken one outranks one that is merely not enforced. */
function normalize(answer: ProbeAnswer): ConditionalWrites {
  if (answer === true) return 'enforced';
  if (answer === false || answer === undefined) return 'not-enforced';
  const states = [answer.createOnly, answer.compareAndSwap];
  if (states.includes('broken')) return 'broken';
  return states.includes('not-enforced') ? 'not-enforced' : 'enforced';
}

/** Whether `store` enforces create-only and compare-and-swap; probed once per URL per process. */
export function conditionalWritesEnforced(store: Store): Promise<ConditionalWrites> {
  const probe = (store as Partial<Probe>).probeConditionalWrites;
  if (typeof probe !== 'function') {
    return Promise.resolve(store.enforcesConditionalWrites ? 'enforced' : 'not-enforced');
  }
  let answer = probed.get(store.url);
  if (!answer) {
    answer = probe.call(store).then(normalize);
    // A failed probe (network) is not remembered: the next write asks again.
    answer.catch(() => probed.delete(store.url));
    probed.set(store.url, answer);
  }
  return answer;
}

export interface FleetWriteGuardOptions {
  /** The command writing, for messages and the lease (`site apply`). */
  command: string;
  /** The operator's opt-in: take the lease on a store without conditional writes. */
  singleWriter?: boolean;
  io?: Io;
  lease?: Omit<LeaseOptions, 'command' | 'io'>;
}

export interface FleetWriteGuard {
  /** Throws the refusal, or says whether writes must hold the lease. */
  check(): Promise<'free' | 'lease'>;
  /** Runs `body` as the guard requires (directly, or holding the lease). */
  run<T>(body: () => Promise<T>): Promise<T>;
}

function refusal(store: Store, status: ConditionalWrites, command: string): UserError {
  const what =
    status === 'broken'
      ? 'answers conditional writes inconsistently (the probe found a precondition it does not honour correctly)'
      : 'does not enforce conditional writes (If-None-Match / If-Match)';
  return new UserError(
    `\`${command}\` refused: the registry ${store.url} ${what}, so concurrent fleet writers could break the fleet log`,
    {
      code: 'E_NO_CONDITIONAL_WRITES',
      suggestion:
        'use a store that enforces conditional writes (AWS S3, Ceph RGW, recent MinIO, R2, or a file: registry); ' +
        'or, if you make sure one writer runs at a time, pass --single-writer (or set `singleWriter: true` in edgectl.yaml) ' +
        `so edgectl takes the lease ${LEASE_KEY}`,
      details: { registry: store.url, conditionalWrites: status },
    },
  );
}

export function fleetWriteGuard(store: Store, opts: FleetWriteGuardOptions): FleetWriteGuard {
  const check = async (): Promise<'free' | 'lease'> => {
    const status = await conditionalWritesEnforced(store);
    if (status === 'enforced') return 'free';
    if (!opts.singleWriter) throw refusal(store, status, opts.command);
    if (!warned.has(store.url)) {
      warned.add(store.url);
      opts.io?.log(
        'warn',
        `single-writer mode: ${store.url} does not enforce conditional writes (${status}); each fleet write takes the lease ` +
          `${LEASE_KEY}. This relies on you: every writer of this registry must be edgectl with --single-writer, ` +
          'clocks must agree, and nothing else may write the fleet objects',
      );
    }
    return 'lease';
  };
  return {
    check,
    async run(body) {
      if ((await check()) === 'free') return body();
      return withLease(
        store,
        { ...opts.lease, command: opts.command, ...(opts.io ? { io: opts.io } : {}) },
        body,
      );
    },
  };
}

/** Runs one fleet write under the guard (see the module comment). */
export function guardFleetWrite<T>(
  store: Store,
  opts: FleetWriteGuardOptions,
  body: () => Promise<T>,
): Promise<T> {
  return fleetWriteGuard(store, opts).run(body);
}
