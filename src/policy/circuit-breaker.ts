/**
 * The verifier circuit breaker (docs/running-sites.md, policy in docs/formats.md): after `failureThreshold`
 * consecutive verifier failures the runtime stops calling the verifier for `openSeconds`, then lets
 * one trial request through; its success closes the breaker, its failure opens it again. While
 * open, requests get the policy's fallback (`verifierFallback`): an edge-unverified answer or a 503
 * with Retry-After. Owns the state machine only; time comes from an injected clock so tests drive
 * it without waiting.
 *
 *   closed --N consecutive failures--> open --cool-down elapsed--> half-open
 *   half-open --trial succeeds--> closed;  half-open --trial fails--> open (new cool-down)
 *
 * A half-open trial whose outcome is never recorded (the request was cancelled) is given up after
 * another cool-down, so the breaker can never wedge in half-open.
 */
import type { Policy } from './schema.js';

export type BreakerState = 'closed' | 'open' | 'half-open';

export interface BreakerOptions {
  failureThreshold: number;
  /** Cool-down in milliseconds before a trial request is let through. */
  openMs: number;
  /** Milliseconds since some epoch (Date.now in production). */
  now: () => number;
  onTransition?: (from: BreakerState, to: BreakerState, at: number) => void;
}

export const BREAKER_DEFAULTS = { failureThreshold: 5, openSeconds: 30 } as const;

export class CircuitBreaker {
  private current: BreakerState = 'closed';
  private failures = 0;
  private openedAt = 0;
  private trialStartedAt: number | undefined;

  constructor(private readonly opts: BreakerOptions) {
    if (!Number.isInteger(opts.failureThreshold) || opts.failureThreshold < 1) {
      throw new TypeError(`failureThreshold must be an integer >= 1, not ${opts.failureThreshold}`);
    }
    if (!(opts.openMs > 0)) throw new TypeError(`openMs must be > 0, not ${opts.openMs}`);
  }

  /** The state now (an open breaker whose cool-down has passed reads as half-open). */
  get state(): BreakerState {
    if (this.current === 'open' && this.opts.now() - this.openedAt >= this.opts.openMs) {
      this.move('half-open');
    }
    return this.current;
  }

  /** Consecutive failures counted while closed. */
  get consecutiveFailures(): number {
    return this.failures;
  }

  /** Milliseconds until a trial request may be sent (0 when requests may go now). */
  retryAfterMs(): number {
    const s = this.state;
    if (s === 'open') return Math.max(0, this.openedAt + this.opts.openMs - this.opts.now());
    if (s === 'half-open' && this.trialStartedAt !== undefined) {
      return Math.max(0, this.trialStartedAt + this.opts.openMs - this.opts.now());
    }
    return 0;
  }

  /**
   * Asks to call the verifier. True when closed, or when half-open and no trial is in flight (this
   * call becomes the trial). False means: use the fallback.
   */
  tryAcquire(): boolean {
    const s = this.state;
    if (s === 'closed') return true;
    if (s === 'open') return false;
    const now = this.opts.now();
    if (this.trialStartedAt !== undefined && now - this.trialStartedAt < this.opts.openMs) return false;
    this.trialStartedAt = now;
    return true;
  }

  recordSuccess(): void {
    this.failures = 0;
    this.trialStartedAt = undefined;
    if (this.state !== 'closed') this.move('closed');
  }

  recordFailure(): void {
    const s = this.state;
    this.trialStartedAt = undefined;
    if (s === 'half-open') {
      this.open();
      return;
    }
    if (s === 'open') return;
    this.failures++;
    if (this.failures >= this.opts.failureThreshold) this.open();
  }

  private open(): void {
    this.openedAt = this.opts.now();
    this.failures = 0;
    this.move('open');
  }

  private move(to: BreakerState): void {
    const from = this.current;
    if (from === to) return;
    this.current = to;
    this.opts.onTransition?.(from, to, this.opts.now());
  }
}

/** The breaker a policy asks for (defaults when the policy has no `circuitBreaker` section). */
export function breakerForPolicy(
  policy: Pick<Policy, 'circuitBreaker'>,
  now: () => number,
  onTransition?: BreakerOptions['onTransition'],
): CircuitBreaker {
  const cb = policy.circuitBreaker;
  return new CircuitBreaker({
    failureThreshold: cb?.failureThreshold ?? BREAKER_DEFAULTS.failureThreshold,
    openMs: (cb?.openSeconds ?? BREAKER_DEFAULTS.openSeconds) * 1000,
    now,
    ...(onTransition ? { onTransition } : {}),
  });
}

export type VerifierFallback =
  /** Answer from the draft model alone and mark the response unverified. */
  | { kind: 'edge-unverified' }
  /**
   * The site's cloud model (`runtime.cloud`) answers a request that has no output yet; otherwise
   * (output already streamed, no cloud model, or the cloud model is what failed) as edge-unverified.
   */
  | { kind: 'cloud' }
  /** Refuse with HTTP 503 and a Retry-After header. */
  | { kind: 'unavailable'; status: 503; retryAfterSeconds: number; message: string };

/** What to do for a request that cannot reach the verifier (breaker open or the call failed). */
export function verifierFallback(
  policy: Pick<Policy, 'verifier'>,
  breaker: CircuitBreaker,
): VerifierFallback {
  const fallback = policy.verifier?.fallback ?? 'error';
  if (fallback === 'edge-unverified') return { kind: 'edge-unverified' };
  if (fallback === 'cloud') return { kind: 'cloud' };
  const retryAfterSeconds = Math.max(1, Math.ceil(breaker.retryAfterMs() / 1000));
  return {
    kind: 'unavailable',
    status: 503,
    retryAfterSeconds,
    message: `the verifier is unavailable; retry in ${retryAfterSeconds} s (the site policy does not allow unverified answers)`,
  };
}
