/**
 * A site declared with `runtime.cloud` (issue #18 item 5), end to end through the built CLI: the
 * declaration is applied to the fleet, `edgectl site up` starts the daemon (a real child process
 * with the API key only in its environment), the daemon syncs the declaration and routes cloud
 * requests to an independent OpenAI-compatible server (test/helpers/mini-openai.ts: plain node:http,
 * CRLF framing, a split UTF-8 character, standard fields only). The site has no verifier at all.
 * The answer is byte-exact; a 500 from the server falls back to the draft (the example policy's
 * `edge-unverified`) and the next request is served by the cloud model again; `site down` stops it.
 */
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FsStore } from '../../../src/registry/fs-store.js';
import type { SiteUpResult } from '../../../src/runtime/daemon/client.js';
import { isAlive } from '../../../src/supervisor/process-identity.js';
import { runCli, type CliResult } from '../../helpers/cli.js';
import { MINI_ANSWER, startMiniOpenAI, type MiniOpenAI } from '../../helpers/mini-openai.js';
import { tempDir } from '../../site/fixtures.js';
import { daemonWorld, REFS, type DaemonWorld } from './world.js';

const KEY_ENV = 'EDGECTL_E2E_CLOUD_KEY';
const KEY = 'sk-e2e-91ab';

describe('a site with runtime.cloud (real daemon process, independent OpenAI-compatible server)', () => {
  let w: DaemonWorld;
  let mini: MiniOpenAI;
  let pid = 0;
  const cli = (args: string[], env: Record<string, string> = {}): Promise<CliResult> =>
    runCli(args, { cwd: w.project, timeoutMs: 90_000, env });

  beforeAll(async () => {
    mini = await startMiniOpenAI(KEY);
    w = await daemonWorld(new FsStore(join(tempDir('edgectl-cloud-reg-'), 'registry')), {
      publishExtra: false,
    });
    await w.declare({
      adapters: [REFS.support100],
      cloud: [
        `    url: ${mini.url}`,
        '    model: hosted-7b',
        `    apiKeyEnv: ${KEY_ENV}`,
        '    api: chat',
      ].join('\n'),
    });
  }, 120_000);

  afterAll(async () => {
    if (w) await runCli(['site', 'down', 'store-001', '--data-dir', w.dataDir], { cwd: w.project });
    if (pid > 0 && isAlive(pid)) process.kill(pid, 'SIGKILL');
    await mini?.close();
  });

  it('answers a cloud-routed chat through the server, falls back on a 500, and keeps serving', async () => {
    const up = await cli(
      ['site', 'up', 'store-001', '--data-dir', w.dataDir, '--listen', '127.0.0.1:0', '--json'],
      {
        [KEY_ENV]: KEY,
      },
    );
    expect(up.code, up.stderr).toBe(0);
    const r = up.json<SiteUpResult>();
    pid = r.pid;
    const client = new OpenAI({
      baseURL: `${r.url}/v1`,
      apiKey: 'unused',
      maxRetries: 0,
      defaultHeaders: { 'x-edgectl-route': 'cloud' },
    });
    const ask = async () => {
      const stream = await client.chat.completions.create({
        model: 'draft:support',
        messages: [{ role: 'user', content: 'Where is my parcel, it is late?' }],
        max_tokens: 24,
        stream: true,
      });
      let text = '';
      let last: unknown;
      for await (const c of stream) {
        text += c.choices[0]?.delta?.content ?? '';
        last = c;
      }
      return { text, info: (last as { edgectl: { route: string; unverified: boolean } }).edgectl };
    };

    const first = await ask();
    expect(first.text).toBe(MINI_ANSWER);
    expect(first.info).toMatchObject({ route: 'cloud', unverified: false });
    expect(mini.requests[0]).toMatchObject({ path: '/v1/chat/completions', authorization: `Bearer ${KEY}` });
    expect(mini.requests[0]?.body).toMatchObject({ model: 'hosted-7b', stream: true });

    mini.mode = 'error500';
    const failed = await ask();
    expect(failed.info).toMatchObject({ route: 'edge', unverified: true });
    expect(failed.text.length).toBeGreaterThan(0);

    mini.mode = 'ok';
    expect((await ask()).text).toBe(MINI_ANSWER);

    // The key never reaches the fleet state or the daemon's log.
    const logs = await cli(['site', 'logs', 'store-001', '--data-dir', w.dataDir]);
    expect(logs.stdout).not.toContain(KEY);
    const down = await cli(['site', 'down', 'store-001', '--data-dir', w.dataDir]);
    expect(down.code, down.stderr).toBe(0);
  }, 120_000);
});
