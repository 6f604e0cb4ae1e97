/**
 * The registry checks of `edgectl doctor`: the registry is reachable, initialised with this
 * project's trust root (the same bytes, not just the same version), its trust chain verifies from
 * the local root, the fleet log chains (fleet-chain.ts), and the server enforces conditional
 * writes (probed as `registry init` does). Registry setup is described in docs/operations.md.
 */
import { existsSync } from 'node:fs';
import type { ProjectConfig } from '../config/project.js';
import {
  conditionalWritesEnforced,
  describeConditionalWrites,
  probeConditionalWrites,
  type ConditionalWriteProbeResult,
} from '../registry/conditional-writes.js';
import { decodeEnvelope } from '../registry/envelope.js';
import { trustRootKey } from '../registry/layout.js';
import { openStore } from '../registry/open-store.js';
import type { Store } from '../registry/store.js';
import { readTrustRootEnvelope, verifySelfSignedRoot, walkRegistryTrust } from '../registry/trust.js';
import { attachPastRoots } from '../registry/trust-history.js';
import { message, suggestionOf, type DoctorCheck } from './check.js';
import { checkFleetChain } from './fleet-chain.js';

export async function checkRegistry(
  cfg: ProjectConfig,
  trustOk: boolean,
  now: Date,
  env: NodeJS.ProcessEnv,
): Promise<DoctorCheck[]> {
  const base = { id: 'registry', title: 'Registry' };
  if (cfg.registry.startsWith('file:')) {
    const dir = cfg.registry.slice('file:'.length);
    if (!existsSync(dir)) {
      return [
        {
          ...base,
          status: 'fail',
          detail: `${cfg.registry}: the directory does not exist`,
          fix: 'edgectl registry init',
        },
      ];
    }
  }
  let store: Store;
  try {
    store = await openStore(cfg.registry, { s3: { env } });
  } catch (err) {
    return [
      { ...base, status: 'fail', detail: message(err), fix: suggestionOf(err) ?? 'check the registry URL' },
    ];
  }
  try {
    const checks: DoctorCheck[] = [];
    if (!trustOk) {
      try {
        await store.list('trust/root/');
        checks.push({
          ...base,
          status: 'warn',
          detail: `${cfg.registry} is reachable; its trust chain was not checked (no valid local trust root)`,
          fix: 'fix the trust root first',
        });
      } catch (err) {
        checks.push({ ...base, status: 'fail', detail: message(err), fix: registryFix(cfg) });
      }
    } else {
      const trusted = await checkRegistryTrust(store, cfg, now);
      checks.push(...trusted.checks);
      if (!trusted.ok) return checks;
    }
    checks.push(await checkConditionalWrites(store, cfg));
    return checks;
  } finally {
    await store.close().catch(() => undefined);
  }
}

function registryFix(cfg: ProjectConfig): string {
  return cfg.registry.startsWith('s3://')
    ? 'check AWS_REGION, AWS_ENDPOINT_URL_S3 (MinIO, R2), credentials and the bucket name; then edgectl registry init'
    : 'edgectl registry init';
}

async function checkConditionalWrites(store: Store, cfg: ProjectConfig): Promise<DoctorCheck> {
  const base = { id: 'registry.conditional-writes', title: 'Conditional writes' };
  let probe: ConditionalWriteProbeResult;
  try {
    probe = await probeConditionalWrites(store);
  } catch (err) {
    return {
      ...base,
      status: 'warn',
      detail: `could not probe (${message(err)}); read-only credentials cannot publish or apply either`,
      fix: registryFix(cfg),
    };
  }
  const detail = describeConditionalWrites(probe);
  if (conditionalWritesEnforced(probe)) return { ...base, status: 'ok', detail };
  const broken = probe.createOnly === 'broken' || probe.compareAndSwap === 'broken';
  return broken
    ? {
        ...base,
        status: 'fail',
        detail: `${detail}: the server refuses writes whose precondition holds, so publish or site apply fail`,
        fix: 'report the answers above to the S3 server vendor, or use a store that enforces If-None-Match/If-Match (AWS S3, Ceph RGW, recent MinIO, R2)',
      }
    : {
        ...base,
        status: 'warn',
        detail: `${detail}: concurrent publish or site apply runs can overwrite each other`,
        fix: 'fleet writes are refused here: use --single-writer (or singleWriter: true in edgectl.yaml) with one writer at a time, or a store that enforces If-None-Match/If-Match (AWS S3, Ceph RGW, recent MinIO, R2)',
      };
}

/**
 * The registry holds this project's trust root (same version, same bytes) and a verified chain
 * from it; then the fleet log's chain. `ok: false` stops the registry checks there.
 */
async function checkRegistryTrust(
  store: Store,
  cfg: ProjectConfig,
  now: Date,
): Promise<{ checks: DoctorCheck[]; ok: boolean }> {
  const base = { id: 'registry', title: 'Registry' };
  const checks: DoctorCheck[] = [];
  try {
    const local = readTrustRootEnvelope(cfg.trustPath);
    const version = verifySelfSignedRoot(local, cfg.trustPath).version;
    // The registry must hold this very root: walking only looks at newer versions.
    const key = trustRootKey(version);
    const obj = await store.get(key);
    if (!obj) {
      checks.push({
        ...base,
        status: 'fail',
        detail: `${cfg.registry} is reachable but not initialised with this trust root (${key} is missing)`,
        fix: 'edgectl registry init',
      });
      return { checks, ok: false };
    }
    if (decodeEnvelope(obj.body, key).payload !== local.payload) {
      checks.push({
        ...base,
        status: 'fail',
        detail: `${cfg.registry} holds a different trust root version ${version}: it belongs to another project`,
        fix: 'use the registry this trust root was published to, or another registry (then edgectl registry init)',
      });
      return { checks, ok: false };
    }
    const walked = await walkRegistryTrust(store, local, now);
    const newer =
      walked.root.version > version
        ? ` (the registry has newer version ${walked.root.version}; commit it to ${cfg.trustPath})`
        : '';
    checks.push({
      ...base,
      status: 'ok',
      detail: `${cfg.registry} is reachable; trust root version ${walked.root.version} verified from the local root${newer}`,
    });
    // With the earlier roots: entries signed before a fleet-key rotation still chain.
    checks.push(await checkFleetChain(store, await attachPastRoots(store, walked), now));
  } catch (err) {
    checks.push({
      ...base,
      status: 'fail',
      detail: message(err),
      fix: suggestionOf(err) ?? registryFix(cfg),
    });
    return { checks, ok: false };
  }
  return { checks, ok: true };
}
