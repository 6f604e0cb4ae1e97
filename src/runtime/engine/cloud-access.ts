/**
 * How the cloud route reaches the server that answers it (issue #18 item 5): edgectl's verifier by
 * default (its `/v1/completions`, exact token ids), or the site's `runtime.cloud` model, any
 * OpenAI-compatible server. Both are a `CloudClient` (src/verifier/client/cloud-client.ts) behind
 * the same `RemoteAccess` the speculative route uses, so the route executor applies one set of
 * rules to either: ask the breaker first, record every failure in it, then the policy's fallback.
 * The site's cloud model has a breaker of its own (keyed by its URL and the policy's settings, kept
 * across generations like the verifier's): a failing hosted model says nothing about the verifier,
 * and the speculative route must not stop because the hosted model does. Its API key is read from
 * the environment variable the declaration names when a client is made, and never stored.
 */
import { UserError } from '../../foundation/errors.js';
import type { SiteCloud } from '../../fleet/site-schema.js';
import {
  breakerForPolicy,
  verifierFallback,
  type BreakerState,
  type CircuitBreaker,
} from '../../policy/circuit-breaker.js';
import type { EffectivePolicy } from '../../policy/load.js';
import { VerifierCloudClient, type CloudClient } from '../../verifier/client/cloud-client.js';
import { OpenAICloudClient } from '../../verifier/client/openai-cloud-client.js';
import type { RemoteAccess, VerifierAccess } from './verifier-access.js';

export interface CloudLease {
  client: CloudClient;
  /** The call failed (the route executor says so before it falls back). */
  fail(): void;
  release(): void;
}

export type CloudAccess = RemoteAccess<CloudLease>;

/** edgectl's verifier as the cloud route's server: the verifier's access, its client wrapped. */
export function verifierAsCloud(access: VerifierAccess): CloudAccess {
  return {
    url: access.url,
    breaker: access.breaker,
    acquire: async () => {
      const lease = await access.acquire();
      return { client: new VerifierCloudClient(lease.verifier), fail: lease.fail, release: lease.release };
    },
    fallback: access.fallback,
    ...(access.onError ? { onError: access.onError } : {}),
  };
}

/** The site's `runtime.cloud` clients and their breaker (one site has one cloud model at a time). */
export class CloudPool {
  private client: { key: string; client: OpenAICloudClient } | undefined;
  private breakerValue: CircuitBreaker | undefined;
  private breakerKey = '';
  lastError: string | null = null;

  constructor(
    private readonly env: NodeJS.ProcessEnv = process.env,
    private readonly now: () => number = Date.now,
    private readonly onBreaker?: (from: BreakerState, to: BreakerState) => void,
  ) {}

  get breakerState(): BreakerState {
    return this.breakerValue?.state ?? 'closed';
  }

  /** The access for this declaration and policy; `onError` hears each failure (metrics). */
  access(
    cloud: SiteCloud,
    policy: EffectivePolicy,
    onError: (message: string, kind: string) => void,
  ): CloudAccess {
    const breaker = this.breaker(cloud, policy);
    return {
      url: cloud.url,
      breaker,
      acquire: () => Promise.resolve(this.lease(cloud, policy.verifier.timeoutMs)),
      fallback: () => verifierFallback(policy, breaker),
      onError: (message, kind) => {
        this.lastError = message;
        onError(message, kind);
      },
    };
  }

  private breaker(cloud: SiteCloud, policy: EffectivePolicy): CircuitBreaker {
    const key = `${cloud.url}\n${policy.circuitBreaker.failureThreshold}/${policy.circuitBreaker.openSeconds}`;
    if (this.breakerValue === undefined || key !== this.breakerKey) {
      this.breakerKey = key;
      this.breakerValue = breakerForPolicy(policy, this.now, (from, to) => this.onBreaker?.(from, to));
    }
    return this.breakerValue;
  }

  /** A client (fetch keeps no per-client state worth retiring, so fail and release are no-ops). */
  private lease(cloud: SiteCloud, timeoutMs: number): CloudLease {
    const apiKey = cloud.apiKeyEnv === undefined ? undefined : this.env[cloud.apiKeyEnv];
    if (cloud.apiKeyEnv !== undefined && (apiKey === undefined || apiKey === '')) {
      throw new UserError(`runtime.cloud.apiKeyEnv: the environment variable ${cloud.apiKeyEnv} is not set`, {
        code: 'E_CLOUD_KEY',
        suggestion: `Set ${cloud.apiKeyEnv} in the site daemon's environment (the key is never stored in the fleet).`,
      });
    }
    const key = [cloud.url, cloud.model, cloud.api ?? 'completions', apiKey ?? '', timeoutMs].join('\n');
    if (this.client?.key !== key) {
      const client = new OpenAICloudClient({
        url: cloud.url,
        model: cloud.model,
        api: cloud.api ?? 'completions',
        apiKey,
        apiKeyEnv: cloud.apiKeyEnv,
        timeoutMs,
      });
      this.client = { key, client };
    }
    return { client: this.client.client, fail: () => undefined, release: () => undefined };
  }
}
