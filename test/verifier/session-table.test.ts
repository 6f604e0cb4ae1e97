import { describe, expect, it } from 'vitest';
import { HttpError } from '../../src/http/http.js';
import { SessionTable } from '../../src/verifier/server/session-table.js';

class Resource {
  disposed = 0;
  dispose(): void {
    this.disposed++;
  }
}

function table(ttlMs = 1000, maxSessions = 10) {
  let now = 0;
  const t = new SessionTable<Resource>({ ttlMs, maxSessions, now: () => now });
  return { t, advance: (ms: number) => (now += ms) };
}

const status = (fn: () => unknown): number | undefined => {
  try {
    fn();
  } catch (err) {
    return (err as HttpError).status;
  }
  return undefined;
};

describe('SessionTable', () => {
  it('releases an idle session once its TTL passes, exactly once', () => {
    const { t, advance } = table(1000);
    const r = new Resource();
    const lease = t.add(r);
    lease.release();
    advance(999);
    expect(t.sweep()).toBe(0);
    t.acquire(lease.id).release(); // touching refreshes the idle timer
    advance(1001);
    expect(t.sweep()).toBe(1);
    expect(t.sweep()).toBe(0);
    expect(r.disposed).toBe(1);
    expect(t.size).toBe(0);
    expect(status(() => t.acquire(lease.id))).toBe(404);
  });

  it('never frees a leased session; a delete during a request frees it when the request ends', () => {
    const { t, advance } = table(1000);
    const r = new Resource();
    const lease = t.add(r);
    advance(5000);
    expect(t.sweep()).toBe(0);
    expect(status(() => t.acquire(lease.id))).toBe(409);
    expect(t.delete(lease.id)).toBe(true);
    expect(r.disposed).toBe(0);
    lease.release();
    lease.release();
    expect(r.disposed).toBe(1);
    expect(t.size).toBe(0);
    expect(t.delete(lease.id)).toBe(false);
  });

  it('refuses new sessions past the cap with 429 and Retry-After, and frees all on close', () => {
    const { t } = table(60_000, 2);
    const a = new Resource();
    const b = new Resource();
    t.add(a).release();
    t.add(b).release();
    let err: HttpError | undefined;
    try {
      t.reserve();
    } catch (e) {
      err = e as HttpError;
    }
    expect(err?.status).toBe(429);
    expect(Number(err?.headers['retry-after'])).toBeGreaterThan(0);
    t.close();
    expect([a.disposed, b.disposed]).toEqual([1, 1]);
    expect(t.released.closed).toBe(2);
  });

  it('counts reservations against the cap, so a burst of creators cannot overshoot it', () => {
    const { t } = table(60_000, 2);
    const first = t.reserve();
    const second = t.reserve(); // both still "prefilling": nothing is in the table yet
    expect(t.size).toBe(0);
    expect(status(() => t.reserve())).toBe(429);
    second.cancel();
    second.cancel();
    const third = t.reserve(); // a cancelled slot is free again
    first.fill(new Resource()).release();
    third.fill(new Resource()).release();
    expect(t.size).toBe(2);
    expect(status(() => t.reserve())).toBe(429);
    expect(() => first.fill(new Resource())).toThrow(/already used/);
  });

  it('disposes a session filled after the table closed (shutdown during a prefill)', () => {
    const { t } = table(60_000, 2);
    const slot = t.reserve();
    t.close();
    const r = new Resource();
    expect(status(() => slot.fill(r))).toBe(503);
    expect(r.disposed).toBe(1);
    expect(status(() => t.reserve())).toBe(503);
  });
});
