/**
 * The feedback spool across crashes of a real site process (test/feedback/spool-child.mjs, run
 * from dist/ and killed with SIGKILL): between spooling and uploading, and between uploading and
 * deleting the spool file, on both store backends; then SIGKILL at random moments of a run that
 * spools and uploads window after window. After a restart, the registry holds every spooled
 * report exactly once: the counters sum exactly to the requests the killed processes recorded,
 * no seq is reused (each seq's content is the window the process said it spooled under that seq)
 * and no window appears twice.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FsStore } from '../../src/registry/fs-store.js';
import { generateKeyPair, writeKeyPair, type KeyPair } from '../../src/registry/keys.js';
import type { Store } from '../../src/registry/store.js';
import { readFeedback } from '../../src/feedback/read.js';
import { totalRequests, type DeclaredSiteKeys, type FeedbackReport } from '../../src/feedback/report.js';
import { NODE, REPO_ROOT } from '../helpers/cli.js';
import { forEachBackend } from '../helpers/stores.js';
import { mulberry32 } from '../policy/pii-fixtures.js';
import { context } from './fixtures.js';

const CHILD = join(REPO_ROOT, 'test/feedback/spool-child.mjs');
const SITE = 'site-a';
const T0 = Date.parse('2025-03-01T12:00:00.000Z');

type Line =
  | { spooled: number; requests: number; windowStart: string }
  | { uploading: number }
  | { uploaded: number }
  | { ready: true }
  | { started: true }
  | { done: true; uploaded: number[]; pending: number[]; error?: string };

interface ChildRun {
  lines: Line[];
  killed: boolean;
  code: number | null;
  stderr: string;
}

interface Site {
  spoolDir: string;
  keyFile: string;
  key: KeyPair;
  declared: DeclaredSiteKeys;
}

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function site(): Site {
  const dir = mkdtempSync(join(tmpdir(), 'edgectl-crash-'));
  dirs.push(dir);
  const key = generateKeyPair();
  const keyFile = join(dir, 'site.key');
  writeKeyPair(keyFile, key);
  return {
    spoolDir: join(dir, 'feedback-spool'),
    keyFile,
    key,
    declared: { [SITE]: { keyid: key.keyid, key: Buffer.from(key.publicKey).toString('base64') } },
  };
}

interface ChildConfig {
  windows: number;
  crash: 'after-spool' | 'after-upload' | 'none';
  clockStart: number;
  seed: number;
  maxRequests?: number;
  uploadEachWindow?: boolean;
}

/** Runs the child; SIGKILLs it when `onLine` accepts a line, or `afterStartMs` after it started work. */
function runChild(
  s: Site,
  store: Store,
  env: Record<string, string>,
  cfg: ChildConfig,
  kill: { onLine?: (l: Line) => boolean; afterStartMs?: number } = {},
): Promise<ChildRun> {
  const args = JSON.stringify({
    spoolDir: s.spoolDir,
    site: SITE,
    keyFile: s.keyFile,
    registry: store.url,
    context: context(4),
    maxRequests: 40,
    uploadEachWindow: false,
    ...cfg,
  });
  const child = spawn(NODE, [CHILD, args], {
    env: { ...process.env, ...env, EDGECTL_DIST: join(REPO_ROOT, 'dist') },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: Line[] = [];
  let stderr = '';
  let buf = '';
  let killed = false;
  const doKill = () => {
    killed = true;
    child.kill('SIGKILL');
  };
  let timer: NodeJS.Timeout | undefined;
  const guard = setTimeout(doKill, 30_000);
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    buf += d;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = JSON.parse(buf.slice(0, nl)) as Line;
      buf = buf.slice(nl + 1);
      lines.push(line);
      if ('started' in line && kill.afterStartMs !== undefined) timer = setTimeout(doKill, kill.afterStartMs);
      if (!killed && kill.onLine?.(line)) doKill();
    }
  });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      clearTimeout(guard);
      resolve({ lines, killed, code, stderr });
    });
  });
}

const spooledOf = (runs: ChildRun[]) =>
  runs.flatMap((r) => r.lines.filter((l): l is Extract<Line, { spooled: number }> => 'spooled' in l));

/** Every spooled window is in the registry once, under its seq, and the totals add up. */
async function expectExactlyOnce(
  store: Store,
  s: Site,
  runs: ChildRun[],
  exact = true,
): Promise<FeedbackReport[]> {
  const read = await readFeedback(store, SITE, s.declared);
  expect(read.rejected).toEqual([]);
  const spooled = spooledOf(runs);
  const bySeq = new Map(read.reports.map((r) => [r.seq, r]));
  for (const sp of spooled) {
    const r = bySeq.get(sp.spooled);
    expect(r, `seq ${sp.spooled} missing from the registry`).toBeDefined();
    expect(r!.windowStart).toBe(sp.windowStart);
    expect(totalRequests(r!.counters)).toBe(sp.requests);
  }
  const starts = read.reports.map((r) => r.windowStart);
  expect(new Set(starts).size).toBe(starts.length);
  const recorded = spooled.reduce((a, l) => a + l.requests, 0);
  const uploaded = read.reports.reduce((a, r) => a + totalRequests(r.counters), 0);
  if (exact) {
    expect(read.reports.map((r) => r.seq)).toEqual(spooled.map((l) => l.spooled));
    expect(uploaded).toBe(recorded);
  } else {
    expect(uploaded).toBeGreaterThanOrEqual(recorded);
  }
  expect(readdirSync(s.spoolDir).filter((n) => /^\d{12}\.json$/.test(n))).toEqual([]);
  return read.reports;
}

forEachBackend((mk) => {
  const envOf = () => (mk.backend === 's3' ? { ...mk.s3!.env } : {});

  it('SIGKILL after spooling, before uploading: the next run uploads everything once', async () => {
    const store = await mk();
    const s = site();
    const first = await runChild(
      s,
      store,
      envOf(),
      { windows: 3, crash: 'after-spool', clockStart: T0, seed: 1 },
      {
        onLine: (l) => 'ready' in l,
      },
    );
    expect(first.killed, first.stderr).toBe(true);
    expect(spooledOf([first]).map((l) => l.spooled)).toEqual([1, 2, 3]);
    expect((await readFeedback(store, SITE, s.declared)).reports).toEqual([]);
    const second = await runChild(s, store, envOf(), {
      windows: 2,
      crash: 'none',
      clockStart: T0 + 1e7,
      seed: 2,
    });
    expect(second.code, second.stderr).toBe(0);
    expect(spooledOf([second]).map((l) => l.spooled)).toEqual([4, 5]);
    await expectExactlyOnce(store, s, [first, second]);
  });

  it('SIGKILL after uploading, before deleting the spool file: the retry is a no-op', async () => {
    const store = await mk();
    const s = site();
    const first = await runChild(
      s,
      store,
      envOf(),
      { windows: 2, crash: 'after-upload', clockStart: T0, seed: 3 },
      {
        onLine: (l) => 'uploaded' in l,
      },
    );
    expect(first.killed, first.stderr).toBe(true);
    expect((await readFeedback(store, SITE, s.declared)).reports.map((r) => r.seq)).toEqual([1]);
    expect(readdirSync(s.spoolDir).filter((n) => /^\d{12}\.json$/.test(n))).toEqual([
      '000000000001.json',
      '000000000002.json',
    ]);
    const second = await runChild(s, store, envOf(), {
      windows: 1,
      crash: 'none',
      clockStart: T0 + 1e7,
      seed: 4,
    });
    expect(second.code, second.stderr).toBe(0);
    expect(second.lines.at(-1)).toMatchObject({ done: true, uploaded: [1, 2, 3], pending: [] });
    await expectExactlyOnce(store, s, [first, second]);
  });
});

describe('random SIGKILLs (fs registry)', () => {
  it('never loses a spooled window, never reuses a seq, never counts one twice', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'edgectl-crash-reg-'));
    dirs.push(dir);
    const store = new FsStore(join(dir, 'registry'));
    const s = site();
    const rng = mulberry32(2025);
    const runs: ChildRun[] = [];
    for (let trial = 0; trial < 8; trial++) {
      const run = await runChild(
        s,
        store,
        {},
        {
          windows: 30,
          crash: 'none',
          clockStart: T0 + trial * 1e7,
          seed: 100 + trial,
          uploadEachWindow: true,
          maxRequests: 20,
        },
        { afterStartMs: Number(process.env.KILLMS ?? rng() * 300) },
      );
      if (!run.killed) expect(run.code, run.stderr).toBe(0);
      runs.push(run);
    }
    expect(runs.some((r) => r.killed)).toBe(true);
    const final = await runChild(s, store, {}, { windows: 0, crash: 'none', clockStart: T0 + 1e9, seed: 1 });
    expect(final.code, final.stderr).toBe(0);
    // Seqs the processes announced only grow: none was handed out twice.
    const seqs = spooledOf(runs).map((l) => l.spooled);
    expect([...seqs].sort((a, b) => a - b)).toEqual(seqs);
    expect(new Set(seqs).size).toBe(seqs.length);
    // A process killed between enqueue and its announcement leaves a report nobody announced, so
    // the registry may hold more than was announced, but never less, and never a window twice.
    await expectExactlyOnce(store, s, runs, false);
    await store.close();
  });
});
