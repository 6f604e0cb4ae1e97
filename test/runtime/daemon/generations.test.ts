/**
 * The GenerationManager's lease rules, with generations that only record their disposal (the real
 * ONNX-backed generations run in hot-swap.test.ts): a replaced generation is disposed exactly
 * once, after its last lease; releasing twice counts once; a failed load keeps the installed one
 * and is not retried until asked; reconcile is idempotent and serialized; close disposes all.
 */
import { expect, it } from 'vitest';
import type { ServedGeneration } from '../../../src/runtime/contract.js';
import { GenerationManager, type GenerationTarget } from '../../../src/runtime/daemon/generations.js';

class Gen implements ServedGeneration {
  disposed = 0;
  readonly modelName = 'draft';
  readonly adapterNames = [];
  constructor(
    readonly id: string,
    readonly previous: string | undefined,
  ) {}
  get context() {
    return { fleetSeq: 1, refs: { adapters: [] } };
  }
  async dispose() {
    this.disposed++;
  }
}

const target = (id: string): GenerationTarget => ({
  id,
  dir: `/nowhere/${id}`,
  context: { fleetSeq: 1, refs: { adapters: [] } },
});

function manager(fail: Set<string> = new Set()) {
  const loaded: Gen[] = [];
  const events: string[] = [];
  const m = new GenerationManager<Gen>({
    load: async (t, prev) => {
      await new Promise((r) => setTimeout(r, 5));
      if (fail.has(t.id)) throw new Error(`cannot load ${t.id}`);
      const g = new Gen(t.id, prev?.id);
      loaded.push(g);
      return g;
    },
    onEvent: (e) => events.push(`${e.kind}:${e.id}`),
  });
  return { m, loaded, events };
}

it('disposes a replaced generation after its last lease, exactly once', async () => {
  const { m, loaded, events } = manager();
  expect(m.acquire()).toBeUndefined();
  expect(await m.reconcile(target('a'))).toBe(true);
  const l1 = m.acquire();
  const l2 = m.acquire();
  expect(l1?.generation.id).toBe('a');
  expect(await m.reconcile(target('b'))).toBe(true);
  expect(loaded[1]?.previous).toBe('a');
  const l3 = m.acquire();
  expect(l3?.generation.id).toBe('b');
  expect(m.draining).toEqual([{ id: 'a', leases: 2 }]);
  l1?.release();
  l1?.release(); // a second release of the same lease must not count
  expect(loaded[0]?.disposed).toBe(0);
  expect(m.draining).toEqual([{ id: 'a', leases: 1 }]);
  l2?.release();
  await new Promise((r) => setTimeout(r, 0));
  expect(loaded[0]?.disposed).toBe(1);
  expect(m.draining).toEqual([]);
  expect(events).toEqual(['installed:a', 'installed:b', 'disposed:a']);
  l3?.release();
  expect(loaded[1]?.disposed).toBe(0);
  await m.close();
  expect(loaded[1]?.disposed).toBe(1);
  expect(m.acquire()).toBeUndefined();
});

it('keeps the installed generation when a load fails, and retries only when asked', async () => {
  const fail = new Set(['bad']);
  const { m, loaded, events } = manager(fail);
  await m.reconcile(target('a'));
  expect(await m.reconcile(target('bad'))).toBe(false);
  expect(m.current?.id).toBe('a');
  expect(m.lastFailure).toEqual({ id: 'bad', error: 'cannot load bad' });
  expect(await m.reconcile(target('bad'))).toBe(false);
  expect(events.filter((e) => e === 'load-failed:bad')).toHaveLength(1);
  fail.delete('bad');
  expect(await m.reconcile(target('bad'), { retryFailed: true })).toBe(true);
  expect(m.lastFailure).toBeUndefined();
  expect(loaded.map((g) => g.id)).toEqual(['a', 'bad']);
});

it('serializes concurrent reconciles and loads a target once', async () => {
  const { m, loaded } = manager();
  const all = await Promise.all([
    m.reconcile(target('a')),
    m.reconcile(target('a')),
    m.reconcile(target('b')),
  ]);
  expect(all).toEqual([true, true, true]);
  expect(loaded.map((g) => g.id)).toEqual(['a', 'b']);
  expect(m.swapCount).toBe(2);
  expect(m.current?.id).toBe('b');
});
