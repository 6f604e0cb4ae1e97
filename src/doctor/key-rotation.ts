/**
 * Doctor checks for states a key rotation can leave behind (docs/operations.md "Key rotation"),
 * kept apart from doctor.ts's other checks. Each one runs the verification the real readers run
 * (registry/trust-history.ts's rule) and FAILS on what would block `site apply` or `site sync`,
 * naming the command that fixes it:
 *
 * - `fleet.signatures`: the head, snapshot and entries as a site reads them (head signed by a key
 *   no longer in the fleet role, anything signed by a revoked key) -> `edgectl fleet resign`;
 * - `artifacts.signatures`: every manifest the fleet state assigns (what sites fetch) and every
 *   ref the site declarations name (what `site apply` resolves), signed by an artifacts key that
 *   left the role and not pinned, or revoked -> `edgectl artifact resign <ref>`.
 *
 * That keys.fleet / keys.artifacts hold their role is doctor.ts's `keys.*` check.
 */
import { isEdgectlError } from '../foundation/errors.js';
import type { ProjectConfig } from '../config/project.js';
import { resolveRef } from '../artifact/manifest-store.js';
import { parseRef } from '../artifact/ref.js';
import { readFleet, type FleetRead } from '../fleet/read.js';
import { pinnedDigests } from '../fleet/resolve.js';
import { checkSiteFiles, siteFilesIn } from '../fleet/site-files.js';
import type { FleetState } from '../fleet/state.js';
import { assignedArtifacts } from '../site/manifests.js';
import { openStore } from '../registry/open-store.js';
import type { Store } from '../registry/store.js';
import type { TrustRoot } from '../registry/trust.js';
import { loadTrustInForce } from '../registry/trust-history.js';
import type { DoctorCheck } from './doctor.js';

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function fixOf(err: unknown, fallback: string): string {
  return (isEdgectlError(err) ? err.suggestion : undefined) ?? fallback;
}

/** Runs both checks against the project's registry (skipped, as warn, when it cannot be read). */
export async function checkKeyRotation(
  cfg: ProjectConfig,
  env: NodeJS.ProcessEnv,
  now: Date,
): Promise<DoctorCheck[]> {
  let store: Store;
  try {
    store = await openStore(cfg.registry, { s3: { env } });
  } catch {
    return []; // the registry check already failed and said why
  }
  try {
    let trust: TrustRoot;
    try {
      trust = await loadTrustInForce(store, cfg.trustPath, now);
    } catch {
      return []; // the trust or registry check already failed and said why
    }
    const fleet = await checkFleetSignatures(store, trust, now);
    return [fleet.check, await checkArtifactSignatures(cfg, store, trust, fleet.read?.state)];
  } finally {
    await store.close().catch(() => undefined);
  }
}

async function checkFleetSignatures(
  store: Store,
  trust: TrustRoot,
  now: Date,
): Promise<{ check: DoctorCheck; read?: FleetRead }> {
  const base = { id: 'fleet.signatures', title: 'Fleet signatures' };
  try {
    // As a site reads it (head: current fleet role only); expiry is the sites' own check.
    const read = await readFleet(store, trust, { now, allowExpired: true });
    const detail = read.head
      ? `head seq ${read.seq} and the log verify under trust root version ${trust.version}`
      : 'no fleet head yet';
    return { check: { ...base, status: 'ok', detail }, read };
  } catch (err) {
    return {
      check: {
        ...base,
        status: 'fail',
        detail: `sites cannot sync and site apply may fail: ${message(err)}`,
        fix: fixOf(err, 'edgectl fleet resign'),
      },
    };
  }
}

/** Refs to check: assigned in the state (with the digest sites pin) and declared in sites/. */
function refsToCheck(cfg: ProjectConfig, state: FleetState | undefined): Map<string, string | undefined> {
  const refs = new Map<string, string | undefined>();
  for (const site of Object.values(state?.sites ?? {})) {
    for (const a of assignedArtifacts(site.assignments)) refs.set(a.ref, a.manifestDigest);
  }
  const { sites } = checkSiteFiles(siteFilesIn(cfg.sitesDir));
  for (const s of sites) {
    const a = s.assignments;
    for (const ref of [a.model, a.policy, ...a.adapters]) if (ref && !refs.has(ref)) refs.set(ref, undefined);
  }
  return refs;
}

async function checkArtifactSignatures(
  cfg: ProjectConfig,
  store: Store,
  trust: TrustRoot,
  state: FleetState | undefined,
): Promise<DoctorCheck> {
  const base = { id: 'artifacts.signatures', title: 'Artifact signatures' };
  const pinned = state ? pinnedDigests(state) : new Set<string>();
  const failed: { ref: string; err: unknown }[] = [];
  const refs = refsToCheck(cfg, state);
  for (const [ref, digest] of refs) {
    try {
      await resolveRef(store, parseRef(ref), trust, { pinned: digest ? new Set([digest]) : pinned });
    } catch (err) {
      // A ref that is not published is `site plan`'s error to report, not a signature problem.
      if (isEdgectlError(err) && err.exitCode === 3) continue;
      failed.push({ ref, err });
    }
  }
  if (failed.length === 0) {
    return { ...base, status: 'ok', detail: `${refs.size} assigned or declared artifact(s) verify` };
  }
  const first = failed[0] as { ref: string; err: unknown };
  return {
    ...base,
    status: 'fail',
    detail:
      `${failed.length} artifact(s) would be refused by site apply or site sync: ` +
      failed.map((f) => f.ref).join(', ') +
      ` (${message(first.err)})`,
    fix: failed.map((f) => fixOf(f.err, `edgectl artifact resign ${f.ref}`)).join('; '),
  };
}
