/**
 * The site's pinned trust root (docs/formats.md "Signatures across key rotations", docs/operations.md "Key rotation"): the root the site was provisioned
 * with, copied from the project's trust/root.json at the first sync, and from then on moved only
 * forward by walking the registry's `trust/root/<N+1>.json` chain (each version signed by the
 * previous one's root keys; src/registry/trust.ts). A newer root is persisted as soon as it
 * verifies, as TUF clients do, so a later rollback of the registry's roots is refused.
 */
import { existsSync } from 'node:fs';
import { NotFoundError } from '../foundation/errors.js';
import { encodeEnvelope, type Envelope } from '../registry/envelope.js';
import type { Store } from '../registry/store.js';
import { readTrustRootEnvelope, verifySelfSignedRoot, type TrustRoot } from '../registry/trust.js';
import { walkTrustInForce } from '../registry/trust-history.js';
import { writeFileAtomic } from '../foundation/atomic-file.js';

export interface PinnedTrust {
  envelope: Envelope;
  root: TrustRoot;
  /** True when this call provisioned the pin from the project's trust root. */
  provisioned: boolean;
}

/** The pinned root of a data directory, provisioning it from `projectTrustPath` at first use. */
export async function loadPinnedTrust(
  pinPath: string,
  projectTrustPath: string | undefined,
): Promise<PinnedTrust> {
  if (existsSync(pinPath)) {
    const envelope = readTrustRootEnvelope(pinPath);
    return { envelope, root: verifySelfSignedRoot(envelope, pinPath), provisioned: false };
  }
  if (!projectTrustPath || !existsSync(projectTrustPath)) {
    throw new NotFoundError(
      `the site has no pinned trust root (${pinPath}) and there is no project trust root to copy`,
      {
        code: 'E_NO_TRUST_ROOT',
        suggestion:
          'run the first sync from the project directory (it copies trust/root.json), pass --trust <path>, ' +
          'or copy the trust root into the data directory as trust-root.json',
        details: { pin: pinPath, project: projectTrustPath ?? null },
      },
    );
  }
  const envelope = readTrustRootEnvelope(projectTrustPath);
  const root = verifySelfSignedRoot(envelope, projectTrustPath);
  await writeFileAtomic(pinPath, encodeEnvelope(envelope));
  return { envelope, root, provisioned: true };
}

/**
 * Walks the registry's root chain from the pin and persists the newest verified root. Throws
 * VerificationError for a rollback, fork, gap or an expired newest root.
 */
export async function advanceTrust(
  store: Store,
  pinPath: string,
  pinned: PinnedTrust,
  now: Date,
): Promise<TrustRoot> {
  // With the earlier roots attached: fleet objects and manifests signed before a key rotation.
  const walked = await walkTrustInForce(store, pinned.envelope, now);
  if (walked.walked.length > 0) {
    await writeFileAtomic(pinPath, encodeEnvelope(walked.envelope));
    pinned.envelope = walked.envelope;
  }
  pinned.root = walked.root;
  return walked.root;
}
