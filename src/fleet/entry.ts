/**
 * Fleet log entries (docs/formats.md "Fleet log") and the pure apply function every
 * reader shares: `site apply` (the writer), `readFleet`, and the site sync agent.
 *
 * Entry `{ seq, prev, time, ops, stateDigest }`:
 * - `seq` starts at 1; the genesis is seq 0 with no entry digest and the empty state.
 * - `prev` is the entry digest of entry seq-1 (null for seq 1). The entry digest is `sha256:` of
 *   the signed DSSE payload bytes, which the writer produces as the entry's RFC 8785 canonical
 *   JSON (so for an entry built in memory it is the digest of its canonical JSON). Hashing the
 *   payload rather than the envelope file keeps the chain independent of signatures: re-signing
 *   (key rotation, adding a threshold signature) never breaks it, any change of content does.
 * - `stateDigest` is the digest of the state after applying the ops; apply recomputes and checks it.
 *
 * `applyEntry` applies only seq = applied + 1 (checking `prev` and `stateDigest`). Re-applying the
 * last applied entry is a no-op and a different entry at that seq is a fork, refused. An entry
 * older than that is a no-op too: only the last entry digest is kept, and a fork further back
 * cannot go unnoticed anyway because the next entry's `prev` and the head's entry digest would not
 * match. Every failure is a VerificationError.
 */
import { z } from 'zod';
import { VerificationError } from '../foundation/errors.js';
import { canonicalJsonBytes } from '../foundation/canonical-json.js';
import { digestOf, isDigest } from '../foundation/digest.js';
import {
  applyOps,
  applyOpsToDraft,
  draftOf,
  parseOp,
  stateOf,
  type FleetOp,
  type StateDraft,
} from './ops.js';
import type { RolloutReducer } from './rollout-ops.js';
import { emptyFleetState, stateDigest, type FleetState } from './state.js';

export interface FleetEntry {
  seq: number;
  prev: string | null;
  /** ISO 8601 UTC time the entry was written. */
  time: string;
  ops: FleetOp[];
  stateDigest: string;
}

/** A state together with the log position it reflects. */
export interface AppliedFleet {
  /** Seq of the last applied entry; 0 = genesis. */
  seq: number;
  /** Entry digest of that entry; null at genesis. */
  entryDigest: string | null;
  state: FleetState;
}

export function genesis(): AppliedFleet {
  return { seq: 0, entryDigest: null, state: emptyFleetState() };
}

export interface ApplyOptions {
  /** Folds rollout ops (rollout-ops.ts); the default refuses them. */
  rolloutReducer?: RolloutReducer;
}

const digestField = z.string().refine(isDigest, 'must be sha256:<64 hex>');
const entryShape = z
  .object({
    seq: z.number().int().min(1),
    prev: digestField.nullable(),
    time: z.iso.datetime({ error: 'must be an ISO 8601 UTC time' }),
    ops: z.array(z.unknown()).min(1, 'an entry has at least one op'),
    stateDigest: digestField,
  })
  .strict();

const knownDigests = new WeakMap<FleetEntry, string>();

/** Digest of an entry (of its canonical JSON); cached for entries decoded from the registry. */
export function entryDigest(entry: FleetEntry): string {
  let d = knownDigests.get(entry);
  if (d === undefined) {
    d = digestOf(canonicalJsonBytes(entry));
    knownDigests.set(entry, d);
  }
  return d;
}

/**
 * Validates the payload of a signature-checked entry envelope and remembers its digest. `raw` is the
 * parsed payload and `payload` the exact signed bytes the digest is taken over.
 */
export function parseEntryPayload(raw: unknown, payload: Uint8Array, what: string): FleetEntry {
  const shape = entryShape.safeParse(raw);
  if (!shape.success) {
    const issue = shape.error.issues[0];
    const field = issue?.path.map(String).join('.') ?? '';
    throw new VerificationError(
      `${what}: invalid fleet entry: ${field ? `${field}: ` : ''}${issue?.message}`,
      {
        code: 'E_ENTRY_INVALID',
      },
    );
  }
  const ops = shape.data.ops.map((op, i) => parseOp(op, `${what}: ops[${i}]`));
  const entry: FleetEntry = { ...shape.data, ops };
  knownDigests.set(entry, digestOf(payload));
  return entry;
}

function fail(message: string, code: string, details: Record<string, unknown>): VerificationError {
  return new VerificationError(message, { code, details });
}

/**
 * Checks that `entry` is the next one after `applied` (seq and prev chain). Returns 'applied' when
 * it is the already applied entry (a no-op), 'older' for an older seq, 'next' otherwise.
 */
function position(applied: AppliedFleet, entry: FleetEntry): 'applied' | 'older' | 'next' {
  const digest = entryDigest(entry);
  if (entry.seq === applied.seq) {
    if (digest === applied.entryDigest) return 'applied';
    throw fail(
      `fleet entry ${entry.seq}: fork: a different entry (${digest}) was already applied at this seq (${applied.entryDigest})`,
      'E_FORK',
      { seq: entry.seq, applied: applied.entryDigest, offered: digest },
    );
  }
  if (entry.seq < applied.seq) return 'older';
  if (entry.seq !== applied.seq + 1) {
    throw fail(`fleet entry ${entry.seq}: gap: the next entry to apply is ${applied.seq + 1}`, 'E_LOG_GAP', {
      seq: entry.seq,
      expected: applied.seq + 1,
    });
  }
  if (entry.prev !== applied.entryDigest) {
    throw fail(
      `fleet entry ${entry.seq}: broken chain: prev is ${entry.prev ?? 'null'} but entry ${applied.seq} is ${applied.entryDigest ?? 'null (genesis)'}`,
      'E_CHAIN',
      { seq: entry.seq, prev: entry.prev, expected: applied.entryDigest },
    );
  }
  return 'next';
}

function checkStateDigest(entry: FleetEntry, state: FleetState): void {
  const actual = stateDigest(state);
  if (actual !== entry.stateDigest) {
    throw fail(
      `fleet entry ${entry.seq}: state digest mismatch: the entry says ${entry.stateDigest}, applying it gives ${actual}`,
      'E_STATE_DIGEST',
      { seq: entry.seq, expected: entry.stateDigest, actual },
    );
  }
}

function context(entry: FleetEntry, opts: ApplyOptions) {
  return {
    seq: entry.seq,
    time: entry.time,
    ...(opts.rolloutReducer ? { rolloutReducer: opts.rolloutReducer } : {}),
  };
}

/**
 * Applies one entry to an applied fleet (pure). Returns the input unchanged for an already applied
 * seq with the same content; throws VerificationError for a fork, a gap, a broken `prev` chain, a
 * state digest that does not match, or an op that does not fit the state.
 */
export function applyEntry(applied: AppliedFleet, entry: FleetEntry, opts: ApplyOptions = {}): AppliedFleet {
  if (position(applied, entry) !== 'next') return applied;
  const state = applyOps(applied.state, entry.ops, context(entry, opts));
  checkStateDigest(entry, state);
  return { seq: entry.seq, entryDigest: entryDigest(entry), state };
}

/**
 * Applies consecutive entries (pure), for a reader catching up from a snapshot. Every entry is
 * chain-checked like applyEntry, but the state is copied once and its digest is computed once, for
 * the last entry: a full-state digest per entry would cost O(entries x fleet size). The result is
 * the same fold of the same signed, chained ops, and it must match the digest the newest entry
 * signs; only a wrong digest in an intermediate entry (a writer bug, not a forgery, as every entry
 * is signed) goes unnoticed, which a site applying entries one by one with applyEntry still catches.
 */
export function applyEntries(
  applied: AppliedFleet,
  entries: readonly FleetEntry[],
  opts: ApplyOptions = {},
): AppliedFleet {
  let draft: StateDraft | undefined;
  let seq = applied.seq;
  let digest = applied.entryDigest;
  let last: FleetEntry | undefined;
  for (const entry of entries) {
    if (position({ seq, entryDigest: digest, state: applied.state }, entry) !== 'next') continue;
    draft ??= draftOf(applied.state);
    applyOpsToDraft(draft, entry.ops, context(entry, opts));
    seq = entry.seq;
    digest = entryDigest(entry);
    last = entry;
  }
  if (!draft || !last) return applied;
  const state = stateOf(draft);
  checkStateDigest(last, state);
  return { seq, entryDigest: digest, state };
}

/**
 * Builds the next entry from ops (what `site apply` signs) and the fleet it leads to. `payload` is
 * the entry's canonical JSON, the bytes to sign (its digest is the entry digest).
 */
export function buildEntry(
  applied: AppliedFleet,
  ops: FleetOp[],
  time: Date,
  opts: ApplyOptions = {},
): { entry: FleetEntry; payload: Buffer; next: AppliedFleet } {
  const seq = applied.seq + 1;
  const iso = time.toISOString();
  // Readers parse every op of a signed entry; refuse here anything they would refuse there.
  ops.forEach((op, i) => parseOp(op, `fleet entry ${seq}: ops[${i}]`));
  const state = applyOps(applied.state, ops, {
    seq,
    time: iso,
    ...(opts.rolloutReducer ? { rolloutReducer: opts.rolloutReducer } : {}),
  });
  const entry: FleetEntry = {
    seq,
    prev: applied.entryDigest,
    time: iso,
    ops,
    stateDigest: stateDigest(state),
  };
  const payload = canonicalJsonBytes(entry);
  const digest = digestOf(payload);
  knownDigests.set(entry, digest);
  return { entry, payload, next: { seq, entryDigest: digest, state } };
}
