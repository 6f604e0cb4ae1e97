/**
 * vitest globalSetup: one Ceph RGW (scripts/rgw.sh) for the whole run, the third S3 backend of the
 * store matrix next to fs and s3rver. It is started in the background so its ~15 s boot overlaps
 * the dist/ build and the first test files; tests that need it wait for it through
 * test/helpers/rgw.ts, which reads what this setup provides (`inject('rgw')`). Stopped at the end.
 *
 * Where the Ceph packages are missing the RGW tests are skipped LOUDLY (a stderr warning here, and
 * the reason in each skipped block's name), except under CI=true, where a missing RGW fails the
 * run: CI must never pass without having run them. EDGECTL_RGW=0 skips them on purpose (locally).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';

/** What the setup provides to test files (see test/helpers/rgw.ts). */
export type RgwProvided =
  | { skip: string }
  | {
      /** The cluster directory (ceph.conf, logs) and the files the background start writes. */
      dir: string;
      stdoutFile: string;
      stderrFile: string;
      rcFile: string;
    };

declare module 'vitest' {
  export interface ProvidedContext {
    rgw: RgwProvided;
  }
}

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const SCRIPT = join(ROOT, 'scripts/rgw.sh');

function missingReason(): string | undefined {
  if (process.env.EDGECTL_RGW === '0') return 'EDGECTL_RGW=0';
  const check = spawnSync('bash', [SCRIPT, 'check'], { encoding: 'utf8' });
  if (check.status === 0) return undefined;
  return `Ceph RGW is not installed (${check.stdout.trim() || check.stderr.trim()}; apt-get install -y --no-install-recommends radosgw ceph-mon ceph-osd ceph-common)`;
}

export default function setup(project: TestProject): (() => Promise<void>) | undefined {
  const reason = missingReason();
  if (reason) {
    if (process.env.CI === 'true' || process.env.CI === '1') {
      throw new Error(`CI must run the RGW tests, but ${reason}`);
    }
    process.stderr.write(`\nWARNING: the RGW backend tests are SKIPPED: ${reason}\n\n`);
    project.provide('rgw', { skip: reason });
    return undefined;
  }
  const base = mkdtempSync(join(tmpdir(), 'edgectl-rgw-'));
  const dir = join(base, 'cluster');
  const files = {
    stdoutFile: join(base, 'start.out'),
    stderrFile: join(base, 'start.err'),
    rcFile: join(base, 'start.rc'),
  };
  // The exit status goes to a file only once start.out/err are complete, so readers poll for it.
  const child: ChildProcess = spawn(
    'bash',
    [
      '-c',
      `bash "$0" start >"$1" 2>"$2"; echo $? >"$3.tmp" && mv "$3.tmp" "$3"`,
      SCRIPT,
      files.stdoutFile,
      files.stderrFile,
      files.rcFile,
    ],
    { env: { ...process.env, EDGECTL_RGW_DIR: dir }, stdio: 'ignore' },
  );
  project.provide('rgw', { dir, ...files });
  return async () => {
    if (child.exitCode === null) await new Promise((r) => child.once('exit', r));
    spawnSync('bash', [SCRIPT, 'stop'], { env: { ...process.env, EDGECTL_RGW_DIR: dir }, stdio: 'ignore' });
    rmSync(base, { recursive: true, force: true });
  };
}
