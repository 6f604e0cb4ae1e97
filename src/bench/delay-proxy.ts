/**
 * A TCP proxy that adds network latency: every chunk in either direction is forwarded `oneWayMs`
 * after it arrives (so an HTTP request/response pays the full round-trip time), order preserved,
 * bandwidth unlimited. Benchmarks put it between the edge client and the verifier to emulate a WAN
 * link on one machine.
 *
 * It runs in its own worker thread: the benchmark's main thread is busy with synchronous ONNX
 * draft passes, and a proxy on that event loop would add their duration to every hop — latency a
 * real network does not have, charged to speculative decoding only. Written here rather than taken
 * from a package because the latency proxies on npm (toxiproxy and the like) need an external
 * server; this is a few dozen lines of node:net. The worker's code is a plain-JS string so it runs
 * the same from compiled dist/ and from TypeScript sources under vitest.
 */
import { Worker } from 'node:worker_threads';

export interface DelayProxy {
  /** `http://127.0.0.1:<port>`: point clients here instead of at the target. */
  url: string;
  port: number;
  /** Connections accepted so far (keep-alive clients reuse them). */
  readonly connections: number;
  close(): Promise<void>;
}

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const net = require('node:net');
const { host, port, oneWayMs } = workerData;
const later = (fn) => (oneWayMs > 0 ? setTimeout(fn, oneWayMs) : setImmediate(fn));
// Forwards data from one socket to the other, each chunk oneWayMs late; timers of equal delay fire
// in the order they were set, so byte order is kept. A close reaches the other side after the data
// sent before it.
function pipeDelayed(from, to) {
  from.on('data', (chunk) => later(() => { if (!to.destroyed) to.write(chunk); }));
  from.on('close', () => later(() => { if (!to.destroyed) to.end(); }));
}
const sockets = new Set();
const server = net.createServer((client) => {
  parentPort.postMessage({ type: 'connection' });
  const upstream = net.connect({ host, port });
  client.setNoDelay(true);
  upstream.setNoDelay(true);
  sockets.add(client).add(upstream);
  pipeDelayed(client, upstream);
  pipeDelayed(upstream, client);
  const drop = () => { client.destroy(); upstream.destroy(); };
  client.on('error', drop).on('close', () => sockets.delete(client));
  upstream.on('error', drop).on('close', () => sockets.delete(upstream));
});
server.on('error', (err) => parentPort.postMessage({ type: 'error', message: err.message }));
server.listen(0, '127.0.0.1', () => parentPort.postMessage({ type: 'listening', port: server.address().port }));
parentPort.on('message', (msg) => {
  if (msg !== 'close') return;
  for (const s of sockets) s.destroy();
  server.close(() => parentPort.close());
});
`;

export async function startDelayProxy(
  target: { host: string; port: number },
  oneWayMs: number,
): Promise<DelayProxy> {
  const worker = new Worker(WORKER_SOURCE, {
    eval: true,
    workerData: { host: target.host, port: target.port, oneWayMs },
  });
  let connections = 0;
  const port = await new Promise<number>((resolve, reject) => {
    worker.on('message', (msg: { type: string; port?: number; message?: string }) => {
      if (msg.type === 'listening') resolve(msg.port as number);
      else if (msg.type === 'connection') connections++;
      else if (msg.type === 'error') reject(new Error(`delay proxy: ${msg.message}`));
    });
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`delay proxy worker exited with code ${code}`)));
  });
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    get connections() {
      return connections;
    },
    close: async () => {
      const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
      worker.postMessage('close');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 2000).unref())]);
      await worker.terminate();
    },
  };
}
