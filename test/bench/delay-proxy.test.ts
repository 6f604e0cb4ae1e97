import { createServer } from 'node:http';
import { Agent, request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDelayProxy, type DelayProxy } from '../../src/bench/delay-proxy.js';

describe('delay proxy', () => {
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => res.end(`echo:${body}`));
  });
  let port = 0;
  let proxy: DelayProxy;

  beforeAll(async () => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    port = (server.address() as { port: number }).port;
    proxy = await startDelayProxy({ host: '127.0.0.1', port }, 15);
  });
  afterAll(async () => {
    await proxy.close();
    await new Promise((r) => server.close(r));
  });

  const post = (agent: Agent, url: string, body: string) =>
    new Promise<{ text: string; ms: number }>((resolve, reject) => {
      const t0 = performance.now();
      const req = request(url, { method: 'POST', agent }, (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve({ text, ms: performance.now() - t0 }));
      });
      req.on('error', reject);
      req.end(body);
    });

  it('adds the round trip to every request over a kept-alive connection, bytes intact', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const direct = await post(agent, `http://127.0.0.1:${port}/`, 'x');
    const times: number[] = [];
    for (let i = 0; i < 4; i++) {
      const r = await post(agent, `${proxy.url}/`, `hello ${i}`);
      expect(r.text).toBe(`echo:hello ${i}`);
      times.push(r.ms);
    }
    agent.destroy();
    expect(direct.text).toBe('echo:x');
    // Request and response each wait 15 ms: a round trip costs at least 30 ms.
    for (const ms of times) expect(ms).toBeGreaterThanOrEqual(29);
    expect(proxy.connections).toBe(1);
  });
});
