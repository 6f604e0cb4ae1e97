/**
 * The CLI habits of issue #19, through the built CLI as a user runs it: `-h` and `--help`,
 * `--version`/`-v`/`version`, a did-you-mean for a mistyped flag, a warning (not silent success)
 * outside a fleet repository, exit 130 when `site logs -f` is interrupted, and NO_COLOR /
 * FORCE_COLOR reaching the ink views (chalk inside ink ignores NO_COLOR on its own).
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { closestFlag } from '../../src/cli/base-command.js';
import { applyColorEnv, colorEnabled } from '../../src/cli/color.js';
import { siteLogFile } from '../../src/runtime/daemon/client.js';
import { daemonLog } from '../../src/runtime/daemon/log.js';
import { NODE, REPO_ROOT, RUN_JS, runCli } from '../helpers/cli.js';

const empty = () => mkdtempSync(join(tmpdir(), 'edgectl-habits-'));

it('-h is --help, and -v, --version and `version` print the version', async () => {
  const cwd = empty();
  const h = await runCli(['-h'], { cwd });
  expect(h.code).toBe(0);
  expect(h.stdout).toContain('USAGE');
  const sub = await runCli(['fleet', 'status', '-h'], { cwd });
  expect(sub.stdout).toContain('--by');
  for (const flag of ['-v', '--version']) {
    const v = await runCli([flag], { cwd });
    expect(v.code).toBe(0);
    expect(v.stdout).toMatch(/^edgectl\/\d+\.\d+\.\d+ /);
  }
  const json = await runCli(['version', '--json'], { cwd });
  expect(json.json()).toMatchObject({
    version: expect.stringMatching(/^\d+\.\d+\.\d+/),
    node: process.versions.node,
  });
});

it('suggests the flag that was meant', async () => {
  const r = await runCli(['fleet', 'log', '--regsitry', 'file:x'], { cwd: empty() });
  expect(r.code).toBe(2);
  expect(r.stderr).toContain('Did you mean --registry?');
  expect(closestFlag('jsn', ['json', 'registry'])).toBe('json');
  expect(closestFlag('watc', ['watch', 'interval'])).toBe('watch');
  expect(closestFlag('zzzzzz', ['json', 'registry'])).toBeUndefined();
});

it('warns outside a fleet repository instead of reporting a silent success', async () => {
  const cwd = empty();
  const lint = await runCli(['lint'], { cwd });
  expect(lint.stderr).toMatch(/not in a fleet repository \(no edgectl.yaml/);
  const list = await runCli(['artifact', 'list'], { cwd });
  expect(list.stderr).toMatch(/not in a fleet repository.*default registry/);
  // Inside one (edgectl.yaml present), no warning.
  writeFileSync(join(cwd, 'edgectl.yaml'), 'registry: file:reg\n');
  mkdirSync(join(cwd, 'sites'));
  const inside = await runCli(['lint'], { cwd });
  expect(inside.stderr).not.toContain('not in a fleet repository');
});

it('site logs -f exits 130 on Ctrl-C', async () => {
  const cwd = empty();
  const dataDir = join(cwd, 'data');
  mkdirSync(join(dataDir, 'run'), { recursive: true });
  writeFileSync(siteLogFile(dataDir), '2026-12-06T00:00:00.000Z INFO  daemon started\n');
  const child = spawn(NODE, [RUN_JS, 'site', 'logs', 'store-001', '-f', '--data-dir', dataDir], {
    cwd,
    env: { ...process.env, CI: '1' },
  });
  // Once the tail is printed it is following: interrupt it as a terminal would.
  await new Promise<void>((r) => child.stdout.once('data', () => r()));
  await new Promise((r) => setTimeout(r, 300));
  child.kill('SIGINT');
  const code = await new Promise<number | null>((r) => child.on('close', (c) => r(c)));
  expect(code).toBe(130);
}, 60_000);

it('NO_COLOR and FORCE_COLOR reach the ink views', () => {
  const script = `
    import { applyColorEnv } from './dist/src/cli/color.js';
    applyColorEnv();
    const { render } = await import('ink-testing-library');
    const { createElement } = await import('react');
    const { SiteStatusView } = await import('./dist/src/ui/site-status-view.js');
    const frame = { site: 's1', at: new Date(0), view: { daemon: { state: 'stopped' } } };
    const out = render(createElement(SiteStatusView, { frame })).lastFrame() ?? '';
    process.stdout.write(JSON.stringify(out));`;
  const run = (env: Record<string, string>) => {
    const base = { ...process.env };
    delete base.NO_COLOR;
    delete base.FORCE_COLOR;
    const r = spawnSync(NODE, ['--input-type=module', '-e', script], {
      cwd: REPO_ROOT,
      env: { ...base, ...env },
      encoding: 'utf8',
    });
    if (r.status !== 0) throw new Error(r.stderr);
    return JSON.parse(r.stdout) as string;
  };
  const plain = run({ NO_COLOR: '1' });
  expect(plain).toContain('daemon not running');
  expect(plain).not.toContain('\u001b[');
  expect(run({ FORCE_COLOR: '1' })).toContain('\u001b[');
  // FORCE_COLOR wins over NO_COLOR, as in Node.
  expect(run({ NO_COLOR: '1', FORCE_COLOR: '1' })).toContain('\u001b[');
  const env: NodeJS.ProcessEnv = { NO_COLOR: '1' };
  applyColorEnv(env);
  expect(env.FORCE_COLOR).toBe('0');
  expect(colorEnabled({ NO_COLOR: '1' }, true)).toBe(false);
  expect(colorEnabled({}, true)).toBe(true);
  expect(colorEnabled({ FORCE_COLOR: '0' }, true)).toBe(false);
});

it('--log-format json writes one JSON object per log line (CLI and daemon log)', async () => {
  const r = await runCli(['lint', '--log-format', 'json'], { cwd: empty() });
  const line = JSON.parse(r.stderr.trim().split('\n')[0] ?? '') as Record<string, unknown>;
  expect(line).toMatchObject({ level: 'warn', msg: expect.stringContaining('not in a fleet repository') });
  expect(Date.parse(String(line.time))).not.toBeNaN();
  const lines: string[] = [];
  const log = daemonLog('info', (l) => lines.push(l), 'json');
  log('debug', 'hidden');
  log('error', 'sync failed', { seq: 4, error: new Error('registry unreachable'), skipped: undefined });
  expect(lines).toHaveLength(1);
  expect(JSON.parse(lines[0] as string)).toMatchObject({
    level: 'error',
    msg: 'sync failed',
    seq: 4,
    error: 'registry unreachable',
  });
  expect(lines[0]).not.toContain('skipped');
});
