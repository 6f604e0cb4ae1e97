/**
 * Crash safety: `site sync --once` runs as a real child process and gets SIGKILL after a random
 * delay, 30 times, on a directory registry. Each trial the fleet assigns the next of three model
 * versions (8 MiB of distinct weights each, so every sync fetches, materializes and switches) and,
 * every other trial, another policy version (which goes live first in an interim generation); and
 * delays are spread over the whole sync (from process start to past its end). After every kill
 * the data directory must be consistent: state.json readable, `current` a complete generation whose
 * files hash to its generation.json, `previous` complete, state.json naming current or previous.
 * Then the next sync must complete and install what the fleet assigns.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { FsStore } from '../../src/registry/fs-store.js';
import { generationDir, generationId, pointerTarget, readGeneration } from '../../src/site/generation.js';
import { siteDataPaths } from '../../src/site/data-dir.js';
import { assignedArtifacts } from '../../src/site/manifests.js';
import { readSiteState } from '../../src/site/state-file.js';
import { seededBytes } from '../artifact/fixtures.js';
import { NODE, RUN_JS } from '../helpers/cli.js';
import { POLICY_DIR, modelDir, policyVariant, siteWorld, tempDir, type SiteWorld } from './fixtures.js';

const TRIALS = 30;
const MODEL_BYTES = 8 * 1024 * 1024;

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Runs `site sync --once` and SIGKILLs it after `delayMs` (if still running). */
function syncChild(
  w: SiteWorld,
  delayMs: number,
): Promise<{ killed: boolean; code: number | null; ms: number }> {
  const started = performance.now();
  const child = spawn(
    NODE,
    [
      RUN_JS,
      'site',
      'sync',
      w.site,
      '--once',
      '--data-dir',
      w.dataDir,
      '--registry',
      w.store.url,
      '--trust',
      w.trustPath,
    ],
    { cwd: w.dir, env: { ...process.env, CI: '1' }, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const timer = delayMs === Infinity ? undefined : setTimeout(() => child.kill('SIGKILL'), delayMs);
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (code !== null && code !== 0) reject(new Error(`sync exited ${code}: ${stderr}`));
      resolve({ killed: signal === 'SIGKILL', code, ms: performance.now() - started });
    });
  });
}

function sha256(path: string): string {
  return `sha256:${createHash('sha256').update(readFileSync(path)).digest('hex')}`;
}

async function expectConsistent(dataDir: string, trial: number): Promise<void> {
  const paths = siteDataPaths(dataDir);
  const state = await readSiteState(paths.state);
  const current = await pointerTarget(paths, 'current');
  const previous = await pointerTarget(paths, 'previous');
  if (current !== undefined) {
    const info = await readGeneration(generationDir(paths, current));
    expect(info?.id, `trial ${trial}: current is a complete generation`).toBe(current);
    for (const a of info?.artifacts ?? []) {
      for (const f of a.files) {
        expect(
          sha256(join(generationDir(paths, current), a.dir, f.path)),
          `trial ${trial}: ${a.dir}/${f.path}`,
        ).toBe(f.sha256);
      }
    }
  }
  if (previous !== undefined) {
    expect(
      (await readGeneration(generationDir(paths, previous)))?.id,
      `trial ${trial}: previous is complete`,
    ).toBe(previous);
  }
  if (state?.generation)
    expect([current, previous], `trial ${trial}: state.json names current or previous`).toContain(
      state.generation,
    );
}

it(
  `kill -9 at random points of ${TRIALS} syncs leaves the site consistent, and the next sync completes`,
  { timeout: 600_000 },
  async () => {
    const w = await siteWorld(new FsStore(join(tempDir(), 'registry')));
    const src = tempDir('edgectl-site-kill-');
    await w.publish(POLICY_DIR);
    await w.publish(policyVariant(src, '1.1.0'));
    const versions = ['1.0.0', '2.0.0', '3.0.0'];
    for (const [i, v] of versions.entries())
      await w.publish(modelDir(src, v, seededBytes(MODEL_BYTES, 100 + i)));
    // The model changes every trial, the policy every other one (exercising the policy-first
    // interim generation too).
    const assign = (i: number) =>
      w.assign({
        model: `model/draft@${versions[i % versions.length]}`,
        policy: `policy/default@${i % 4 < 2 ? '1.0.0' : '1.1.0'}`,
      });

    // Calibration: how long a whole sync takes as a child process (start-up included).
    await assign(0);
    const full = await syncChild(w, Infinity);
    const span = full.ms * 1.15;

    const rand = mulberry32(20240611);
    let killed = 0;
    for (let trial = 1; trial <= TRIALS; trial++) {
      await assign(trial);
      const delay = rand() * span;
      const r = await syncChild(w, delay);
      if (r.killed) killed++;
      await expectConsistent(w.dataDir, trial);

      const done = await w.sync();
      const state = await readSiteState(join(w.dataDir, 'state.json'));
      const want = generationId(assignedArtifacts(state?.assignments ?? null));
      expect(
        done.generation,
        `trial ${trial} (killed after ${Math.round(delay)} ms): the next sync installs the assignment`,
      ).toBe(want);
      expect(done.seq).toBe(trial + 1);
      await expectConsistent(w.dataDir, trial);
    }
    // Most kills must land inside the sync, not after it finished.
    expect(killed).toBeGreaterThanOrEqual(TRIALS * 0.6);
  },
);
