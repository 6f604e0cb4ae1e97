/**
 * How the route executor reaches the verifier (route-executor.ts): the URL (none configured means
 * the fallback applies at once), the circuit breaker, a lease on a connected client, the fallback
 * rule and where failures are reported. The site builds one per request from its VerifierPool and
 * the generation's policy (`poolAccess`); `edgectl generate` and `edgectl bench speculative` wrap
 * the one client they connected (`clientAccess`) with a breaker of the policy defaults and the
 * `raise` fallback: the verifier's own error is thrown, never turned into a silent edge answer.
 */
import type { HttpVerifier } from '../../verifier/client/http-verifier.js';
import {
  breakerForPolicy,
  verifierFallback,
  type CircuitBreaker,
  type VerifierFallback,
} from '../../policy/circuit-breaker.js';
import type { EffectivePolicy } from '../../policy/load.js';
import type { VerifierLease, VerifierPool } from './verifier-pool.js';

/** How the route executor reaches a remote service: the verifier, or a site's cloud model (cloud-access.ts). */
export interface RemoteAccess<L extends { fail(): void; release(): void }> {
  /** The service's base URL; undefined when none is configured. */
  readonly url: string | undefined;
  readonly breaker: CircuitBreaker;
  /** A connected client; throws what connecting throws (unreachable, timeout, tokenizer mismatch). */
  acquire(): Promise<L>;
  /** What to do now that the verifier cannot help (`raise`: throw the verifier's own error). */
  fallback(): VerifierFallback | { kind: 'raise' };
  /** A verifier failure (message, metrics kind), before the fallback runs. */
  onError?: (message: string, kind: string) => void;
}

export type VerifierAccess = RemoteAccess<VerifierLease>;

/** The site's access: the pool's client and breaker for this URL and policy. */
export function poolAccess(
  pool: VerifierPool,
  policy: EffectivePolicy,
  url: string | undefined,
  tokenizerSha256: string,
  onError: (message: string, kind: string) => void,
): VerifierAccess {
  const breaker = pool.breaker(policy, url);
  return {
    url,
    breaker,
    acquire: () => pool.acquire(url as string, tokenizerSha256, policy.verifier.timeoutMs),
    fallback: () => verifierFallback(policy, breaker),
    onError: (message, kind) => {
      pool.lastError = message;
      onError(message, kind);
    },
  };
}

/** One client connected by the caller (kept open across requests; the caller closes it). */
export function clientAccess(verifier: HttpVerifier, breaker?: CircuitBreaker): VerifierAccess {
  const b = breaker ?? breakerForPolicy({}, Date.now);
  return {
    url: verifier.url,
    breaker: b,
    acquire: () => Promise.resolve({ verifier, fail: () => undefined, release: () => undefined }),
    fallback: () => ({ kind: 'raise' }),
  };
}

/** No verifier at all (edge-only callers): a route that needs one fails with a clear error. */
export function noVerifierAccess(): VerifierAccess {
  return {
    url: undefined,
    breaker: breakerForPolicy({}, Date.now),
    acquire: () => Promise.reject(new Error('no verifier is configured')),
    fallback: () => ({ kind: 'raise' }),
  };
}
