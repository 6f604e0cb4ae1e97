import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
  copyFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isAlive } from '../../src/supervisor/process-identity.js';

const ROOT = resolve(import.meta.dirname, '../..');
const NODE = join(ROOT, 'node_modules/.bin/node');
const BIN = join(ROOT, 'bin/run.js');
const VERIFIER = join(ROOT, 'artifacts/models/verifier');
const DRAFT = join(ROOT, 'artifacts/models/draft');

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
  json: Record<string, unknown>;
}

function edgectl(cwd: string, ...args: string[]): Run {
  const r = spawnSync(NODE, [BIN, ...args], {
    cwd,
    encoding: 'utf8',
    timeout: 90_000,
    env: { ...process.env, CI: '1' },
  });
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(r.stdout) as Record<string, unknown>;
  } catch {
    // not JSON: the caller asserts on text
  }
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, json };
}

describe('edgectl verifier up / generate / verifier down (real processes)', () => {
  let cwd: string;
  const started: number[] = [];

  beforeAll(() => {
    if (!existsSync(join(ROOT, 'dist/commands/verifier/up.js'))) throw new Error('run `npm run build` first');
    cwd = mkdtempSync(join(tmpdir(), 'edgectl-e2e-verifier-'));
  });
  afterAll(() => {
    for (const pid of started) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
    rmSync(cwd, { recursive: true, force: true });
  });

  it('starts detached, answers, generates speculatively, says already running, and stops cleanly', async () => {
    const up = edgectl(cwd, 'verifier', 'up', '--model', VERIFIER, '--port', '0', '--threads', '1', '--json');
    expect(up.status, up.stderr).toBe(0);
    expect(up.json).toMatchObject({ status: 'started', model: 'verifier' });
    const pid = up.json.pid as number;
    const url = up.json.url as string;
    started.push(pid);
    expect(isAlive(pid)).toBe(true);
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    const pidFile = join(cwd, '.edgectl/run/verifier.pid');
    expect(readFileSync(pidFile, 'utf8').split('\n')[0]).toBe(String(pid));

    const again = edgectl(cwd, 'verifier', 'up', '--model', VERIFIER, '--port', '0', '--json');
    expect(again.status).toBe(0);
    expect(again.json).toMatchObject({ status: 'already-running', pid, url });
    const againHuman = edgectl(cwd, 'verifier', 'up', '--model', VERIFIER);
    expect(againHuman.stdout).toContain(`already running (pid ${pid}, ${url})`);

    const gen = edgectl(
      cwd,
      'generate',
      '--model',
      DRAFT,
      '--verifier',
      url,
      '--k',
      '4',
      '--max-tokens',
      '16',
      '--json',
      'Priya: how is it going?\nLeo:',
    );
    expect(gen.status, gen.stderr).toBe(0);
    expect(gen.json).toMatchObject({ route: 'speculative' });
    expect(gen.json.tokens as number).toBeGreaterThan(0);
    expect(gen.json.verifyRounds as number).toBeGreaterThan(0);
    expect(gen.json.drafted as number).toBeGreaterThan(0);
    expect(typeof gen.json.text).toBe('string');
    for (const field of ['accepted', 'acceptance', 'tokensPerRound', 'ttftMs', 'durationMs'])
      expect(gen.json).toHaveProperty(field);

    const cloud = edgectl(
      cwd,
      'generate',
      '--route',
      'cloud',
      '--verifier',
      url,
      '--max-tokens',
      '8',
      '--json',
      'Hello',
    );
    expect(cloud.status, cloud.stderr).toBe(0);
    expect(cloud.json).toMatchObject({ route: 'cloud' });

    const down = edgectl(cwd, 'verifier', 'down', '--json');
    expect(down.status, down.stderr).toBe(0);
    expect(down.json).toMatchObject({ status: 'stopped', pid });
    expect(isAlive(pid)).toBe(false);
    expect(existsSync(pidFile)).toBe(false);
    expect(existsSync(join(cwd, '.edgectl/run/verifier.json'))).toBe(false);

    const downAgain = edgectl(cwd, 'verifier', 'down', '--json');
    expect(downAgain.json).toMatchObject({ status: 'not-running' });
  });

  it('generates edge-only without a verifier; a route that needs one says so (exit 2)', () => {
    const edge = edgectl(cwd, 'generate', '--model', DRAFT, '--max-tokens', '8', '--json', 'Priya: hi\nLeo:');
    expect(edge.status, edge.stderr).toBe(0);
    expect(edge.json).toMatchObject({ route: 'edge', verifyRounds: 0, acceptance: null });
    expect(edge.json.tokens as number).toBeGreaterThan(0);
    const noVerifier = edgectl(cwd, 'generate', '--model', DRAFT, '--route', 'speculative', 'Hi');
    expect(noVerifier.status).toBe(2);
    expect(noVerifier.stderr).toContain('--route speculative needs --verifier');
  });

  it('clears a stale pid file and starts', () => {
    const runDir = join(cwd, '.edgectl/run');
    mkdirSync(runDir, { recursive: true });
    const dead = spawnSync(NODE, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    writeFileSync(join(runDir, 'verifier.pid'), `${dead.stdout}\n`);
    const up = edgectl(cwd, 'verifier', 'up', '--model', VERIFIER, '--port', '0', '--threads', '1', '--json');
    expect(up.status, up.stderr).toBe(0);
    started.push(up.json.pid as number);
    expect(up.json.status).toBe('started');
    expect(up.stderr).toContain('stale');
    expect(edgectl(cwd, 'verifier', 'down', '--json').json).toMatchObject({ status: 'stopped' });
  });

  it('a model directory that fails to load: exit 2 with the log tail naming the problem', () => {
    const broken = join(cwd, 'broken-model');
    mkdirSync(broken, { recursive: true });
    for (const f of ['config.json', 'tokenizer.json']) copyFileSync(join(VERIFIER, f), join(broken, f));
    writeFileSync(join(broken, 'model.onnx'), 'version https://git-lfs.github.com/spec/v1\n');
    const up = edgectl(cwd, 'verifier', 'up', '--model', broken, '--port', '0', '--threads', '1');
    expect(up.status).toBe(2);
    expect(up.stderr).toContain('during startup');
    expect(up.stderr).toContain('last log lines');
    expect(up.stderr).toContain('ONNX Runtime cannot load the model');
    expect(existsSync(join(cwd, '.edgectl/run/verifier.pid'))).toBe(false);

    const missing = edgectl(cwd, 'verifier', 'up', '--model', join(cwd, 'nope'), '--json');
    expect(missing.status).toBe(2);
    expect(missing.json).toMatchObject({ error: { code: 'E_MODEL' } });
  });
});
