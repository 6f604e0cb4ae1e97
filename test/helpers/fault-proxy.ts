/**
 * A tiny HTTP proxy in front of a real S3 server that injects failures: the next `n` requests
 * matching a rule are answered by the proxy itself (e.g. 503 SlowDown, 500, or 412 to every
 * `If-Match` PUT) without reaching the server; everything else is forwarded byte for byte (the
 * Host header too, so SigV4 signatures made for the proxy's address still verify upstream).
 *
 *   const proxy = await startFaultProxy(s3.endpoint);
 *   proxy.fail({ status: 503, times: 2 });       // the next two requests get 503, then it recovers
 *   ... new S3Store(bucket, prefix, { env: { ...s3.env, AWS_ENDPOINT_URL_S3: proxy.endpoint } }) ...
 *   await proxy.stop();
 */
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FaultRule {
  status: number;
  /** How many matching requests to fail (Infinity: all). */
  times: number;
  /** Which requests (default: all). */
  match?: (req: IncomingMessage) => boolean;
}

export interface FaultProxy {
  endpoint: string;
  /** Requests seen, and how many of them the proxy failed. */
  seen: number;
  failed: number;
  fail(rule: FaultRule): void;
  stop(): Promise<void>;
}

const REASONS: Record<number, string> = { 412: 'PreconditionFailed', 500: 'InternalError', 503: 'SlowDown' };

function answer(res: ServerResponse, status: number): void {
  const code = REASONS[status] ?? 'InjectedFault';
  res.writeHead(status, { 'content-type': 'application/xml' });
  res.end(
    `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>injected by the test proxy</Message></Error>`,
  );
}

export async function startFaultProxy(upstream: string): Promise<FaultProxy> {
  const target = new URL(upstream);
  const rules: FaultRule[] = [];
  const server = createServer((req, res) => {
    proxy.seen++;
    const rule = rules.find((r) => r.times > 0 && (r.match?.(req) ?? true));
    if (rule) {
      rule.times--;
      proxy.failed++;
      req.resume();
      req.on('end', () => answer(res, rule.status));
      return;
    }
    const up = request(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
      (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        upRes.pipe(res);
      },
    );
    up.on('error', () => answer(res, 502));
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  const proxy: FaultProxy = {
    endpoint: `http://127.0.0.1:${port}`,
    seen: 0,
    failed: 0,
    fail: (rule) => rules.push({ ...rule }),
    stop: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
  return proxy;
}
