/**
 * An HTTP proxy that counts what crosses it: requests (by method and status class), request body
 * bytes (uploaded) and response body bytes (downloaded). Benchmarks put it in front of an S3 server
 * (Ceph RGW) and point every client at it, edgectl's stores and third-party tools alike (restic), so
 * both are measured by the same meter rather than by each one's own counters. Requests are
 * forwarded byte for byte with their Host header, so SigV4 signatures made for the proxy's address
 * still verify upstream.
 *
 * It runs in its own worker thread, as delay-proxy.ts does: the benchmark's main thread signs and
 * verifies reports for a thousand simulated sites, and a proxy on that event loop would charge that
 * CPU to every request's latency. The worker's code is a plain-JS string so it runs the same from
 * compiled dist/ and from TypeScript sources under vite-node.
 */
import { Worker } from 'node:worker_threads';

export interface ProxyCounts {
  requests: number;
  byMethod: Record<string, number>;
  /** Responses by status class (`2xx`, `3xx`, `4xx`, `5xx`). */
  byStatus: Record<string, number>;
  /** Request body bytes (what clients uploaded). */
  bytesUp: number;
  /** Response body bytes (what clients downloaded). */
  bytesDown: number;
}

export interface CountingProxy {
  /** `http://127.0.0.1:<port>`: the endpoint to give clients instead of the server's. */
  endpoint: string;
  /** Counts since the proxy started. */
  counts(): Promise<ProxyCounts>;
  close(): Promise<void>;
}

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const http = require('node:http');
const target = new URL(workerData.upstream);
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
const c = { requests: 0, byMethod: {}, byStatus: {}, bytesUp: 0, bytesDown: 0 };
const server = http.createServer((req, res) => {
  c.requests++;
  c.byMethod[req.method] = (c.byMethod[req.method] || 0) + 1;
  const up = http.request(
    { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers, agent },
    (r) => {
      const cls = String(r.statusCode).slice(0, 1) + 'xx';
      c.byStatus[cls] = (c.byStatus[cls] || 0) + 1;
      res.writeHead(r.statusCode, r.statusMessage, r.rawHeaders);
      r.on('data', (d) => { c.bytesDown += d.length; });
      r.pipe(res);
    },
  );
  up.on('error', (err) => { if (!res.headersSent) res.writeHead(502); res.end(String(err)); });
  req.on('data', (d) => { c.bytesUp += d.length; });
  req.pipe(up);
});
server.keepAliveTimeout = 30000;
server.listen(0, '127.0.0.1', () => parentPort.postMessage({ type: 'listening', port: server.address().port }));
parentPort.on('message', (msg) => {
  if (msg === 'counts') parentPort.postMessage({ type: 'counts', counts: c });
  if (msg === 'close') { server.closeAllConnections(); server.close(() => { agent.destroy(); parentPort.close(); }); }
});
`;

export async function startCountingProxy(upstream: string): Promise<CountingProxy> {
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { upstream } });
  const port = await new Promise<number>((resolve, reject) => {
    worker.once('error', reject);
    worker.once('message', (m: { type: string; port: number }) => resolve(m.port));
  });
  let waiting: ((c: ProxyCounts) => void)[] = [];
  worker.on('message', (m: { type: string; counts?: ProxyCounts }) => {
    if (m.type !== 'counts' || !m.counts) return;
    const w = waiting;
    waiting = [];
    for (const f of w) f(m.counts);
  });
  return {
    endpoint: `http://127.0.0.1:${port}`,
    counts: () =>
      new Promise((resolve) => {
        waiting.push(resolve);
        worker.postMessage('counts');
      }),
    close: async () => {
      const exited = new Promise((r) => worker.once('exit', r));
      worker.postMessage('close');
      await exited;
    },
  };
}

/** What happened between two snapshots of the same proxy. */
export function countsSince(before: ProxyCounts, after: ProxyCounts): ProxyCounts {
  const diff = (a: Record<string, number>, b: Record<string, number>) =>
    Object.fromEntries(
      Object.entries(b)
        .map(([k, v]) => [k, v - (a[k] ?? 0)] as const)
        .filter(([, v]) => v !== 0),
    );
  return {
    requests: after.requests - before.requests,
    byMethod: diff(before.byMethod, after.byMethod),
    byStatus: diff(before.byStatus, after.byStatus),
    bytesUp: after.bytesUp - before.bytesUp,
    bytesDown: after.bytesDown - before.bytesDown,
  };
}
