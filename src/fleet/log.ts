/**
 * `edgectl fleet log`: the verified history of the fleet log up to the head, one line per entry
 * (seq, time, signing key ids, a summary of its ops). Every listed entry's signature is checked
 * against the fleet role and the listed range is checked to chain (each `prev` is the previous
 * entry's digest, the last is the head's entry digest); an expired head is shown, flagged, since
 * reading history installs nothing.
 */
import { VerificationError } from '../foundation/errors.js';
import type { Store } from '../registry/store.js';
import type { TrustRoot } from '../registry/trust.js';
import { entryDigest } from './entry.js';
import { isHeadExpired } from './head.js';
import type { FleetOp } from './ops.js';
import { readEntries, readHead } from './read.js';
import { fleetKeys } from './signed.js';

export interface LogEntryView {
  seq: number;
  time: string;
  digest: string;
  prev: string | null;
  stateDigest: string;
  /** Key ids of the entry's signatures (verified under the fleet role). */
  keyids: string[];
  /** One readable line per op group. */
  ops: string[];
  opCount: number;
}

export interface FleetLogResult {
  head: { seq: number; snapshotSeq: number | null; issued: string; expires: string; expired: boolean } | null;
  entries: LogEntryView[];
}

function names(list: string[], max = 3): string {
  const shown = list.slice(0, max).join(', ');
  return list.length > max ? `${shown} (+${list.length - max} more)` : shown;
}

/** Readable summaries of an entry's ops; runs of `site.put`/`site.delete` are grouped. */
export function summarizeOps(ops: readonly FleetOp[]): string[] {
  const out: string[] = [];
  const puts = ops.flatMap((o) => (o.op === 'site.put' ? [o.site.name] : []));
  const deletes = ops.flatMap((o) => (o.op === 'site.delete' ? [o.site] : []));
  if (deletes.length) out.push(`site.delete ${names(deletes)}`);
  if (puts.length) out.push(`site.put ${names(puts)}`);
  for (const o of ops) {
    if (o.op === 'assign') {
      out.push(
        `assign ${o.slot} ${o.ref} -> ${o.sites.length} site${o.sites.length === 1 ? '' : 's'} (${names(o.sites)})`,
      );
    } else if (o.op === 'unassign') {
      const what =
        o.slot === 'adapters'
          ? `adapter/${o.name ?? ''}`
          : o.slot === 'shadow'
            ? `shadow adapter/${o.name ?? ''}`
            : o.slot;
      out.push(
        `unassign ${what} from ${o.sites.length} site${o.sites.length === 1 ? '' : 's'} (${names(o.sites)})`,
      );
    } else if (o.op !== 'site.put' && o.op !== 'site.delete') {
      out.push(`${o.op} ${o.rollout}`);
    }
  }
  return out;
}

/** Entries after seq `since` (0 = all) up to the head, verified and chained. */
export async function listFleetLog(
  store: Store,
  trust: TrustRoot,
  opts: { since?: number; now: Date },
): Promise<FleetLogResult> {
  const keys = fleetKeys(trust);
  const read = await readHead(store, keys, opts.now, true);
  if (!read) return { head: null, entries: [] };
  const { head } = read;
  const from = Math.max(1, (opts.since ?? 0) + 1);
  // Earlier (unrevoked) fleet keys may have signed old entries: the prev chain and the head's entry
  // digest, checked below, cover them.
  const verified =
    from <= head.seq ? await readEntries(store, keys, from, head.seq, 8, { allowPast: true }) : [];
  const entries: LogEntryView[] = [];
  let prevDigest: string | undefined;
  for (const { entry, keyids } of verified) {
    const digest = entryDigest(entry);
    if (prevDigest !== undefined && entry.prev !== prevDigest) {
      throw new VerificationError(
        `fleet entry ${entry.seq}: broken chain: prev does not match entry ${entry.seq - 1}`,
        {
          code: 'E_CHAIN',
        },
      );
    }
    prevDigest = digest;
    entries.push({
      seq: entry.seq,
      time: entry.time,
      digest,
      prev: entry.prev,
      stateDigest: entry.stateDigest,
      keyids,
      ops: summarizeOps(entry.ops),
      opCount: entry.ops.length,
    });
  }
  const last = entries.at(-1);
  if (last && last.seq === head.seq && last.digest !== head.entryDigest) {
    throw new VerificationError(
      `fleet head names entry ${head.seq} as ${head.entryDigest}, the log has ${last.digest}`,
      {
        code: 'E_HEAD_MISMATCH',
      },
    );
  }
  return {
    head: {
      seq: head.seq,
      snapshotSeq: head.snapshotSeq,
      issued: head.issued,
      expires: head.expires,
      expired: isHeadExpired(head, opts.now),
    },
    entries,
  };
}
