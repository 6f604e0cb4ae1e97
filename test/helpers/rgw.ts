/**
 * The run's Ceph RGW (started once by test/setup/rgw.ts) as an S3 fixture shaped like s3rver's
 * (test/helpers/s3.ts): `url`, `bucket`, `endpoint` and `env` (the AWS settings for in-process
 * stores and CLI children). Each call gets its own bucket, so files and tests do not see each
 * other's objects; `stop()` only forgets it (the cluster belongs to the whole run).
 *
 *   const skip = rgwSkipReason();          // a string when RGW is not available (skip loudly)
 *   const rgw = await startRgw();          // waits for the background start, creates a bucket
 *
 * Unlike s3rver, RGW enforces If-None-Match / If-Match, so conditional-write tests run on it.
 */
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { inject } from 'vitest';
import type { S3Fixture } from './s3.js';

/** Why the RGW tests cannot run here, or undefined when they can. */
export function rgwSkipReason(): string | undefined {
  const provided = inject('rgw');
  return 'skip' in provided ? provided.skip : undefined;
}

let ready: Promise<S3Fixture['env']> | undefined;

async function waitForStart(): Promise<S3Fixture['env']> {
  const provided = inject('rgw');
  if ('skip' in provided) throw new Error(`RGW is not available: ${provided.skip}`);
  const deadline = Date.now() + 180_000;
  while (!existsSync(provided.rcFile)) {
    if (Date.now() > deadline)
      throw new Error(`RGW did not start within 180 s (logs in ${provided.dir}/log)`);
    await new Promise((r) => setTimeout(r, 200));
  }
  const rc = readFileSync(provided.rcFile, 'utf8').trim();
  if (rc !== '0') {
    const err = readFileSync(provided.stderrFile, 'utf8');
    throw new Error(`scripts/rgw.sh start failed (exit ${rc}):\n${err}\nlogs: ${join(provided.dir, 'log')}`);
  }
  const env: Record<string, string> = {};
  for (const line of readFileSync(provided.stdoutFile, 'utf8').split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line);
    if (m?.[1] && m[2] !== undefined) env[m[1]] = m[2];
  }
  const { AWS_ENDPOINT_URL_S3, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY } = env;
  if (!AWS_ENDPOINT_URL_S3 || !AWS_REGION || !AWS_ACCESS_KEY_ID || !AWS_SECRET_ACCESS_KEY)
    throw new Error(`scripts/rgw.sh start printed no complete environment:\n${JSON.stringify(env)}`);
  return { AWS_ENDPOINT_URL_S3, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY };
}

let buckets = 0;

export async function startRgw(opts: { prefix?: string } = {}): Promise<S3Fixture> {
  ready ??= waitForStart();
  const env = await ready;
  const bucket = `edgectl-${process.pid}-${++buckets}-${Date.now().toString(36)}`;
  const client = new S3Client({
    endpoint: env.AWS_ENDPOINT_URL_S3,
    region: env.AWS_REGION,
    forcePathStyle: true,
    credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY },
  });
  try {
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
  } finally {
    client.destroy();
  }
  return {
    url: `s3://${bucket}/${opts.prefix ?? 'registry'}`,
    bucket,
    endpoint: env.AWS_ENDPOINT_URL_S3,
    env,
    stop: async () => undefined,
  };
}
