/**
 * What a registry backend does with conditional writes, found out by trying (`registry init`,
 * `doctor`). Each condition is probed from both sides: a write whose precondition is wrong must be
 * refused AND one whose precondition is right must be accepted. A server that refuses both (Ceph RGW
 * refuses `If-Match` with the quoted ETag it returned itself) is `broken`, not `enforced`; one that
 * accepts both (s3rver) is `not-enforced`. The fleet's safety against concurrent writers (docs/formats.md, docs/operations.md "The registry on S3, MinIO or R2") depends on both `createOnly` and `compareAndSwap` being `enforced`; fleet write-safety
 * (leases on stores without them) builds on this result, so its shape is a contract.
 *
 * The S3 probe itself lives with the S3 backend (s3-probe.ts); directory stores enforce both by
 * construction (O_EXCL, lock + rename) and are reported without writing anything.
 */
import type { Store } from './store.js';

/** enforced: wrong refused and right accepted; not-enforced: wrong accepted; broken: right refused. */
export type ConditionState = 'enforced' | 'not-enforced' | 'broken';

/** How `If-Match` must carry an ETag for this server to accept it. */
export type EtagForm = 'as-returned' | 'unquoted';

/** One request of the probe and the server's answer, for reports and support. */
export interface ProbeAnswer {
  /** What the request tested, e.g. `If-Match with the current ETag (as returned)`. */
  step: string;
  /** The conditional header sent, e.g. `If-None-Match: *`. */
  header: string;
  /** What a server that enforces the condition answers. */
  expected: 'accept' | 'refuse';
  /** What this server did. */
  outcome: 'accepted' | 'refused';
  /** HTTP status of the answer (200, 412, 409, ...). */
  status: number;
}

export interface ConditionalWriteProbeResult {
  /** Create-only writes (`If-None-Match: *` on S3, O_EXCL on fs). */
  createOnly: ConditionState;
  /** Compare-and-swap (`If-Match` on S3, lock + rename on fs). */
  compareAndSwap: ConditionState;
  /** The `If-Match` ETag form the server accepted (null when no form was accepted or not S3). */
  ifMatchForm: EtagForm | null;
  /** Every probe request and its answer (empty for backends that are not probed over the wire). */
  answers: ProbeAnswer[];
}

/** True when both conditions hold: concurrent writers are safe. */
export function conditionalWritesEnforced(r: ConditionalWriteProbeResult): boolean {
  return r.createOnly === 'enforced' && r.compareAndSwap === 'enforced';
}

/** One line per condition, e.g. `create-only: enforced; compare-and-swap: broken (...)`. */
export function describeConditionalWrites(r: ConditionalWriteProbeResult): string {
  const part = (name: string, state: ConditionState, headers: RegExp): string => {
    if (state === 'enforced') {
      const form =
        name === 'compare-and-swap' && r.ifMatchForm === 'unquoted' ? ' (unquoted If-Match ETag)' : '';
      return `${name}: enforced${form}`;
    }
    const seen = r.answers
      .filter((a) => headers.test(a.header))
      .map(
        (a) =>
          `${a.step}: HTTP ${a.status} (${a.outcome}, expected ${a.expected === 'accept' ? 'accepted' : 'refused'})`,
      );
    return `${name}: ${state}${seen.length > 0 ? ` [${seen.join('; ')}]` : ''}`;
  };
  return `${part('create-only', r.createOnly, /If-None-Match/)}; ${part('compare-and-swap', r.compareAndSwap, /If-Match/)}`;
}

/** Stores that probe the server over the wire (S3). */
export interface ConditionalWriteProber {
  probeConditionalWrites(): Promise<ConditionalWriteProbeResult>;
}

function canProbe(store: Store): store is Store & ConditionalWriteProber {
  return typeof (store as Partial<ConditionalWriteProber>).probeConditionalWrites === 'function';
}

/**
 * Probes the store (S3: writes, then deletes, a scratch object under `edgectl-probe/`), or reports
 * a backend that enforces both by construction. Errors other than the server's answers (denied,
 * unreachable) propagate.
 */
export async function probeConditionalWrites(store: Store): Promise<ConditionalWriteProbeResult> {
  if (canProbe(store)) return store.probeConditionalWrites();
  const state: ConditionState = store.enforcesConditionalWrites ? 'enforced' : 'not-enforced';
  return { createOnly: state, compareAndSwap: state, ifMatchForm: null, answers: [] };
}
