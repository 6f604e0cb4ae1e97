/**
 * A real S3 protocol server for tests: s3rver started in-process on 127.0.0.1 with a random free
 * port, a temp directory and one bucket. Use `url` as the registry URL and `env` as the AWS settings
 * (for in-process stores via `new S3Store(..., { env })` / `openStore(url, { s3: { env } })`, or
 * merged into a CLI child's environment). s3rver accepts its default credentials S3RVER/S3RVER and
 * does NOT enforce If-None-Match / If-Match on writes (fs and Ceph RGW, test/helpers/rgw.ts, carry
 * the concurrency tests).
 *
 *   const s3 = await startS3();
 *   try { ... } finally { await s3.stop(); }
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import S3rver from 's3rver';

export interface S3Fixture {
  /** `s3://<bucket>/<prefix>` */
  url: string;
  bucket: string;
  endpoint: string;
  env: {
    AWS_ENDPOINT_URL_S3: string;
    AWS_REGION: string;
    AWS_ACCESS_KEY_ID: string;
    AWS_SECRET_ACCESS_KEY: string;
  };
  /** Stops the server and removes its directory (idempotent). */
  stop(): Promise<void>;
}

export async function startS3(opts: { bucket?: string; prefix?: string } = {}): Promise<S3Fixture> {
  const bucket = opts.bucket ?? 'edgectl-test';
  const prefix = opts.prefix ?? 'registry';
  const directory = mkdtempSync(join(tmpdir(), 'edgectl-s3rver-'));
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory,
    configureBuckets: [{ name: bucket, configs: [] }],
  });
  const { port } = await server.run();
  const endpoint = `http://127.0.0.1:${port}`;
  let stopped = false;
  return {
    url: `s3://${bucket}/${prefix}`,
    bucket,
    endpoint,
    env: {
      AWS_ENDPOINT_URL_S3: endpoint,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'S3RVER',
      AWS_SECRET_ACCESS_KEY: 'S3RVER',
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await server.close();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}
