import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { memoryIo } from '../../src/foundation/output.js';
import { isAlive, processStartTime } from '../../src/supervisor/process-identity.js';
import { runFiles } from '../../src/supervisor/run-files.js';
import { startDaemon, type DaemonSpec } from '../../src/supervisor/start.js';
import { daemonStatus } from '../../src/supervisor/status.js';
import { stopDaemon } from '../../src/supervisor/stop.js';

const ROOT = resolve(import.meta.dirname, '../..');
const ENTRY = join(import.meta.dirname, 'fixtures/toy-daemon.mjs');
const dirs: string[] = [];
const pids: number[] = [];

beforeAll(() => {
  // The toy daemon runs the compiled module, like the real CLI does (`npm test` builds first).
  if (!existsSync(join(ROOT, 'dist/src/supervisor/foreground.js')))
    throw new Error('run `npm run build` first');
});

afterEach(() => {
  for (const pid of pids.splice(0)) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function spec(extra: string[] = [], timeoutMs = 20_000): DaemonSpec {
  const runDir = mkdtempSync(join(tmpdir(), 'edgectl-daemon-'));
  dirs.push(runDir);
  return { name: 'toy', runDir, entry: ENTRY, args: [runDir, ...extra], readyTimeoutMs: timeoutMs };
}

describe('daemon start/stop', () => {
  it('starts detached, answers health, says already running, stops with SIGTERM and cleans up', async () => {
    const s = spec();
    const io = memoryIo();
    const started = await startDaemon(s, io);
    pids.push(started.pid);
    expect(started.status).toBe('started');
    expect(started.info).toEqual({ flavour: 'toy' });
    expect(await (await fetch(`${started.url}/healthz`)).text()).toBe('ok');
    const files = runFiles(s.runDir, 'toy');
    const pidLines = readFileSync(files.pidFile, 'utf8').trim().split('\n');
    expect(pidLines[0]).toBe(String(started.pid));
    // The identity that lets up/down/status tell the daemon from a process that reused its pid.
    expect(pidLines[1]).toMatch(/^start \d+$/);
    expect(pidLines[2]).toContain('toy-daemon.mjs');

    const again = await startDaemon(s, io);
    expect(again).toMatchObject({ status: 'already-running', pid: started.pid, url: started.url });
    expect(await daemonStatus('toy', s.runDir)).toMatchObject({
      state: 'running',
      pid: started.pid,
      url: started.url,
      healthy: true,
    });

    const stopped = await stopDaemon({ name: 'toy', runDir: s.runDir, graceMs: 5000 }, io);
    expect(stopped).toMatchObject({ status: 'stopped', pid: started.pid });
    expect(isAlive(started.pid)).toBe(false);
    expect(existsSync(files.pidFile)).toBe(false);
    expect(existsSync(files.stateFile)).toBe(false);
    expect(readFileSync(files.logFile, 'utf8')).toContain('toy: listening on');

    const twice = await stopDaemon({ name: 'toy', runDir: s.runDir, graceMs: 5000 }, io);
    expect(twice.status).toBe('not-running');
    expect((await daemonStatus('toy', s.runDir)).state).toBe('stopped');
  });

  it('treats a pid file naming a dead or different process as stale', async () => {
    const s = spec();
    const files = runFiles(s.runDir, 'toy');
    // A pid that existed and is gone.
    const gone = spawn(process.execPath, ['-e', '0']);
    await new Promise((r) => gone.once('exit', r));
    writeFileSync(files.pidFile, `${gone.pid}\n`);
    expect((await daemonStatus('toy', s.runDir)).state).toBe('stale');
    expect((await stopDaemon({ name: 'toy', runDir: s.runDir, graceMs: 100 }, memoryIo())).status).toBe(
      'stale-removed',
    );
    expect(existsSync(files.pidFile)).toBe(false);

    // A live pid (this test process) whose recorded start time is not its own: a reused pid.
    writeFileSync(files.pidFile, `${process.pid}\n`);
    writeFileSync(
      files.stateFile,
      JSON.stringify({
        name: 'toy',
        pid: process.pid,
        processStart: String(Number(processStartTime('self') ?? 0) + 1),
        status: 'ready',
        startedAt: new Date().toISOString(),
        logFile: files.logFile,
        url: 'http://127.0.0.1:1',
      }),
    );
    const io = memoryIo();
    const started = await startDaemon(s, io);
    pids.push(started.pid);
    expect(started.status).toBe('started');
    expect(started.staleRemoved).toBe(process.pid);
    expect(io.lines.join('\n')).toContain('stale');
    await stopDaemon({ name: 'toy', runDir: s.runDir, graceMs: 5000 }, io);
  });

  it('never signals or reports a live unrelated process named by a pid file without identity', async () => {
    const s = spec();
    const files = runFiles(s.runDir, 'toy');
    const stranger = spawn('sleep', ['60'], { stdio: 'ignore' });
    const strangerPid = stranger.pid;
    if (strangerPid === undefined) throw new Error('could not spawn sleep');
    pids.push(strangerPid);
    // A bare pid and no state file: what an older edgectl, a crash or a hand-edit leaves.
    writeFileSync(files.pidFile, `${strangerPid}\n`);
    expect((await daemonStatus('toy', s.runDir)).state).toBe('stale');
    const stopped = await stopDaemon({ name: 'toy', runDir: s.runDir, graceMs: 200 }, memoryIo());
    expect(stopped.status).toBe('stale-removed');
    expect(isAlive(strangerPid)).toBe(true);

    // The same with an identity that names another process's start time and command.
    writeFileSync(files.pidFile, `${strangerPid}\nstart ${processStartTime('self')}\ncmd sleep 60\n`);
    const io = memoryIo();
    const started = await startDaemon(s, io);
    pids.push(started.pid);
    expect(started.status).toBe('started');
    expect(started.staleRemoved).toBe(strangerPid);
    expect(isAlive(strangerPid)).toBe(true);
    await stopDaemon({ name: 'toy', runDir: s.runDir, graceMs: 5000 }, io);
    expect(isAlive(strangerPid)).toBe(true);
  });

  it('fails with the log tail when the daemon exits during startup, leaving no run files', async () => {
    const s = spec(['--fail-start']);
    const err = (await startDaemon(s, memoryIo()).catch((e: unknown) => e)) as Error & {
      details: { logTail: string[] };
    };
    expect(err).toBeInstanceOf(Error);
    expect(err.message).toMatch(/toy exited with code 1 during startup/);
    expect(err.message).toContain('cannot load model: model.onnx is missing');
    expect(err.details.logTail.join('\n')).toContain('toy: loading');
    const files = runFiles(s.runDir, 'toy');
    expect(existsSync(files.pidFile)).toBe(false);
  });

  it('kills a daemon that does not become ready in time (exit code 7)', async () => {
    const s = spec(['--slow-start'], 1500);
    const err = (await startDaemon(s, memoryIo()).catch((e: unknown) => e)) as {
      exitCode: number;
      message: string;
    };
    expect(err.exitCode).toBe(7);
    expect(err.message).toContain('toy: loading');
    expect(existsSync(runFiles(s.runDir, 'toy').pidFile)).toBe(false);
  });

  it('escalates to SIGKILL when the daemon does not finish draining in the grace period', async () => {
    const s = spec(['--hang-close']);
    const started = await startDaemon(s, memoryIo());
    pids.push(started.pid);
    const stopped = await stopDaemon({ name: 'toy', runDir: s.runDir, graceMs: 300 }, memoryIo());
    expect(stopped.status).toBe('killed');
    expect(isAlive(started.pid)).toBe(false);
    expect(existsSync(runFiles(s.runDir, 'toy').pidFile)).toBe(false);
  });
});
