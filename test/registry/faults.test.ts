/**
 * Bad input and server faults, through the CLI, on each backend where the fault means something:
 * a server answering 500/503 then recovering (bounded retries with backoff; a clear error when
 * they run out), credentials refused, a bucket that does not exist (S3 only), and a registry
 * location that holds something else (all three). Each failure exits 1 (or 2 for refused input)
 * with a message naming what to check, and nothing is written past the failure.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ErrorJson } from '../../src/foundation/errors.js';
import { FsStore } from '../../src/registry/fs-store.js';
import { S3Store } from '../../src/registry/s3-store.js';
import type { Store } from '../../src/registry/store.js';
import { runCli } from '../helpers/cli.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { rgwSkipReason, startRgw } from '../helpers/rgw.js';
import { startS3, type S3Fixture } from '../helpers/s3.js';
import { makeTrust, writeProject } from '../fleet/registry-fixture.js';

type Backend = 'fs' | 's3' | 'rgw';

function errorOf(r: { stdout: string; json<T>(): T }): ErrorJson['error'] {
  return r.json<ErrorJson>().error;
}

for (const backend of ['fs', 's3', 'rgw'] as Backend[]) {
  const skip = backend === 'rgw' ? rgwSkipReason() : undefined;
  describe.skipIf(skip !== undefined)(
    `registry faults: ${backend}${skip ? ` (SKIPPED: ${skip})` : ''}`,
    () => {
      let root: string;
      let s3: S3Fixture | undefined;
      let n = 0;

      beforeAll(async () => {
        root = mkdtempSync(join(tmpdir(), 'edgectl-faults-'));
        if (backend === 's3') s3 = await startS3();
        if (backend === 'rgw') s3 = await startRgw();
      }, 200_000);
      afterAll(async () => {
        if (backend === 's3') await s3?.stop();
        rmSync(root, { recursive: true, force: true });
      });

      /** A fresh project and registry location (its own prefix, or directory). */
      function project(): { cwd: string; url: string; store: () => Store } {
        const cwd = join(root, `p${++n}`);
        const url = s3 ? `s3://${s3.bucket}/faults-${n}` : `file:${join(cwd, 'registry')}`;
        writeProject(cwd, makeTrust(), url);
        const store = (): Store =>
          s3 ? new S3Store(s3.bucket, `faults-${n}`, { env: s3.env }) : new FsStore(join(cwd, 'registry'));
        return { cwd, url, store };
      }

      if (backend !== 'fs') {
        describe('a failing server', () => {
          let proxy: FaultProxy;
          beforeAll(async () => {
            proxy = await startFaultProxy(s3!.endpoint);
          });
          afterAll(async () => proxy.stop());

          it('503 then 500, then recovery: the command retries with backoff and succeeds', async () => {
            const { cwd } = project();
            proxy.fail({ status: 503, times: 1 });
            proxy.fail({ status: 500, times: 1 });
            const env = { ...s3!.env, AWS_ENDPOINT_URL_S3: proxy.endpoint };
            const r = await runCli(['registry', 'init', '--json'], { cwd, env });
            expect(r.code, r.stderr).toBe(0);
            expect(proxy.failed).toBe(2);
          });

          it('a server that keeps failing: exit 1 after a bounded number of attempts, saying so', async () => {
            const { cwd, url } = project();
            const failedBefore = proxy.failed;
            proxy.fail({ status: 503, times: Infinity });
            try {
              const env = { ...s3!.env, AWS_ENDPOINT_URL_S3: proxy.endpoint };
              const r = await runCli(['registry', 'init', '--json'], { cwd, env });
              expect(r.code).toBe(1);
              expect(r.ms).toBeLessThan(20_000);
              const err = errorOf(r);
              expect(err.code).toBe('E_REGISTRY_UNAVAILABLE');
              expect(err.message).toContain(`the registry at ${url} (endpoint ${proxy.endpoint})`);
              expect(err.message).toMatch(/failed after 3 attempts: the server answered HTTP 503/);
              expect(err.suggestion).toMatch(/AWS_MAX_ATTEMPTS/);
              // Exactly the bound: the first request and two retries, then the command stopped.
              expect(proxy.failed - failedBefore).toBe(3);
            } finally {
              proxy.fail({ status: 0, times: 0 });
            }
          });
        });

        // s3rver accepts any credentials, so only RGW can refuse them.
        it.skipIf(backend === 's3')(
          'credentials refused: exit 1 naming the bucket and the AWS settings to check',
          async () => {
            const { cwd } = project();
            const env = { ...s3!.env, AWS_SECRET_ACCESS_KEY: 'not-the-secret' };
            const r = await runCli(['registry', 'init', '--json'], { cwd, env });
            expect(r.code, r.stdout).toBe(1);
            const err = errorOf(r);
            expect(err.code).toBe('E_ACCESS_DENIED');
            expect(err.message).toContain(`access to bucket ${s3!.bucket} denied`);
            expect(err.suggestion).toMatch(/AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE/);
          },
        );

        it('a bucket that does not exist: exit 1 naming it', async () => {
          const { cwd } = project();
          const r = await runCli(
            ['registry', 'init', '--registry', 's3://edgectl-no-such-bucket/reg', '--json'],
            {
              cwd,
              env: s3!.env,
            },
          );
          expect(r.code, r.stdout).toBe(1);
          const err = errorOf(r);
          expect(err.code).toBe('E_NO_BUCKET');
          expect(err.message).toContain('bucket edgectl-no-such-bucket does not exist');
        });
      }

      it('a registry location that holds something else: refused, and nothing is written to it', async () => {
        const { cwd, store } = project();
        const s = store();
        try {
          await s.putIfAbsent('trust/root/1.json', Buffer.from('{"backup":"of something else"}'));
          await s.putIfAbsent('notes.txt', Buffer.from('not a registry'));
          const before = (await s.list('')).map((o) => [o.key, o.etag]);
          const r = await runCli(['registry', 'init', '--json'], { cwd, env: s3?.env ?? {} });
          expect(r.code, r.stdout).toBe(2);
          const err = errorOf(r);
          expect(err.code).toBe('E_TRUST_MISMATCH');
          expect(err.message).toMatch(/already holds a different trust root version 1/);
          const doctor = await runCli(['doctor', '--json'], { cwd, env: s3?.env ?? {} });
          expect(doctor.code, doctor.stdout).toBe(1);
          const checks = doctor.json<{ checks: { id: string; status: string; detail: string }[] }>().checks;
          const reg = checks.find((c) => c.id === 'registry');
          expect(reg?.status, reg?.detail).toBe('fail');
          expect(reg?.detail).toMatch(/trust\/root\/1\.json/);
          expect((await s.list('')).map((o) => [o.key, o.etag])).toEqual(before);
        } finally {
          await s.close();
        }
      });

      if (backend === 'fs') {
        it('a registry path that is a file: exit 1 naming it', async () => {
          const { cwd } = project();
          writeFileSync(join(cwd, 'registry'), 'a file, not a directory');
          const r = await runCli(['registry', 'init', '--json'], { cwd });
          expect(r.code, r.stdout).not.toBe(0);
          expect(errorOf(r).message).toContain(join(cwd, 'registry'));
        });
      }
    },
  );
}
