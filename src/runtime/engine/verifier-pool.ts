/**
 * The runtime's connections to the cloud verifier: one HttpVerifier client (keep-alive pool,
 * identity read once, tokenizer checked against the draft's) per verifier URL, draft tokenizer and
 * policy timeout, and the circuit breaker the policy asks for. A client that failed is retired (new
 * requests connect afresh and re-read the identity, e.g. after the verifier restarted) and closed
 * once the requests still using it let go, so a slow round in one stream never cuts the sockets of
 * the others.
 */
import { HttpVerifier } from '../../verifier/client/http-verifier.js';
import { breakerForPolicy, type BreakerState, type CircuitBreaker } from '../../policy/circuit-breaker.js';
import type { EffectivePolicy } from '../../policy/load.js';

interface Entry {
  key: string;
  client: Promise<HttpVerifier>;
  users: number;
  retired: boolean;
}

export interface VerifierLease {
  verifier: HttpVerifier;
  /** The call failed: stop handing this client out. */
  fail(): void;
  release(): void;
}

export class VerifierPool {
  private readonly entries = new Map<string, Entry>();
  private breakerValue: CircuitBreaker | undefined;
  private breakerKey = '';
  lastError: string | null = null;
  lastUrl: string | null = null;

  constructor(
    private readonly now: () => number = Date.now,
    private readonly onBreaker?: (from: BreakerState, to: BreakerState) => void,
    /** The verifier's bearer token (`verifier up --token`), sent by every client of the pool. */
    private readonly token?: string,
  ) {}

  /**
   * The breaker for this verifier and the policy's settings: kept across generations while both
   * hold, new when the site moves to another verifier (the old one's failures say nothing about it).
   */
  breaker(policy: EffectivePolicy, url: string | undefined): CircuitBreaker {
    const key = `${url ?? ''}\n${policy.circuitBreaker.failureThreshold}/${policy.circuitBreaker.openSeconds}`;
    if (this.breakerValue === undefined || key !== this.breakerKey) {
      this.breakerKey = key;
      this.breakerValue = breakerForPolicy(policy, this.now, (from, to) => this.onBreaker?.(from, to));
    }
    return this.breakerValue;
  }

  get breakerState(): BreakerState {
    return this.breakerValue?.state ?? 'closed';
  }

  /** A connected client; throws what HttpVerifier.connect throws (unreachable, timeout, mismatch). */
  async acquire(url: string, tokenizerSha256: string, timeoutMs: number): Promise<VerifierLease> {
    const key = `${url}\n${tokenizerSha256}\n${timeoutMs}`;
    if (url !== this.lastUrl) {
      // The fleet state moved the site to another verifier: let the old clients go once idle.
      for (const e of [...this.entries.values()]) if (!e.key.startsWith(`${url}\n`)) this.retire(e);
      this.lastUrl = url;
    }
    let entry = this.entries.get(key);
    if (entry === undefined) {
      const e: Entry = {
        key,
        users: 0,
        retired: false,
        client: HttpVerifier.connect(url, {
          timeoutMs,
          // One retry of a 429/503: the verifier refused before doing work, but the deadline matters more.
          retries: 1,
          expectTokenizerSha256: tokenizerSha256,
          ...(this.token ? { token: this.token } : {}),
        }),
      };
      entry = e;
      this.entries.set(key, e);
      e.client.catch(() => this.retire(e));
    }
    const e = entry;
    e.users++;
    let verifier: HttpVerifier;
    try {
      verifier = await e.client;
    } catch (err) {
      e.users--;
      this.retire(e);
      throw err;
    }
    let released = false;
    return {
      verifier,
      fail: () => this.retire(e),
      release: () => {
        if (released) return;
        released = true;
        e.users--;
        this.closeIfIdle(e);
      },
    };
  }

  close(): void {
    for (const e of this.entries.values()) {
      e.retired = true;
      void e.client.then((c) => c.close()).catch(() => undefined);
    }
    this.entries.clear();
  }

  private retire(e: Entry): void {
    if (this.entries.get(e.key) === e) this.entries.delete(e.key);
    e.retired = true;
    this.closeIfIdle(e);
  }

  private closeIfIdle(e: Entry): void {
    if (e.retired && e.users === 0) void e.client.then((c) => c.close()).catch(() => undefined);
  }
}
