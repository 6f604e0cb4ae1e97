/**
 * Hot swap in a real site daemon (in this process: the real sync agent against a directory
 * registry, the real runtime server, the real ONNX draft model): clients stream continuously while
 * the fleet changes the site's adapter and the daemon syncs. Zero requests may fail, new requests
 * must be served by the new generation while streams that started before finish on the old one,
 * the model session must be reused (only the adapter loads), and the old generation must be
 * disposed once its last stream ends. Then `site rollback` from outside the daemon is picked up,
 * and a generation that cannot load leaves the installed one serving.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, expect, it } from 'vitest';
import { FsStore } from '../../../src/registry/fs-store.js';
import type { SiteRuntimeStatus } from '../../../src/runtime/contract.js';
import { runSiteDaemon, type SiteDaemon } from '../../../src/runtime/daemon/daemon.js';
import { daemonLog } from '../../../src/runtime/daemon/log.js';
import { rollbackSite } from '../../../src/site/rollback.js';
import { siteDataPaths } from '../../../src/site/data-dir.js';
import { LocalManifests } from '../../../src/site/manifests.js';
import { adapterDir, tempDir } from '../../site/fixtures.js';
import { daemonWorld, REFS } from './world.js';

const daemons: SiteDaemon[] = [];
afterAll(async () => {
  for (const d of daemons) await d.close();
});

async function status(url: string): Promise<SiteRuntimeStatus> {
  const res = await fetch(`${url}/v1/status`);
  expect(res.status).toBe(200);
  return (await res.json()) as SiteRuntimeStatus;
}

async function until(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

it('swaps generations under streaming load with zero failed requests', async () => {
  const store = new FsStore(join(mkdtempSync(join(tmpdir(), 'edgectl-daemon-')), 'registry'));
  const w = await daemonWorld(store);
  await w.declare({ adapters: [REFS.support100] });
  const lines: string[] = [];
  const daemon = await runSiteDaemon({
    site: w.site,
    dataDir: w.dataDir,
    registryUrl: store.url,
    projectTrustPath: w.trustPath,
    listen: '127.0.0.1:0',
    bearerToken: undefined,
    // Syncs are driven by the test (syncNow); the loop's own first sync runs at start.
    syncIntervalMs: 3_600_000,
    feedbackWindowMs: 60_000,
    verifierUrl: undefined,
    maxConcurrent: 4,
    maxQueue: 64,
    pointerPollMs: 200,
    log: daemonLog('debug', (l) => lines.push(l)),
  });
  daemons.push(daemon);
  expect(daemon.ready()).toBe(true);
  const first = daemon.generations.current;
  expect(first?.context.refs.adapters.map((a) => a.ref)).toEqual([REFS.support100]);
  const s0 = await status(daemon.url);
  expect(s0.generation?.id).toBe(first?.id);
  expect(s0.sync.appliedSeq).toBe(1);
  // /v1/models `created` is the model artifact's publish time, from its signed manifest (#18).
  const digest = first?.context.refs.model?.manifestDigest as string;
  const manifest = await new LocalManifests(siteDataPaths(w.dataDir).manifests).get(digest);
  const models = (await (await fetch(`${daemon.url}/v1/models`)).json()) as { data: { created: number }[] };
  expect(models.data[0]?.created).toBe(Math.floor(Date.parse(manifest?.created as string) / 1000));

  const client = new OpenAI({ baseURL: `${daemon.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  const results: { ok: boolean; error?: string; startedOn: string; route?: string }[] = [];
  let stop = false;
  const worker = async () => {
    while (!stop) {
      const startedOn = daemon.generations.current?.id ?? '?';
      try {
        const stream = await client.chat.completions.create(
          {
            model: 'draft:support',
            messages: [{ role: 'user', content: 'My order has not arrived yet, can you check?' }],
            max_tokens: 24,
            stream: true,
          },
          { headers: { 'x-edgectl-route': 'edge' } },
        );
        let text = '';
        let finish: string | null = null;
        for await (const c of stream) {
          text += c.choices[0]?.delta?.content ?? '';
          finish = c.choices[0]?.finish_reason ?? finish;
        }
        results.push({ ok: finish !== null && text.length > 0, startedOn });
      } catch (err) {
        results.push({ ok: false, error: String(err), startedOn });
      }
    }
  };
  const workers = [worker(), worker(), worker()];
  await until('some traffic', () => results.length >= 3);

  // A new adapter version: the fleet changes, the daemon syncs and swaps under load.
  await w.declare({ adapters: [REFS.support110] });
  // A request in flight across the swap, held deterministically (the streams above are short and
  // may all happen to be between requests at the instant of the swap).
  const held = daemon.generations.acquire();
  expect(held?.generation.id).toBe(first?.id);
  const sync = await daemon.syncNow();
  expect(sync?.changed).toBe(true);
  const second = daemon.generations.current;
  expect(second?.id).not.toBe(first?.id);
  expect(second?.id).toBe(sync?.generation);
  expect(second?.context.refs.adapters.map((a) => a.ref)).toEqual([REFS.support110]);
  // Only the adapter was loaded: the model session is the same object.
  expect(second && first && second.sharesModelWith(first)).toBe(true);
  const afterSwap = results.length;
  await until('traffic on the new generation', () => results.length >= afterSwap + 6);
  stop = true;
  await Promise.all(workers);

  const failed = results.filter((r) => !r.ok);
  expect(failed, JSON.stringify(failed.slice(0, 3))).toEqual([]);
  expect(results.filter((r) => r.startedOn === second?.id).length).toBeGreaterThan(0);
  // The request in flight at the swap kept the old generation alive until it ended, then it was freed.
  expect(daemon.generations.draining.map((d) => d.id)).toEqual([first?.id]);
  expect(lines.some((l) => l.includes('generation released') && l.includes(first?.id ?? '-'))).toBe(false);
  held?.release();
  await until('old generation disposed', () => daemon.generations.draining.length === 0);
  // Logged once its resources (model sessions, indexes) are closed, a few ticks after it left the list.
  await until('old generation released', () =>
    lines.some((l) => l.includes('generation released') && l.includes(first?.id ?? '-')),
  );
  const s1 = await status(daemon.url);
  expect(s1.generation?.id).toBe(second?.id);
  expect(s1.generation?.context.fleetSeq).toBe(2);
  expect(s1.swap?.swaps).toBe(2);
  expect(s1.runtime.requests.errors).toBe(0);

  // `site rollback` in another "process" (outside the daemon): the pointer poll picks it up.
  const rb = await rollbackSite({ site: w.site, dataDir: w.dataDir });
  expect(rb.generation).toBe(first?.id);
  await until('rollback served', () => daemon.generations.current?.id === first?.id, 5_000);
  const answer = await client.chat.completions.create(
    { model: 'draft:support', messages: [{ role: 'user', content: 'hello there' }], max_tokens: 8 },
    { headers: { 'x-edgectl-route': 'edge' } },
  );
  expect(answer.choices[0]?.message.content).toBeTypeOf('string');
  expect((await status(daemon.url)).generation?.id).toBe(first?.id);

  // A generation that cannot load (an adapter whose shapes do not fit the model): logged, and the
  // installed generation keeps serving; the next good fleet change is installed as usual.
  await w.publish(adapterDir(tempDir(), { name: 'broken', version: '1.0.0', base: REFS.model, seed: 5 }));
  await w.declare({ adapters: [REFS.support100, 'adapter/broken@1.0.0'] });
  const bad = await daemon.syncNow();
  expect(bad?.changed).toBe(true);
  expect(daemon.generations.current?.id).toBe(first?.id);
  const s2 = await status(daemon.url);
  expect(s2.generation?.id).toBe(first?.id);
  expect(s2.swap?.lastFailure?.id).toBe(bad?.generation);
  expect(lines.some((l) => l.includes('generation failed to load'))).toBe(true);
  const still = await client.chat.completions.create(
    { model: 'draft:support', messages: [{ role: 'user', content: 'still there?' }], max_tokens: 4 },
    { headers: { 'x-edgectl-route': 'edge' } },
  );
  expect(still.choices[0]?.finish_reason).toBeTruthy();
  await w.declare({ adapters: [REFS.support120] });
  const good = await daemon.syncNow();
  expect(daemon.generations.current?.id).toBe(good?.generation);
  expect((await status(daemon.url)).swap?.lastFailure).toBeNull();
}, 120_000);
