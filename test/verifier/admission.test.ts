import { describe, expect, it } from 'vitest';
import { HttpError } from '../../src/http/http.js';
import { AdmissionQueue } from '../../src/verifier/server/admission.js';

function gate() {
  let open!: () => void;
  const p = new Promise<void>((r) => (open = r));
  return { p, open };
}

describe('AdmissionQueue', () => {
  it('runs at most `concurrency` jobs, queues up to the limit, and refuses the rest with 429', async () => {
    const q = new AdmissionQueue({ concurrency: 1, queueLimit: 1 });
    const g = gate();
    const order: string[] = [];
    const first = q.run(async () => {
      order.push('first');
      await g.p;
    });
    const second = q.run(async () => {
      order.push('second');
    });
    expect(q.stats).toMatchObject({ active: 1, queued: 1 });
    const third = q.run(async () => order.push('third'));
    await expect(third).rejects.toMatchObject({ status: 429, code: 'queue_full' });
    const err = (await third.catch((e: unknown) => e)) as HttpError;
    expect(Number(err.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    g.open();
    await Promise.all([first, second]);
    expect(order).toEqual(['first', 'second']);
    expect(q.stats).toEqual({ active: 0, queued: 0, admitted: 2, rejected: 1 });
  });

  it('drops a queued job whose client went away without running it', async () => {
    const q = new AdmissionQueue({ concurrency: 1, queueLimit: 4 });
    const g = gate();
    const first = q.run(() => g.p);
    const ac = new AbortController();
    let ran = false;
    const queued = q.run(async () => {
      ran = true;
    }, ac.signal);
    ac.abort();
    await expect(queued).rejects.toMatchObject({ code: 'client_closed' });
    expect(q.stats.queued).toBe(0);
    g.open();
    await first;
    expect(ran).toBe(false);
    expect(q.stats.active).toBe(0);
  });
});
