/**
 * Doctor's fleet log check: the whole log inspected like `fleet repair` does (fleet/chain.ts). A
 * head naming a missing or different entry, a gap, an entry that does not chain or a snapshot of
 * another branch fails with its seq (readers exit 4 on such a log until it is repaired); entries
 * that chain past the head (an interrupted apply the next apply includes) only warn. Kept apart
 * from doctor.ts so the registry checks there stay about the store itself.
 */
import { fleetKeys } from '../fleet/signed.js';
import { inspectFleetChain } from '../fleet/chain.js';
import type { Store } from '../registry/store.js';
import type { TrustRoot } from '../registry/trust.js';
import type { DoctorCheck } from './doctor.js';

export async function checkFleetChain(store: Store, root: TrustRoot, now: Date): Promise<DoctorCheck> {
  const base = { id: 'fleet.chain', title: 'Fleet log' };
  let report;
  try {
    report = await inspectFleetChain(store, fleetKeys(root), now);
  } catch (err) {
    return { ...base, status: 'fail', detail: `could not read the fleet log: ${(err as Error).message}` };
  }
  const fails = report.problems.filter((p) => p.severity === 'fail');
  if (fails.length > 0) {
    return {
      ...base,
      status: 'fail',
      detail: fails.map((p) => `seq ${p.seq}: ${p.message}`).join('; '),
      fix: 'edgectl fleet repair (dry run: shows what it drops), then edgectl fleet repair --apply',
    };
  }
  const warns = report.problems.filter((p) => p.severity === 'warn');
  if (warns.length > 0) {
    return {
      ...base,
      status: 'warn',
      detail: warns.map((p) => `seq ${p.seq}: ${p.message}`).join('; '),
      fix: 'edgectl site apply',
    };
  }
  if (!report.head) return { ...base, status: 'ok', detail: 'no fleet log yet' };
  return {
    ...base,
    status: 'ok',
    detail: `entries 1-${report.valid.seq} chain to the head (seq ${report.head.seq})`,
  };
}
