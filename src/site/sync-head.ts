/**
 * Steps 2-3 of a site sync (sync.ts runs them under the data directory's lock; the steps are listed
 * in sync.ts's module comment and docs/running-sites.md): poll fleet/head.json with a conditional
 * GET and, on a new head, walk the trust root chain, verify the head and catch up entries or a
 * snapshot (fleet-sync.ts). The outcome is the site state to commit if the rest of the sync
 * succeeds; nothing is written here. A site key that differs from the one the fleet declares is a
 * warning, not a refusal, since the data directory may simply be the wrong one.
 */
import { fleetKeys } from '../fleet/signed.js';
import { stateDigest, type FleetState } from '../fleet/state.js';
import { readPublicKeyFile } from '../registry/keys.js';
import { catchUp, checkFresh, missingHeadError, pollHead, verifyHead } from './fleet-sync.js';
import { appliedOf, readFleetState, type SiteSyncState } from './state-file.js';
import { advanceTrust, type PinnedTrust } from './trust-pin.js';
import type { Run } from './sync-generation.js';

function checkSiteKey(run: Run, fleet: FleetState): void {
  const declared = fleet.sites[run.opts.site]?.declaration.publicKey.keyid;
  if (!declared) return;
  let local: string;
  try {
    local = readPublicKeyFile(run.paths.sitePublicKey).keyid;
  } catch {
    return;
  }
  if (local !== declared) {
    run.warnings.push(
      `the site key in ${run.paths.sitePublicKey} (${local}) is not the key the fleet declares for ${run.opts.site} (${declared}); ` +
        'check --data-dir, or re-key the site with `edgectl site add --rekey`',
    );
  }
}

export interface HeadOutcome {
  state: SiteSyncState;
  trust: PinnedTrust['root'];
  headChanged: boolean;
  /** The fleet state caught up to, when the head changed. */
  fleet: FleetState | undefined;
  entriesApplied: number;
  snapshotSeq: number | null;
}

/** Steps 2-3: poll the head; on a new one, walk the root chain, verify it and catch up. */
export async function headPhase(
  run: Run,
  state0: SiteSyncState,
  trustPin: PinnedTrust,
  now: Date,
): Promise<HeadOutcome> {
  const { opts, paths } = run;
  const { store, site } = opts;
  const out: HeadOutcome = {
    state: state0,
    trust: trustPin.root,
    headChanged: false,
    fleet: undefined,
    entriesApplied: 0,
    snapshotSeq: null,
  };
  const poll = await pollHead(store, state0.head?.etag);
  if (poll.kind === 'missing') {
    if (state0.appliedSeq > 0) throw await missingHeadError(store, state0.appliedSeq);
    run.warnings.push(`the registry ${store.url} has no fleet head yet: run \`edgectl site apply\` first`);
    return out;
  }
  if (poll.kind === 'unchanged') {
    if (state0.head) checkFresh(state0.head, now);
    return out;
  }
  const trust = await advanceTrust(store, paths.trustRoot, trustPin, now);
  const head = verifyHead(poll.body, fleetKeys(trust), now);
  checkFresh(head, now);
  const from = appliedOf(state0, await readFleetState(paths.fleetStates, state0));
  const up = await catchUp(store, trust, from, head, {
    ...(opts.snapshotWhenBehind !== undefined ? { snapshotWhenBehind: opts.snapshotWhenBehind } : {}),
    ...(opts.rolloutReducer ? { rolloutReducer: opts.rolloutReducer } : {}),
  });
  if (up.applied.seq !== state0.appliedSeq) {
    run.io?.log(
      'info',
      `fleet seq ${state0.appliedSeq} -> ${up.applied.seq}${up.snapshotSeq ? ` (via snapshot ${up.snapshotSeq})` : ''}`,
    );
  }
  const state: SiteSyncState = {
    ...state0,
    registry: store.url,
    appliedSeq: up.applied.seq,
    entryDigest: up.applied.entryDigest,
    stateDigest: stateDigest(up.applied.state),
    head: { etag: poll.etag, ...head },
    assignments: up.applied.state.sites[site]?.assignments ?? null,
  };
  checkSiteKey(run, up.applied.state);
  return {
    state,
    trust,
    headChanged: true,
    fleet: up.applied.state,
    entriesApplied: up.entries,
    snapshotSeq: up.snapshotSeq,
  };
}
