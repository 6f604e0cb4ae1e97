/**
 * `edgectl site up|status|logs|down` through the built CLI (real child processes) with a real
 * verifier process (`edgectl verifier up`): the first `site up` syncs an unsynced site and waits
 * until it serves; a second one reports the running daemon (pid, address); `site status --json`
 * includes the daemon's /v1/status; the official `openai` client chats with it, streaming and not,
 * speculatively against the verifier; `site logs` shows the daemon log; `site down` stops it. Then
 * a stale pid file is cleared by the next `site up`, and a start that fails (its port is taken)
 * shows the daemon's log tail.
 */
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isAlive } from '../../../src/supervisor/process-identity.js';
import { FsStore } from '../../../src/registry/fs-store.js';
import type { SiteUpResult } from '../../../src/runtime/daemon/client.js';
import type { DaemonStopResult } from '../../../src/supervisor/stop.js';
import type { SiteStatusResult } from '../../../commands/site/status.js';
import { NODE, RUN_JS, runCli, startVerifierDaemon, type CliResult } from '../../helpers/cli.js';
import { tempDir } from '../../site/fixtures.js';
import { daemonWorld, REFS, type DaemonWorld } from './world.js';

describe('site up / status / logs / down (real processes)', () => {
  let w: DaemonWorld;
  let verifierUrl = '';
  const vRunDir = tempDir('edgectl-verifier-run-');
  const pids: number[] = [];
  const cli = (...args: string[]): Promise<CliResult> => runCli(args, { cwd: w.project, timeoutMs: 90_000 });
  const site = (...args: string[]) =>
    cli(...args.slice(0, 2), 'store-001', '--data-dir', w.dataDir, ...args.slice(2));

  beforeAll(async () => {
    w = await daemonWorld(new FsStore(join(tempDir('edgectl-daemon-reg-'), 'registry')), {
      publishExtra: false,
    });
    const vr = await startVerifierDaemon(w.project, vRunDir);
    verifierUrl = vr.url;
    pids.push(vr.pid);
    await w.declare({ adapters: [REFS.support100], verifier: verifierUrl });
  }, 120_000);

  afterAll(async () => {
    await runCli(['site', 'down', 'store-001', '--data-dir', w.dataDir], { cwd: w.project });
    await runCli(['verifier', 'down', '--run-dir', vRunDir], { cwd: w.project });
    for (const pid of pids) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
  });

  it('up (syncs first), up again, status, chat with the openai client, logs, down', async () => {
    const up = await site('site', 'up', '--listen', '127.0.0.1:0', '--json');
    expect(up.code, up.stderr).toBe(0);
    const r = up.json<SiteUpResult>();
    pids.push(r.pid);
    expect(r).toMatchObject({ status: 'started', site: 'store-001' });
    expect(r.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(r.info?.generation).toMatch(/^[0-9a-f]{20}$/);
    expect(r.logFile).toBe(join(w.dataDir, 'run/site.log'));

    const again = await site('site', 'up', '--listen', '127.0.0.1:0');
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain(`Site store-001 is already running (pid ${r.pid}, ${r.url})`);
    const againJson = await site('site', 'up', '--json');
    expect(againJson.json<SiteUpResult>()).toMatchObject({
      status: 'already-running',
      pid: r.pid,
      url: r.url,
    });

    const st = await site('site', 'status', '--json');
    expect(st.code, st.stderr).toBe(0);
    const s = st.json<SiteStatusResult>();
    expect(s.seq).toBe(1);
    expect(s.daemon).toMatchObject({ state: 'running', pid: r.pid, url: r.url, healthy: true });
    expect(s.daemon.status?.generation?.id).toBe(s.generation);
    expect(s.daemon.status?.sync).toMatchObject({ appliedSeq: 1 });
    expect(s.daemon.status?.runtime.verifier.url).toBe(verifierUrl);

    // The official client: speculative (a prompt past the policy's short-prompt rule) against the verifier.
    const client = new OpenAI({ baseURL: `${r.url}/v1`, apiKey: 'unused', maxRetries: 0 });
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toEqual(expect.arrayContaining(['draft', 'draft:support']));
    const prompt =
      'Customer: Hi, my package was supposed to arrive last week and it still has not shown up. ' +
      'Can you check the status of my order please?';
    const chat = await client.chat.completions.create({
      model: 'draft:support',
      messages: [{ role: 'user', content: prompt }],
      max_tokens: 24,
    });
    expect(chat.choices[0]?.message.content?.length).toBeGreaterThan(0);
    const info = (chat as unknown as { edgectl: { route: string; stats: { verifyRounds: number } } }).edgectl;
    expect(info.route).toBe('speculative');
    expect(info.stats.verifyRounds).toBeGreaterThan(0);

    const stream = await client.completions.create({
      model: 'draft',
      prompt,
      max_tokens: 24,
      stream: true,
    });
    let text = '';
    let chunks = 0;
    for await (const c of stream) {
      text += c.choices[0]?.text ?? '';
      chunks++;
    }
    expect(chunks).toBeGreaterThan(1);
    expect(text.length).toBeGreaterThan(0);

    const chatStream = await client.chat.completions.create({
      model: 'draft:support',
      messages: [{ role: 'user', content: prompt }],
      max_tokens: 16,
      stream: true,
    });
    let chatText = '';
    for await (const c of chatStream) chatText += c.choices[0]?.delta?.content ?? '';
    expect(chatText.length).toBeGreaterThan(0);

    // The verifier did the verification work.
    const vstats = (await (await fetch(`${verifierUrl}/v1/stats`)).json()) as { verifyRounds: number };
    expect(vstats.verifyRounds).toBeGreaterThan(0);

    const human = await site('site', 'status');
    expect(human.stdout).toMatch(/daemon: +running \(pid \d+\) at http/);
    expect(human.stdout).toMatch(/requests: +edge \d+, speculative [1-9]\d*/);

    // --watch off a terminal: one plain line per refresh until interrupted.
    const watch = spawn(
      NODE,
      [RUN_JS, 'site', 'status', 'store-001', '--data-dir', w.dataDir, '--watch', '--interval', '200'],
      {
        cwd: w.project,
        env: { ...process.env, CI: '1' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let watched = '';
    watch.stdout.setEncoding('utf8').on('data', (d: string) => (watched += d));
    const deadline = Date.now() + 60_000; // a backstop: the loop ends at the third line
    while (watched.split('\n').filter(Boolean).length < 3 && Date.now() < deadline)
      await new Promise((res) => setTimeout(res, 50));
    watch.kill('SIGINT');
    const watchCode = await new Promise<number | null>((res) => watch.on('close', (code) => res(code)));
    // Interrupted, as every command reports it (docs/cli.md exit codes): 130, after printing what it had.
    expect(watchCode).toBe(130);
    const wl = watched.split('\n').filter(Boolean);
    expect(wl.length).toBeGreaterThanOrEqual(3);
    expect(wl[0]).toMatch(
      /store-001 sync=\w+ seq=1 generation=[0-9a-f]{20} edge=\d+ speculative=[1-9]\d* .*verifier=closed/,
    );

    const logs = await site('site', 'logs', '-n', '200');
    expect(logs.code, logs.stderr).toBe(0);
    expect(logs.stdout).toContain('no generation installed yet; syncing first');
    expect(logs.stdout).toMatch(/serving generation generation=[0-9a-f]{20}/);
    expect(logs.stdout).toContain('site daemon listening');

    const down = await site('site', 'down', '--json');
    expect(down.code, down.stderr).toBe(0);
    expect(down.json<DaemonStopResult>()).toMatchObject({ status: 'stopped', pid: r.pid });
    expect(isAlive(r.pid)).toBe(false);
    const after = await site('site', 'status', '--json');
    expect(after.json<SiteStatusResult>().daemon).toMatchObject({ state: 'stopped', status: null });
    const logs2 = await site('site', 'logs', '-n', '20');
    expect(logs2.stdout).toContain('feedback flushed');
    expect((await site('site', 'down')).stdout).toContain('Site store-001 is not running.');
  }, 120_000);

  it('clears a stale pid file, and a failing start shows the log tail', async () => {
    // A pid file naming a process that is gone (a crash, or a reboot).
    const runDir = join(w.dataDir, 'run');
    mkdirSync(runDir, { recursive: true });
    writeFileSync(join(runDir, 'site.pid'), '999999\n');
    const up = await site('site', 'up', '--listen', '127.0.0.1:0', '--json');
    expect(up.code, up.stderr).toBe(0);
    const r = up.json<SiteUpResult>();
    pids.push(r.pid);
    expect(r).toMatchObject({ status: 'started', staleRemoved: 999999 });
    expect(up.stderr).toContain('removed stale site pid file (pid 999999');
    expect((await site('site', 'down', '--json')).json<DaemonStopResult>().status).toBe('stopped');

    // The port is taken: the daemon exits during start-up and `site up` shows why.
    const blocker: Server = createServer();
    await new Promise<void>((res) => blocker.listen(0, '127.0.0.1', () => res()));
    const port = (blocker.address() as { port: number }).port;
    try {
      const failed = await site('site', 'up', '--listen', `127.0.0.1:${port}`);
      expect(failed.code).toBe(1);
      expect(failed.stderr).toContain('site exited with code 1 during startup');
      expect(failed.stderr).toContain('last log lines:');
      expect(failed.stderr).toContain('EADDRINUSE');
      const st = await site('site', 'status', '--json');
      expect(st.json<SiteStatusResult>().daemon.state).toBe('stopped');
    } finally {
      blocker.close();
    }
  }, 120_000);
});
