/**
 * Feedback end to end through real daemon processes on a directory registry: every request the
 * daemon answers is counted exactly once in the signed reports uploaded to the registry (read back
 * with `readFeedback`, as the rollout controller does), across a graceful restart, a registry
 * outage (the registry's feedback directory replaced by a file, so every upload fails while sync
 * keeps working) and a kill -9 in the middle of a stream. After the kill, `site up` serves again
 * with its state intact: the same generation and applied seq, and what was spooled during the
 * outage is uploaded once the registry is back.
 */
import { renameSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, expect, it } from 'vitest';
import { isAlive } from '../../../src/supervisor/process-identity.js';
import { FsStore } from '../../../src/registry/fs-store.js';
import type { SiteRuntimeStatus } from '../../../src/runtime/contract.js';
import type { SiteUpResult } from '../../../src/runtime/daemon/client.js';
import { readFeedback } from '../../../src/feedback/index.js';
import { runCli, type CliResult } from '../../helpers/cli.js';
import { tempDir } from '../../site/fixtures.js';
import { daemonWorld, REFS, type DaemonWorld } from './world.js';

const WINDOW = '300ms';
let w: DaemonWorld;
const pids: number[] = [];

afterAll(async () => {
  if (w) await runCli(['site', 'down', 'store-001', '--data-dir', w.dataDir], { cwd: w.project });
  for (const pid of pids) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
});

async function status(url: string): Promise<SiteRuntimeStatus> {
  return (await (await fetch(`${url}/v1/status`)).json()) as SiteRuntimeStatus;
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** `n` edge-only requests, one at a time; all must succeed. */
async function serve(url: string, n: number): Promise<void> {
  const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'unused', maxRetries: 0 });
  for (let i = 0; i < n; i++) {
    const r = await client.chat.completions.create(
      { model: 'draft:support', messages: [{ role: 'user', content: `question ${i}` }], max_tokens: 6 },
      { headers: { 'x-edgectl-route': 'edge' } },
    );
    expect(r.choices[0]?.finish_reason).toBeTruthy();
  }
}

it('counts every request once across a restart, a registry outage and kill -9', async () => {
  const regDir = join(tempDir('edgectl-daemon-fb-'), 'registry');
  const store = new FsStore(regDir);
  w = await daemonWorld(store, { publishExtra: false });
  await w.declare({ adapters: [REFS.support100] });
  const cli = (...args: string[]): Promise<CliResult> => runCli(args, { cwd: w.project, timeoutMs: 90_000 });
  const up = async (): Promise<SiteUpResult> => {
    const r = await cli(
      'site',
      'up',
      'store-001',
      '--data-dir',
      w.dataDir,
      '--listen',
      '127.0.0.1:0',
      '--feedback-window',
      WINDOW,
      '--json',
    );
    expect(r.code, r.stderr).toBe(0);
    const res = r.json<SiteUpResult>();
    pids.push(res.pid);
    return res;
  };
  const down = async () => {
    const r = await cli('site', 'down', 'store-001', '--data-dir', w.dataDir, '--json');
    expect(r.code, r.stderr).toBe(0);
  };
  let served = 0;

  // 1. Serve, stop gracefully (the open window is flushed and uploaded).
  const a = await up();
  await serve(a.url ?? '', 5);
  served += 5;
  await down();

  // 2. Restart, serve, then the registry's feedback area breaks: uploads fail, reports stay spooled.
  const b = await up();
  const genB = (await status(b.url ?? '')).generation;
  await serve(b.url ?? '', 4);
  served += 4;
  await until('uploaded before the outage', async () => {
    const s = await status(b.url ?? '');
    return s.feedback.spooled === 0 && s.feedback.uploaded > 0;
  });
  const fbDir = join(regDir, 'feedback');
  renameSync(fbDir, `${fbDir}.away`);
  writeFileSync(fbDir, 'not a directory');
  await serve(b.url ?? '', 6);
  served += 6;
  await until('reports spooled during the outage', async () => {
    const s = await status(b.url ?? '');
    return s.feedback.spooled > 0 && s.feedback.lastError !== null;
  });
  // Let the window holding the last requests close into the spool (kill -9 loses only an open window).
  await new Promise((r) => setTimeout(r, 800));
  const before = await status(b.url ?? '');
  expect(before.feedback.spooled).toBeGreaterThan(0);

  // 3. kill -9 while a stream is running.
  const client = new OpenAI({ baseURL: `${b.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  const stream = await client.completions.create(
    { model: 'draft', prompt: 'A long story about a parcel:', max_tokens: 400, stream: true },
    { headers: { 'x-edgectl-route': 'edge' } },
  );
  let got = 0;
  let streamFailed = false;
  try {
    for await (const c of stream) {
      if ((c.choices[0]?.text ?? '').length > 0 && ++got === 2) process.kill(b.pid, 'SIGKILL');
    }
  } catch {
    streamFailed = true;
  }
  expect(got).toBeGreaterThanOrEqual(2);
  expect(streamFailed || got < 400).toBe(true);
  await until('daemon gone', async () => !isAlive(b.pid));

  // 4. Registry back; `site up` clears the stale pid file, serves the same state, uploads the spool.
  rmSync(fbDir);
  renameSync(`${fbDir}.away`, fbDir);
  const c = await up();
  expect(c.staleRemoved).toBe(b.pid);
  const sc = await status(c.url ?? '');
  expect(sc.generation?.id).toBe(genB?.id);
  expect(sc.sync.appliedSeq).toBe(1);
  await until('spool drained after the restart', async () => {
    const s = await status(c.url ?? '');
    return s.feedback.spooled === 0 && s.feedback.uploaded >= before.feedback.spooled;
  });
  await serve(c.url ?? '', 3);
  served += 3;
  await down();

  const pub = { keyid: w.siteKey.keyid, key: Buffer.from(w.siteKey.publicKey).toString('base64') };
  const read = await readFeedback(store, 'store-001', { 'store-001': pub });
  expect(read.rejected).toEqual([]);
  const seqs = read.reports.map((r) => r.seq);
  expect(new Set(seqs).size).toBe(seqs.length);
  const counted = read.reports.reduce(
    (n, r) => n + r.counters.requests.edge + r.counters.requests.speculative + r.counters.requests.cloud,
    0,
  );
  // The stream cut by kill -9 never finished, so it is not a served request.
  expect(counted).toBe(served);
  for (const r of read.reports) {
    expect(r.fleetSeq).toBe(1);
    expect(r.refs.adapters.map((x) => x.ref)).toEqual([REFS.support100]);
  }
  expect(existsSync(join(w.dataDir, 'feedback-spool'))).toBe(true);
}, 180_000);
