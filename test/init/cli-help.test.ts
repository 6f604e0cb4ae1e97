/**
 * The CLI's first impression: `--help` lists every topic with a description, shell completion is
 * installed (`autocomplete`), and a mistyped command off a terminal exits non-zero at once with a
 * did-you-mean line instead of prompting (plugin-not-found prompts only at a TTY).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closestCommand, editDistance } from '../../src/cli/hooks/not-found.js';
import { runCli } from '../helpers/cli.js';

describe('CLI help, completion and did-you-mean', () => {
  let cwd: string;
  beforeAll(() => {
    cwd = mkdtempSync(join(tmpdir(), 'edgectl-help-'));
  });
  afterAll(() => rmSync(cwd, { recursive: true, force: true }));

  it('--help lists every topic with a description and the top-level commands', async () => {
    const r = await runCli(['--help'], { cwd });
    expect(r.code).toBe(0);
    const topics = r.stdout.slice(r.stdout.indexOf('TOPICS'), r.stdout.indexOf('COMMANDS'));
    for (const t of [
      'artifact',
      'fleet',
      'keys',
      'model',
      'publish',
      'registry',
      'site',
      'trust',
      'verifier',
    ]) {
      expect(topics).toMatch(new RegExp(`^  ${t} +\\S`, 'm'));
    }
    for (const c of ['autocomplete', 'doctor', 'init', 'lint'])
      expect(r.stdout).toMatch(new RegExp(`^  ${c} +\\S`, 'm'));
  });

  it('autocomplete is installed and prints setup instructions', async () => {
    const help = await runCli(['autocomplete', '--help'], { cwd });
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('edgectl autocomplete');
    const bash = await runCli(['autocomplete', 'bash'], {
      cwd,
      env: { XDG_CACHE_HOME: join(cwd, 'cache'), HOME: cwd },
    });
    expect(bash.code, bash.stderr).toBe(0);
    expect(bash.stdout).toMatch(/bashrc/);
  });

  it('a typo exits 127 with a suggestion, without prompting, off a TTY', async () => {
    for (const [typed, suggestion] of [
      [['sit'], 'edgectl site'],
      [['site', 'ad'], 'edgectl site add'],
      [['verifer', 'up'], 'edgectl verifier up'],
    ] as const) {
      const r = await runCli([...typed], { cwd, timeoutMs: 15_000 });
      expect(r.code, r.stderr).toBe(127);
      expect(r.stderr).toContain(`Did you mean \`${suggestion}\`?`);
      expect(r.stderr).toContain('is not a edgectl command');
      expect(r.ms).toBeLessThan(10_000); // the plugin's prompt would wait 10 s
    }
    const far = await runCli(['xyzzyq'], { cwd });
    expect(far.code).toBe(127);
    expect(far.stderr).not.toContain('Did you mean');
  });

  it('suggests the closest command or topic', () => {
    expect(editDistance('kitten', 'sitting')).toBe(3);
    const ids = ['site:add', 'site:apply', 'site:plan', 'keys:generate', 'lint'];
    expect(closestCommand('sit', ids)).toBe('site');
    expect(closestCommand('site:aply', ids)).toBe('site:apply');
    expect(closestCommand('lnt', ids)).toBe('lint');
    expect(closestCommand('completely-different', ids)).toBeUndefined();
  });
});
