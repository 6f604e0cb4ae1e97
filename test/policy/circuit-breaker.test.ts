/**
 * Circuit breaker transitions with a fake clock: closed -> open after N consecutive failures,
 * open -> half-open after the cool-down, one trial at a time, trial success closes, trial failure
 * reopens, an abandoned trial is given up after a cool-down; and the policy's fallback.
 */
import { describe, expect, it } from 'vitest';
import {
  CircuitBreaker,
  breakerForPolicy,
  verifierFallback,
  type BreakerState,
} from '../../src/policy/circuit-breaker.js';

function setup(threshold = 3, openMs = 10_000) {
  let t = 1_000;
  const transitions: string[] = [];
  const b = new CircuitBreaker({
    failureThreshold: threshold,
    openMs,
    now: () => t,
    onTransition: (from: BreakerState, to: BreakerState, at: number) =>
      transitions.push(`${from}->${to}@${at}`),
  });
  return { b, transitions, advance: (ms: number) => (t += ms) };
}

describe('CircuitBreaker', () => {
  it('opens after N consecutive failures; a success in between resets the count', () => {
    const { b, transitions } = setup(3);
    b.recordFailure();
    b.recordFailure();
    b.recordSuccess();
    b.recordFailure();
    b.recordFailure();
    expect(b.state).toBe('closed');
    expect(b.tryAcquire()).toBe(true);
    b.recordFailure();
    expect(b.state).toBe('open');
    expect(b.tryAcquire()).toBe(false);
    expect(transitions).toEqual(['closed->open@1000']);
  });

  it('half-opens after the cool-down, lets one trial through, closes on success', () => {
    const { b, transitions, advance } = setup(1, 10_000);
    b.recordFailure();
    advance(9_999);
    expect(b.state).toBe('open');
    expect(b.retryAfterMs()).toBe(1);
    advance(1);
    expect(b.state).toBe('half-open');
    expect(b.tryAcquire()).toBe(true);
    expect(b.tryAcquire()).toBe(false); // one trial at a time
    b.recordSuccess();
    expect(b.state).toBe('closed');
    expect(b.tryAcquire()).toBe(true);
    expect(transitions).toEqual(['closed->open@1000', 'open->half-open@11000', 'half-open->closed@11000']);
  });

  it('reopens with a fresh cool-down when the trial fails', () => {
    const { b, advance } = setup(2, 5_000);
    b.recordFailure();
    b.recordFailure();
    advance(5_000);
    expect(b.tryAcquire()).toBe(true);
    advance(100);
    b.recordFailure();
    expect(b.state).toBe('open');
    expect(b.retryAfterMs()).toBe(5_000);
    advance(4_999);
    expect(b.tryAcquire()).toBe(false);
    advance(1);
    expect(b.tryAcquire()).toBe(true);
  });

  it('gives up an abandoned trial after another cool-down (never wedges)', () => {
    const { b, advance } = setup(1, 1_000);
    b.recordFailure();
    advance(1_000);
    expect(b.tryAcquire()).toBe(true);
    advance(999);
    expect(b.tryAcquire()).toBe(false);
    advance(1);
    expect(b.tryAcquire()).toBe(true);
  });

  it('ignores late failures while open and refuses bad settings', () => {
    const { b, advance } = setup(1, 1_000);
    b.recordFailure();
    advance(500);
    b.recordFailure();
    expect(b.retryAfterMs()).toBe(500);
    expect(() => new CircuitBreaker({ failureThreshold: 0, openMs: 1, now: () => 0 })).toThrow(
      /failureThreshold/,
    );
    expect(() => new CircuitBreaker({ failureThreshold: 1, openMs: 0, now: () => 0 })).toThrow(/openMs/);
  });

  it('uses the policy settings and fallback', () => {
    let t = 0;
    const b = breakerForPolicy({ circuitBreaker: { failureThreshold: 2, openSeconds: 30 } }, () => t);
    b.recordFailure();
    b.recordFailure();
    expect(b.state).toBe('open');
    t += 12_500;
    expect(verifierFallback({ verifier: { fallback: 'error', timeoutMs: 1000 } }, b)).toMatchObject({
      kind: 'unavailable',
      status: 503,
      retryAfterSeconds: 18,
    });
    expect(verifierFallback({ verifier: { fallback: 'edge-unverified', timeoutMs: 1000 } }, b)).toEqual({
      kind: 'edge-unverified',
    });
    // No section: defaults (5 failures, 30 s, fallback error).
    const d = breakerForPolicy({}, () => t);
    for (let i = 0; i < 4; i++) d.recordFailure();
    expect(d.state).toBe('closed');
    d.recordFailure();
    expect(d.state).toBe('open');
    expect(verifierFallback({}, d).kind).toBe('unavailable');
  });
});
